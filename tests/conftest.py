"""Shared pytest fixtures and hypothesis settings for the coursekit test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from book_support import build_book
from hypothesis import HealthCheck, settings

from coursekit.checks import assert_close as assert_close_located

# The grading tests make their own gradebooks; an instructor's exported database URL
# must not send them (or the nbgrader subprocesses they start) to the real one.
os.environ.pop("AUTOGRADER_DB_URL", None)

# The whole layer suite must stay well under ~90 s on a 2-core machine, so the
# property tests use a modest number of small examples. deadline=None because
# the first call of a test pays for imports (torch) and would trip the deadline.
settings.register_profile(
    "coursekit",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
# A more thorough profile for occasional local runs: HYPOTHESIS_PROFILE=thorough
settings.register_profile("thorough", parent=settings.get_profile("coursekit"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "coursekit"))


def _assert_close(actual, expected, *, name: str, rtol: float, atol: float) -> None:
    """The homework's located-error allclose (:func:`coursekit.checks.assert_close`), keyword-style."""
    assert_close_located(name, actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(scope="session")
def assert_close():
    """The located-error allclose above, as a session fixture (safe with @given)."""
    return _assert_close


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The ``_build`` folder of one cold build of the book, shared by test_book.py and test_book_browser.py.

    ``COURSE_BOOK_BUILD=path/to/_build`` reuses a finished build instead (for
    iterating on the checks); CI leaves it unset and builds from cold.
    """
    reuse = os.environ.get("COURSE_BOOK_BUILD")
    if reuse:
        assert (Path(reuse) / "html" / "index.html").is_file(), f"COURSE_BOOK_BUILD={reuse} holds no built book"
        return Path(reuse)
    out = tmp_path_factory.mktemp("book")
    result = build_book(out)
    log = result.stdout
    assert result.returncode == 0, "jupyter-book build failed; last lines of the log:\n" + log[-6000:]
    return out / "_build"
