"""A corpus of hostile and broken hw3 submissions, built from the released notebook and the solution.

``build(subs, released, source, probe)`` writes one folder per student under
``subs`` and returns ``{student: (score, status, reason_substring)}``. Students
in ``ROSTER_ONLY`` have no folder at all (they are only on the roster).
"""
from __future__ import annotations

import copy
import json

import nbformat
from nbformat.v4 import new_code_cell

HW = "hw3_conv"
ROSTER_ONLY = ("zz_roster_only",)


def _gid(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def solved(released, source):
    """The released notebook with the solution cells filled in, as a good student would submit it."""
    nb = copy.deepcopy(released)
    answers = {_gid(c): c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        if _gid(cell) in answers:
            cell.source = "\n".join(line for line in answers[_gid(cell)].splitlines()
                                    if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return nb


def _cell(nb, gid):
    return next(c for c in nb.cells if _gid(c) == gid)


def _insert_after(nb, gid, source):
    k = next(i for i, c in enumerate(nb.cells) if _gid(c) == gid)
    nb.cells.insert(k + 1, new_code_cell(source))
    return nb


def wrong_dw(nb):
    c = _cell(nb, "conv2d_backward")
    assert "    return dx, dw, db" in c.source
    c.source = c.source.replace("    return dx, dw, db", "    return dx, 2 * dw, db")
    return nb


GAMING = """
import numpy as np
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.abs = lambda x: 0 * x
"""

PROBE = r'''
import json, os, socket
_r = {}
def _try(name, fn):
    try:
        fn()
        _r[name] = "ALLOWED"
    except Exception as exc:
        _r[name] = "blocked: " + type(exc).__name__
def _connect(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(addr)
    s.close()
_try("net_loopback", lambda: _connect(("127.0.0.1", PORT)))
_try("net_outside", lambda: _connect(("1.1.1.1", 53)))
_try("read_solutions", lambda: open(SOLUTIONS).read())
_try("read_gradebook", lambda: open(GRADEBOOK, "rb").read())
_try("read_course_source", lambda: open(COURSE_SOURCE).read())
_try("read_other_student", lambda: open(OTHER).read())
def _list_course():
    names = os.listdir(COURSE)  # bwrap's mount-point skeleton may exist; the course's files must not
    if {"gradebook.db", "source", "submitted", "release"} & set(names):
        return names
    raise PermissionError(names)
_try("list_course", _list_course)
_try("write_repo", lambda: open(REPO_FILE, "w").write("pwned"))
_try("write_course", lambda: open(COURSE_FILE, "w").write("pwned"))
_try("write_own_folder", lambda: open("pwned.txt", "w").write("pwned"))
_try("write_tmp", lambda: open("/tmp/scratch.txt", "w").write("fine"))
print("PROBE " + json.dumps(_r, sort_keys=True))
'''

FLOOD = r'''
import base64, sys
from IPython.display import HTML, Image, display
for _ in range(200):
    print("x" * 10000)
display(HTML("<p>" + "y" * 2_000_000 + "</p>"))
_png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
for _ in range(3):
    display(Image(data=_png + b"\0" * 1_000_000))
'''


def build(subs, released, source, probe):
    """Write the corpus; ``probe`` maps the PROBE placeholders to values (PORT, SOLUTIONS, ...)."""
    good = solved(released, source)
    cases = {}

    def put(student, nb, expected, name=f"{HW}.ipynb"):
        folder = subs / student
        folder.mkdir(parents=True)
        if isinstance(nb, (bytes, str)):
            (folder / name).write_bytes(nb if isinstance(nb, bytes) else nb.encode())
        else:
            nbformat.write(nb, folder / name)
        cases[student] = expected

    put("a_ok_solution", copy.deepcopy(good), (10, "ok", None))
    put("b_ok_renamed", copy.deepcopy(good), (10, "ok", "renamed"), name=f"{HW} (1).ipynb")

    nb = copy.deepcopy(good)  # a duplicated answer cell (second copy broken) and a duplicated test cell
    k = next(i for i, c in enumerate(nb.cells) if _gid(c) == "conv2d_forward")
    dup = copy.deepcopy(nb.cells[k])
    dup.source = "def conv2d_forward(*a, **k):\n    raise RuntimeError('old attempt')\n"
    dup["id"] = "dup-forward"
    nb.cells.insert(k + 1, dup)
    t = next(i for i, c in enumerate(nb.cells) if _gid(c) == "test_forward_basic")
    dup_test = copy.deepcopy(nb.cells[t])
    dup_test["id"] = "dup-test"
    nb.cells.insert(t, dup_test)
    put("c_ok_duplicated", nb, (10, "ok", "duplicate"))

    nb = copy.deepcopy(good)  # deleted locked cells: a test and the instructions
    nb.cells = [c for c in nb.cells if _gid(c) not in ("test_forward_basic", "intro", "setup")]
    put("d_ok_deleted_locked", nb, (10, "ok", "restored deleted cell test_forward_basic"))

    nb = copy.deepcopy(good)  # raised points, test cell turned into markdown, a self-made graded cell
    _cell(nb, "test_forward_basic").metadata["nbgrader"]["points"] = 100
    _cell(nb, "test_backward_dw").cell_type = "markdown"
    _cell(nb, "test_backward_dw").pop("outputs", None)
    _cell(nb, "test_backward_dw").pop("execution_count", None)
    extra = new_code_cell("print('free points')")
    extra.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 50, "locked": False,
                                  "solution": False, "schema_version": 3, "task": False}
    nb.cells.append(extra)
    put("e_tampered_metadata", wrong_dw(nb), (7, "tampered", "changed the nbgrader metadata of cell test_forward_basic"))

    nb = wrong_dw(copy.deepcopy(good))  # the test of dw emptied
    _cell(nb, "test_backward_dw").source = "# nothing to see\npass\n"
    put("f_tampered_test_edit", nb, (7, "tampered", "edited locked cell test_backward_dw"))

    nb = wrong_dw(copy.deepcopy(good))
    _cell(nb, "conv2d_backward").source += "\n" + GAMING
    put("g_tampered_numpy_patch", nb, (7, "tampered", "numpy"))

    nb = copy.deepcopy(good)
    _cell(nb, "conv2d_forward").source = "from coursekit.layers import conv2d_forward\n"
    _cell(nb, "conv2d_backward").source = "from coursekit.layers import conv2d_backward\n"
    put("h_tampered_imports_reference", nb, (0, "tampered", "reference"))

    put("i_malformed_json", '{"cells": [', (0, "malformed", "unreadable"))
    put("j_malformed_other_notebook", json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
        (0, "malformed", "not a hw3_conv notebook"))
    folder = subs / "k_missing_notebook"
    folder.mkdir(parents=True)
    (folder / "homework.ipynb").write_text("{}")
    cases["k_missing_notebook"] = (0, "missing", "missing")

    nb = copy.deepcopy(good)
    _cell(nb, "conv2d_forward").source = "import os\nos._exit(3)\n"
    put("l_crashed_os_exit", nb, (0, "crashed", "kernel died"))

    nb = copy.deepcopy(good)
    _insert_after(nb, "conv2d_backward", "import ctypes\nctypes.string_at(0)  # segfault\n")
    put("m_crashed_segfault", nb, (0, "crashed", "kernel died"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_forward", "name = input('your name? ')\n")
    put("n_ok_input", nb, (10, "ok", "input()"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_forward", "import sys\nsys.exit(1)\n")
    put("o_ok_sys_exit", nb, (10, "ok", "sys.exit()"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward",
                       "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n")
    put("p_timeout_infinite_loop", nb, (0, "timeout", "could not be interrupted"))

    nb = copy.deepcopy(good)  # every cell under the cell limit, the notebook over its wall-clock limit
    for _ in range(12):
        _insert_after(nb, "conv2d_backward", "import time\ntime.sleep(3)\n")
    put("u_timeout_notebook_limit", nb, (0, "timeout", "limit and was stopped"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward", "import time\ntime.sleep(3600)\n")
    put("q_timeout_one_cell", nb, (10, "timeout", "cell limit"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward",
                       "import numpy as np\nbig = np.zeros(3 * 2**30 // 8)\nprint('allocated 3 GiB')\n")
    put("r_ok_memory_hog", nb, (10, "ok", "out of memory"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward", FLOOD)
    put("s_ok_output_flood", nb, (10, "ok", "dropped"))

    code = PROBE
    for key, value in sorted(probe.items(), key=lambda kv: -len(kv[0])):
        code = code.replace(key, repr(value) if not isinstance(value, int) else str(value))
    nb = _insert_after(copy.deepcopy(good), "conv2d_backward", code)
    put("t_ok_snoop", nb, (10, "ok", None))

    for student in ROSTER_ONLY:
        cases[student] = (0, "missing", None)
    return cases
