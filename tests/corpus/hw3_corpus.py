"""Two corpora of hw3 submissions, built from the solution notebook.

Wrong and correct implementations (``WRONG``, ``CORRECT``): each a :class:`Case` whose
``sources`` replace whole solution cells and whose ``lost`` says which graded cells it must
lose; ``score_in_process`` grades one in this process the way the grader decides for honest
code (tests/test_homework_hw3.py and benchmarks/escape_rates_hw3.py use both).

Hostile and broken submissions: ``build(subs, released, source, probe)`` writes one
folder per student under ``subs`` and returns ``{student: (score, status,
reason_substring)}``. Students in ``ROSTER_ONLY`` have no folder at all (they are only on
the roster).
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import nbformat
from autograder import bench as autograder_bench
import numpy as np
from nbformat.v4 import new_code_cell

from coursekit.homework import student_in

HW = "hw3_conv"
ROSTER_ONLY = ("zz_roster_only",)
TOTAL = 15  # the notebook's automatic points
WRONG_DW_LOSES = 3  # wrong_dw fails test_backward_numerical (1) and test_backward_dw (2)


def _gid(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


solved = autograder_bench.solved  # the released notebook with the solution cells filled in


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

    put("a_ok_solution", copy.deepcopy(good), (TOTAL, "ok", None))
    put("b_ok_renamed", copy.deepcopy(good), (TOTAL, "ok", "renamed"), name=f"{HW} (1).ipynb")

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
    put("c_ok_duplicated", nb, (TOTAL, "ok", "duplicate"))

    nb = copy.deepcopy(good)  # deleted locked cells: a test and the instructions
    nb.cells = [c for c in nb.cells if _gid(c) not in ("test_forward_basic", "intro", "setup")]
    put("d_ok_deleted_locked", nb, (TOTAL, "ok", "restored deleted cell test_forward_basic"))

    nb = copy.deepcopy(good)  # raised points, test cell turned into markdown, a self-made graded cell
    _cell(nb, "test_forward_basic").metadata["nbgrader"]["points"] = 100
    _cell(nb, "test_backward_dw").cell_type = "markdown"
    _cell(nb, "test_backward_dw").pop("outputs", None)
    _cell(nb, "test_backward_dw").pop("execution_count", None)
    extra = new_code_cell("print('free points')")
    extra.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 50, "locked": False,
                                  "solution": False, "schema_version": 3, "task": False}
    nb.cells.append(extra)
    put("e_tampered_metadata", wrong_dw(nb), (TOTAL - WRONG_DW_LOSES, "tampered", "changed the nbgrader metadata of cell test_forward_basic"))

    nb = wrong_dw(copy.deepcopy(good))  # the test of dw emptied
    _cell(nb, "test_backward_dw").source = "# nothing to see\npass\n"
    put("f_tampered_test_edit", nb, (TOTAL - WRONG_DW_LOSES, "tampered", "edited locked cell test_backward_dw"))

    nb = wrong_dw(copy.deepcopy(good))
    _cell(nb, "conv2d_backward").source += "\n" + GAMING
    put("g_tampered_numpy_patch", nb, (TOTAL - WRONG_DW_LOSES, "tampered", "numpy"))

    nb = copy.deepcopy(good)
    _cell(nb, "conv2d_forward").source = "from coursekit.layers import conv2d_forward\n"
    _cell(nb, "conv2d_backward").source = "from coursekit.layers import conv2d_backward\n"
    _cell(nb, "maxpool2d_forward").source = "from coursekit.layers import maxpool2d_forward\n"
    _cell(nb, "maxpool2d_backward").source = "from coursekit.layers import maxpool2d_backward\n"
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
    put("n_ok_input", nb, (TOTAL, "ok", "input()"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_forward", "import sys\nsys.exit(1)\n")
    put("o_ok_sys_exit", nb, (TOTAL, "ok", "sys.exit()"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward",
                       "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n")
    put("p_timeout_infinite_loop", nb, (0, "timeout", "could not be interrupted"))

    nb = copy.deepcopy(good)  # every cell under the cell limit, the notebook over its wall-clock limit
    for _ in range(12):
        _insert_after(nb, "conv2d_backward", "import time\ntime.sleep(3)\n")
    put("u_timeout_notebook_limit", nb, (0, "timeout", "limit and was stopped"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward", "import time\ntime.sleep(3600)\n")
    put("q_timeout_one_cell", nb, (TOTAL, "timeout", "cell limit"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward",
                       "import numpy as np\nbig = np.zeros(3 * 2**30 // 8)\nprint('allocated 3 GiB')\n")
    put("r_ok_memory_hog", nb, (TOTAL, "ok", "out of memory"))

    nb = _insert_after(copy.deepcopy(good), "conv2d_backward", FLOOD)
    put("s_ok_output_flood", nb, (TOTAL, "ok", "dropped"))

    code = PROBE
    for key, value in sorted(probe.items(), key=lambda kv: -len(kv[0])):
        code = code.replace(key, repr(value) if not isinstance(value, int) else str(value))
    nb = _insert_after(copy.deepcopy(good), "conv2d_backward", code)
    put("t_ok_snoop", nb, (TOTAL, "ok", None))

    for student in ROSTER_ONLY:
        cases[student] = (0, "missing", None)
    return cases


# ============================================================ wrong and correct implementations
#
# Each wrong case is one bug that students write, made to one function of the solution;
# ``lost`` lists the graded cells it must fail on every run (their points are lost), and
# every other graded cell must pass. The correct variants must pass every graded cell.

SOURCE_NB = Path(__file__).resolve().parents[2] / "solutions" / HW / f"{HW}.ipynb"
POINTS = {"test_forward_basic": 2, "test_forward_stride_padding": 2, "test_backward_numerical": 1,
          "test_backward_dx": 2, "test_backward_dw": 2, "test_backward_db": 1,
          "test_maxpool_forward": 2, "test_maxpool_backward": 2, "test_maxpool_backward_ties": 1}
SOLUTION_CELLS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward")


class Case(NamedTuple):
    name: str
    sources: dict  # solution cell (grade_id) -> the whole source the student handed in for it
    lost: tuple  # graded cells this case must fail; the others must pass
    why: str = ""

    @property
    def lost_points(self) -> int:
        return sum(POINTS[g] for g in self.lost)


def _notebook_cells() -> dict:
    nb = json.loads(SOURCE_NB.read_text(encoding="utf-8"))
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]}


def solution_source(gid: str) -> str:
    """The solution cell as a student who solved it hands it in (fences removed)."""
    return "\n".join(line for line in _notebook_cells()[gid].splitlines() if "### " not in line) + "\n"


def _edit(gid: str, *pairs: tuple) -> dict:
    src = solution_source(gid)
    for old, new in pairs:
        assert old in src, (gid, old)
        src = src.replace(old, new)
    return {gid: src}


_DX_ADD = "dx_padded[:, :, i * S:i * S + KH, j * S:j * S + KW] += np.tensordot(g, w, axes=([1], [0]))"
_FWD_SUM = "out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b"
_POOL_ROUTE = "dx[n, c, i * S + u, j * S + v] += dout[:, :, i, j]"
_POOL_ARGMAX = "u, v = np.divmod(window.argmax(axis=2), K)"

_BIAS_PER_CHANNEL = '''
def conv2d_forward(x, w, b, *, stride=1, padding=0):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out = (H + 2 * padding - KH) // stride + 1
    W_out = (W + 2 * padding - KW) // stride + 1
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for c in range(C):
                for i in range(H_out):
                    for j in range(W_out):
                        patch = xp[n, c, i * stride:i * stride + KH, j * stride:j * stride + KW]
                        out[n, f, i, j] += np.sum(patch * w[f, c]) + b[f]
    return out, (x, w, b, stride, padding)
'''

WRONG = [
    Case("conv_forward_channel0_only", _edit("conv2d_forward", (
        _FWD_SUM, "out[:, :, i, j] = np.tensordot(window[:, 0], w[:, 0], axes=([1, 2], [1, 2])) + b")),
        ("test_forward_stride_padding",), "the public examples have one channel"),
    Case("conv_forward_flipped_kernel", _edit("conv2d_forward", (
        _FWD_SUM, "out[:, :, i, j] = np.tensordot(window, w[:, :, ::-1, ::-1], axes=([1, 2, 3], [1, 2, 3])) + b")),
        ("test_forward_stride_padding",), "a convolution instead of a correlation; the public kernels are symmetric"),
    Case("conv_forward_output_rounded_up", _edit("conv2d_forward", (
        "H_out = (H + 2 * P - KH) // S + 1", "H_out = -(-(H + 2 * P - KH) // S) + 1"), (
        "W_out = (W + 2 * P - KW) // S + 1", "W_out = -(-(W + 2 * P - KW) // S) + 1")),
        ("test_forward_stride_padding",), "ceil instead of floor"),
    Case("conv_forward_height_for_width", _edit("conv2d_forward", (
        "W_out = (W + 2 * P - KW) // S + 1", "W_out = (H + 2 * P - KW) // S + 1")),
        ("test_forward_stride_padding",), "W_out from H; the public images are square"),
    Case("conv_forward_bias_per_channel", {"conv2d_forward": _BIAS_PER_CHANNEL},
         ("test_forward_stride_padding",), "b added once per input channel"),
    Case("conv_dw_averaged_over_batch", _edit("conv2d_backward", ("    return dx, dw, db", "    return dx, dw / N, db")),
         ("test_backward_numerical", "test_backward_dw")),
    Case("conv_dx_assigned_not_accumulated", _edit("conv2d_backward", (_DX_ADD, _DX_ADD.replace("+=", "="))),
         ("test_backward_numerical", "test_backward_dx")),
    Case("conv_dx_padding_not_cut", _edit("conv2d_backward", (
        "dx = dx_padded[:, :, P:HP - P, P:WP - P]", "dx = dx_padded")),
        ("test_backward_numerical", "test_backward_dx")),
    Case("conv_dx_cut_with_minus_p", _edit("conv2d_backward", (
        "dx = dx_padded[:, :, P:HP - P, P:WP - P]", "dx = dx_padded[:, :, P:-P, P:-P]")),
        ("test_backward_dx",), "empty when P = 0; the public example pads"),
    Case("conv_dx_flipped_kernel", _edit("conv2d_backward", (
        _DX_ADD, _DX_ADD.replace("np.tensordot(g, w,", "np.tensordot(g, w[:, :, ::-1, ::-1],"))),
        ("test_backward_numerical", "test_backward_dx")),
    Case("conv_backward_stride_ignored", _edit("conv2d_backward", ("S, P = stride, padding", "S, P = 1, padding")),
         ("test_backward_numerical", "test_backward_dx", "test_backward_dw"), "db does not depend on the stride"),
    Case("conv_dw_from_unpadded_x", _edit("conv2d_backward", (
        "window = x_padded[:, :, i * S:i * S + KH, j * S:j * S + KW]", "window = x[:, :, i * S:i * S + KH, j * S:j * S + KW]")),
        ("test_backward_numerical", "test_backward_dx", "test_backward_dw", "test_backward_db"),
        "crashes on the last windows (shapes differ), so every test that calls the backward fails"),
    Case("conv_db_mean", _edit("conv2d_backward", ("db = dout.sum(axis=(0, 2, 3))", "db = dout.mean(axis=(0, 2, 3))")),
         ("test_backward_numerical", "test_backward_db")),
    Case("pool_forward_stride_ignored", _edit("maxpool2d_forward", ("K, S = kernel_size, stride", "K, S = kernel_size, kernel_size")),
         ("test_maxpool_forward",)),
    Case("pool_forward_output_rounded_up", _edit("maxpool2d_forward", (
        "H_out = (H - K) // S + 1", "H_out = -(-(H - K) // S) + 1"), ("W_out = (W - K) // S + 1", "W_out = -(-(W - K) // S) + 1")),
        ("test_maxpool_forward",), "the public examples tile"),
    Case("pool_forward_max_over_channels", _edit("maxpool2d_forward", (
        ".max(axis=(2, 3))", ".max(axis=(1, 2, 3))[:, None]")),
        ("test_maxpool_forward",), "the public maps have one channel or are only measured"),
    Case("pool_ties_to_every_maximum", _edit("maxpool2d_backward", (
        _POOL_ROUTE, "win = window == window.max(axis=2, keepdims=True)\n"
                     "            dx[:, :, i * S:i * S + K, j * S:j * S + K] += "
                     "(win * dout[:, :, i, j][:, :, None]).reshape(N, C, K, K)")),
        ("test_maxpool_backward_ties",)),
    Case("pool_ties_to_last_maximum", _edit("maxpool2d_backward", (
        _POOL_ARGMAX, "u, v = np.divmod(K * K - 1 - window[:, :, ::-1].argmax(axis=2), K)")),
        ("test_maxpool_backward_ties",)),
    Case("pool_ties_first_in_column_major_order", _edit("maxpool2d_backward", (
        _POOL_ARGMAX, "v, u = np.divmod(window.reshape(N, C, K, K).transpose(0, 1, 3, 2).reshape(N, C, K * K)"
                      ".argmax(axis=2), K)")),
        ("test_maxpool_backward_ties",), "scans the window column by column"),
    Case("pool_dx_assigned_not_accumulated", _edit("maxpool2d_backward", (_POOL_ROUTE, _POOL_ROUTE.replace("+=", "="))),
         ("test_maxpool_backward",), "the tie test's windows do not overlap"),
    Case("pool_backward_stride_ignored", _edit("maxpool2d_backward", ("K, S = kernel_size, stride", "K, S = kernel_size, kernel_size")),
         ("test_maxpool_backward",)),
    Case("pool_gradient_one_not_dout", _edit("maxpool2d_backward", (_POOL_ROUTE, _POOL_ROUTE.replace("dout[:, :, i, j]", "1"))),
         ("test_maxpool_backward", "test_maxpool_backward_ties")),
]

_VECTORISED = {
    "conv2d_forward": '''
from numpy.lib.stride_tricks import sliding_window_view

def conv2d_forward(x, w, b, *, stride=1, padding=0):
    KH, KW = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("nchwuv,fcuv->nfhw", win, w) + b[None, :, None, None]
    return out, (x, w, b, stride, padding)
''',
    "conv2d_backward": '''
from numpy.lib.stride_tricks import sliding_window_view

def conv2d_backward(dout, cache):
    x, w, b, stride, padding = cache
    KH, KW = w.shape[2:]
    H_out, W_out = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :H_out, :W_out]
    dw = np.einsum("nfhw,nchwuv->fcuv", dout, win)
    db = dout.sum(axis=(0, 2, 3))
    dxp = np.zeros_like(xp)
    contrib = np.einsum("nfhw,fcuv->nchwuv", dout, w)
    for u in range(KH):
        for v in range(KW):
            dxp[:, :, u:u + stride * H_out:stride, v:v + stride * W_out:stride] += contrib[..., u, v]
    return dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]], dw, db
''',
    "maxpool2d_forward": '''
from numpy.lib.stride_tricks import sliding_window_view

def maxpool2d_forward(x, *, kernel_size=2, stride=None):
    stride = kernel_size if stride is None else stride
    win = sliding_window_view(x, (kernel_size, kernel_size), axis=(2, 3))[:, :, ::stride, ::stride]
    return win.max(axis=(4, 5)), (x, kernel_size, stride)
''',
    "maxpool2d_backward": '''
from numpy.lib.stride_tricks import sliding_window_view

def maxpool2d_backward(dout, cache):
    x, K, S = cache
    N, C, H_out, W_out = dout.shape
    win = sliding_window_view(x, (K, K), axis=(2, 3))[:, :, ::S, ::S][:, :, :H_out, :W_out]
    first = win.reshape(N, C, H_out, W_out, K * K).argmax(axis=-1)
    onehot = np.arange(K * K) == first[..., None]  # the first maximum of each window
    share = (onehot * dout[..., None]).reshape(N, C, H_out, W_out, K, K)
    dx = np.zeros(x.shape)
    for u in range(K):
        for v in range(K):
            dx[:, :, u:u + S * H_out:S, v:v + S * W_out:S] += share[..., u, v]
    return dx
''',
}

_IM2COL = {
    "conv2d_forward": '''
def _cols(xp, KH, KW, S, H_out, W_out):
    """(N, C*KH*KW, H_out*W_out): column t is the window of output pixel t."""
    N, C = xp.shape[:2]
    cols = np.empty((N, C, KH, KW, H_out, W_out))
    for u in range(KH):
        for v in range(KW):
            cols[:, :, u, v] = xp[:, :, u:u + S * H_out:S, v:v + S * W_out:S]
    return cols.reshape(N, C * KH * KW, H_out * W_out)

def conv2d_forward(x, w, b, *, stride=1, padding=0):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out = (H + 2 * padding - KH) // stride + 1
    W_out = (W + 2 * padding - KW) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = _cols(xp, KH, KW, stride, H_out, W_out)
    out = w.reshape(F, -1) @ cols + b[:, None]
    return out.reshape(N, F, H_out, W_out), (x, w, b, stride, padding)
''',
    "conv2d_backward": '''
import warnings

def conv2d_backward(dout, cache):
    x, w, b, S, P = cache
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out, W_out = dout.shape[2:]
    warnings.warn("im2col uses a lot of memory")  # warnings never cost points
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    cols = _cols(xp, KH, KW, S, H_out, W_out)
    d = dout.reshape(N, F, H_out * W_out)
    dw = np.einsum("nft,nkt->fk", d, cols).reshape(w.shape)
    db = d.sum(axis=(0, 2))
    dcols = (w.reshape(F, -1).T @ d).reshape(N, C, KH, KW, H_out, W_out)
    dxp = np.zeros_like(xp)
    for u in range(KH):
        for v in range(KW):
            dxp[:, :, u:u + S * H_out:S, v:v + S * W_out:S] += dcols[:, :, u, v]
    return dxp[:, :, P:P + H, P:P + W], dw, db
''',
    "maxpool2d_forward": '''
def maxpool2d_forward(x, *, kernel_size=2, stride=None):
    K = kernel_size
    S = K if stride is None else stride
    N, C, H, W = x.shape
    H_out, W_out = (H - K) // S + 1, (W - K) // S + 1
    out = np.full((N, C, H_out, W_out), -np.inf)
    for u in range(K):
        for v in range(K):
            out = np.maximum(out, x[:, :, u:u + S * H_out:S, v:v + S * W_out:S])
    return out, (x, K, S)
''',
    "maxpool2d_backward": '''
def maxpool2d_backward(dout, cache):
    x, K, S = cache
    H_out, W_out = dout.shape[2:]
    out = maxpool2d_forward(x, kernel_size=K, stride=S)[0]
    dx = np.zeros(x.shape)
    free = np.ones(out.shape, dtype=bool)  # windows whose gradient is not yet given out
    for u in range(K):  # row-major order: the first maximum claims the gradient
        for v in range(K):
            tap = x[:, :, u:u + S * H_out:S, v:v + S * W_out:S]
            wins = (tap == out) & free
            dx[:, :, u:u + S * H_out:S, v:v + S * W_out:S] += np.where(wins, dout, 0.0)
            free &= ~wins
    with np.errstate(divide="warn"):
        np.log(np.zeros(1))  # a RuntimeWarning: never costs points
    return dx
''',
}

_LOOPS_PER_PIXEL = {
    "conv2d_forward": '''
def conv2d_forward(x, w, b, *, stride=1, padding=0):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out = int((H + 2 * padding - KH) / stride) + 1
    W_out = int((W + 2 * padding - KW) / stride) + 1
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=x.dtype)
    xp[:, :, padding:padding + H, padding:padding + W] = x
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    patch = xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, f, i, j] = np.sum(patch * w[f]) + b[f]
    return out, (x, w, b, stride, padding)
''',
    "conv2d_backward": '''
def conv2d_backward(dout, cache):
    """dx as a full correlation of the stride-dilated dout with the flipped kernel."""
    x, w, b, stride, padding = cache
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out, W_out = dout.shape[2:]
    Hp, Wp = H + 2 * padding, W + 2 * padding
    dil = np.zeros((N, F, Hp + KH - 1, Wp + KW - 1))  # dout spread out by the stride, framed by K-1 zeros
    dil[:, :, KH - 1:KH - 1 + stride * H_out:stride, KW - 1:KW - 1 + stride * W_out:stride] = dout
    flipped = w[:, :, ::-1, ::-1]
    dxp = np.zeros((N, C, Hp, Wp))
    for r in range(Hp):
        for s in range(Wp):
            dxp[:, :, r, s] = np.einsum("nfuv,fcuv->nc", dil[:, :, r:r + KH, s:s + KW], flipped)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dw = np.zeros_like(w)
    for u in range(KH):
        for v in range(KW):
            tap = xp[:, :, u:u + stride * H_out:stride, v:v + stride * W_out:stride]
            dw[:, :, u, v] = np.einsum("nfhw,nchw->fc", dout, tap)
    db = np.array([dout[:, f].sum() for f in range(F)])
    return dxp[:, :, padding:padding + H, padding:padding + W], dw, db
''',
    "maxpool2d_forward": '''
def maxpool2d_forward(x, *, kernel_size=2, stride=None):
    if stride is None:
        stride = kernel_size
    N, C, H, W = x.shape
    H_out, W_out = (H - kernel_size) // stride + 1, (W - kernel_size) // stride + 1
    out = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    out[n, c, i, j] = np.max(x[n, c, i * stride:i * stride + kernel_size,
                                               j * stride:j * stride + kernel_size])
    return out, (x, kernel_size, stride)
''',
    "maxpool2d_backward": '''
def maxpool2d_backward(dout, cache):
    x, K, S = cache
    N, C, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * S:i * S + K, j * S:j * S + K]
                    u, v = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * S + u, j * S + v] += dout[n, c, i, j]
    return dx
''',
}

CORRECT = [
    Case("correct_solution_loops", {}, ()),
    Case("correct_sliding_window_einsum", _VECTORISED, (), "sliding_window_view and einsum"),
    Case("correct_im2col_with_warnings", _IM2COL, (), "im2col matrix products; warns in two functions"),
    Case("correct_loops_per_pixel_full_correlation", _LOOPS_PER_PIXEL, (),
         "loops over every output pixel; dx as a full correlation with the flipped kernel"),
]


def sources(case: Case) -> dict:
    """Every solution cell's source for ``case``: its replacements, the solution elsewhere."""
    return {gid: case.sources.get(gid, solution_source(gid)) for gid in SOLUTION_CELLS}


