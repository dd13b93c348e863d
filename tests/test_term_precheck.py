"""The students' pre-submission check: the grader's pre-flight findings and the public tests, in plain words
(fast: a two-function notebook run in-process)."""
from __future__ import annotations

import nbformat
import pytest

from autograder.cli import main
from autograder.precheck import precheck
from term_support import released_notebook, student_notebook

HW = "hwpc"
STUBS = {"square": "def square(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()",
         "double": "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"}
TESTS = {"test_square": "from coursekit.homework import student\nassert student('square')(3) == 9, 'square(3)'",
         "test_double": "from coursekit.homework import student\nassert student('double')(3) == 6, 'double(3)'"}
GOOD = {"square": "def square(x):\n    return x * x", "double": "def double(x):\n    return 2 * x"}


@pytest.fixture
def released(tmp_path):
    path = tmp_path / "released.ipynb"
    nbformat.write(released_notebook(STUBS, TESTS), path)
    return path


def _write(tmp_path, nb, name=f"{HW}.ipynb"):
    path = tmp_path / "mine" / name
    path.parent.mkdir(exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_a_good_notebook_is_ready(tmp_path, released):
    nb = student_notebook(nbformat.read(released, as_version=4), GOOD)
    result = precheck(_write(tmp_path, nb), released)
    assert result.ok and result.passed == ["test_square", "test_double"]
    assert "ready to hand in" in str(result)


def test_renamed_file_deleted_function_and_edited_test_are_named_in_plain_words(tmp_path, released):
    nb = student_notebook(nbformat.read(released, as_version=4), {"square": GOOD["square"]})
    del nb.cells[4]                                     # the double cell, deleted
    nb.cells[3].source = "assert True  # made it pass"  # test_square, edited
    result = precheck(_write(tmp_path, nb, f"{HW} (1).ipynb"), released)
    text = str(result)
    assert f"renamed {HW} (1).ipynb to {HW}.ipynb" in text
    assert "restored deleted cell double (the released stub)" in text
    assert "flag for a person" in text and "edited locked cell test_square (restored)" in text
    assert result.passed == ["test_square"]  # the restored test, run against the student's square
    [(test, message)] = result.failed
    assert test == "test_double" and "NotImplementedError" in message
    assert not result.ok


def test_a_test_cell_with_only_comments_is_left_to_the_grader(tmp_path, released):
    ref = nbformat.read(released, as_version=4)
    ref.cells[5].source = "# Test: double (1 point). Hidden tests only."
    nbformat.write(ref, released)
    result = precheck(_write(tmp_path, student_notebook(ref, GOOD)), released)
    assert result.passed == ["test_square"] and result.hidden_only == ["test_double"]
    assert "checked only at grading (no public part): test_double" in str(result)


def test_a_missing_function_says_so(tmp_path, released):
    nb = student_notebook(nbformat.read(released, as_version=4),
                          {"square": "def squared(x):\n    return x * x", "double": GOOD["double"]})
    result = precheck(_write(tmp_path, nb), released)
    [(test, message)] = result.failed
    assert test == "test_square" and "defines no 'square'" in message


def test_an_unreadable_notebook_scores_zero_and_the_command_fails(tmp_path, released, capsys):
    path = tmp_path / "mine" / f"{HW}.ipynb"
    path.parent.mkdir()
    path.write_text("{not json")
    assert "cannot grade this notebook" in str(precheck(path, released))
    assert main(["precheck", str(path), "--released", str(released)]) == 1
    assert "It would score 0" in capsys.readouterr().out
    good = _write(tmp_path, student_notebook(nbformat.read(released, as_version=4), GOOD))
    assert main(["precheck", str(good), "--released", str(released)]) == 0
    assert main(["precheck", str(good), "--released", str(tmp_path / "nope.ipynb")]) == 1
    assert "no released notebook" in capsys.readouterr().err