def test_cells() -> dict:
    """The graded cells of the source notebook (public and hidden parts), by grade_id."""
    cells = _notebook_cells()
    return {gid: cells[gid] for gid in POINTS}


def _calls(cell_source: str) -> set:
    return set(re.findall(r'student\("(\w+)"\)', cell_source))


def score_in_process(case: Case, seed: int, *, only_affected: bool = True, cache: dict | None = None) -> dict:
    """{graded cell: passed} for ``case`` with the hidden tests' seed ``seed``, run in this process.

    Test cells run as the grader runs them, with ``student`` reaching the case's functions.
    With ``only_affected``, cells that call none of the replaced functions are not run and
    count as passed: a test calls only the function it scores, so they see the solution.
    ``cache`` (a dict kept between calls) remembers the verdicts of cells without a seed.
    """
    namespace = {"np": np, "__name__": "hw3_submission"}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for gid, src in sources(case).items():
            exec(compile(src, f"<{case.name}:{gid}>", "exec"), namespace)  # noqa: S102
    passed = {}
    previous = os.environ.get("COURSEKIT_SEED")
    os.environ["COURSEKIT_SEED"] = str(seed)
    try:
        for gid, src in test_cells().items():
            if only_affected and case.sources and not (_calls(src) & set(case.sources)):
                passed[gid] = True
                continue
            key = (case.name, gid)
            if cache is not None and "fresh_seed" not in src and key in cache:
                passed[gid] = cache[key]
                continue
            passed[gid] = _run_cell(src, namespace)
            if cache is not None and "fresh_seed" not in src:
                cache[key] = passed[gid]
    finally:
        if previous is None:
            os.environ.pop("COURSEKIT_SEED", None)
        else:
            os.environ["COURSEKIT_SEED"] = previous
    return passed


def _run_cell(src: str, namespace: dict) -> bool:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(compile(src, "<test>", "exec"), {"student": student_in(namespace)})  # noqa: S102
        except Exception:  # noqa: BLE001 - any error fails the test, as in the grader
            return False
    return True


def verdict(case: Case, passed: dict) -> str | None:
    """None when ``passed`` is what ``case`` predicts; else what differs."""
    failed = {g for g, ok in passed.items() if not ok}
    if failed == set(case.lost):
        return None
    escaped, extra = sorted(set(case.lost) - failed), sorted(failed - set(case.lost))
    return f"{case.name}: passed {escaped} (should fail)" * bool(escaped) + \
        f"{case.name}: failed {extra} (should pass)" * bool(extra)
