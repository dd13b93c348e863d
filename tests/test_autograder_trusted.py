"""The trusted side of grading: the wire format, the student's process, and verdicts made beside it.

Most tests start the runner without the sandbox (``Limits(sandbox="none")``: the same process and
protocol, started faster); the sandbox itself is tested in tests/test_autograder_hostile.py.
"""
from __future__ import annotations

import io
import time

import numpy as np
import pytest

from autograder import wire
from autograder.sandbox import Limits
from autograder.session import Remote, Student, StudentCodeError, StudentGone, StudentProcess
from autograder.verdict import GradedTest, run_test, split_hidden

FAST = Limits(sandbox="none", cell_timeout=3.0, notebook_timeout=60.0)

CODE = """
import numpy as np

def scale(x, a):
    return a * x

def sgd(params, grads, lr):
    for k in params:
        params[k] -= lr * grads[k]

def append_to(items, v):
    items.append(v)

class Counter:
    def __init__(self):
        self.n = 0
    def add(self, k):
        self.n += k
        return self

def apply(f, x):
    return f(f(x))

def boom(x):
    return helper(x)

def helper(x):
    raise ValueError(f"bad x: {x}")

def slow():
    while True:
        pass

def die():
    import os
    os._exit(1)

def liar():
    class Eq:
        def __eq__(self, other):
            return True
    return Eq()

def obj_array():
    return np.array([object()], dtype=object)

def float32_scalar():
    return np.float32(1.5)

def double(x):
    return 2 * x

def layout(x):
    return (bool(x.flags.c_contiguous), bool(x.flags.f_contiguous))
"""


def _roundtrip(value, opaque=None):
    frame = wire.dumps({"op": "return", "value": value}, opaque=opaque)
    header, blobs = wire.read_frame(io.BytesIO(frame))
    return wire.Decoder(blobs).decode(header["value"])


# ----------------------------------------------------------------------- wire


def test_plain_values_roundtrip_exactly():
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": (1, 2.5, "s", None, True),
             "c": [np.float64(3.25), np.int8(-2), float("inf")], 7: np.zeros((0, 3))}
    back = _roundtrip(value)
    assert list(back) == ["a", "b", "c", 7]
    assert back["a"].dtype == np.float32 and np.array_equal(back["a"], value["a"])
    assert back["b"] == (1, 2.5, "s", None, True) and isinstance(back["b"], tuple)
    assert type(back["c"][0]) is np.float64 and type(back["c"][1]) is np.int8 and back["c"][2] == float("inf")
    assert back[7].shape == (0, 3)


def test_torch_devices_and_dtypes_travel():
    torch = pytest.importorskip("torch")
    assert _roundtrip([torch.device("cpu"), torch.float32, torch.ones(2)])[:2] == [torch.device("cpu"), torch.float32]
    with pytest.raises(wire.WireError):
        wire.Decoder([]).decode({"Dt": "nn"})


@pytest.mark.parametrize("value", [np.array([object()], dtype=object), object(), np.arange(3).view(np.matrix),
                                   {"k": lambda: 1}])
def test_what_is_not_plain_data_is_refused(value):
    with pytest.raises(wire.WireError):
        wire.dumps({"value": value})


def test_a_pickle_or_a_bad_reference_never_decodes():
    import pickle

    evil = pickle.dumps(np.array([1, 2]))
    header = b'{"value": {"A": 0}, "blobs": [%d]}' % len(evil)
    with pytest.raises(wire.WireError):
        h, blobs = wire.read_frame(io.BytesIO(len(header).to_bytes(4, "little") + header + evil))
        wire.Decoder(blobs).decode(h["value"])
    for bad in ({"A": 3}, {"Z": 1}, {"L": 5}, {"H": 1}, [1, 2]):
        with pytest.raises(wire.WireError):
            wire.Decoder([]).decode(bad)


def test_limits_on_frames_and_nesting():
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.WireError):
        wire.dumps({"value": deep})
    big = wire.dumps({"value": np.zeros(1000)})
    with pytest.raises(wire.WireError):
        wire.read_frame(io.BytesIO(big), max_bytes=100)
    with pytest.raises(wire.WireError):
        wire.read_frame(io.BytesIO((10 ** 9).to_bytes(4, "little")))


# -------------------------------------------------------------------- session


@pytest.fixture
def proc(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    p = StudentProcess(work, [(0, CODE), (1, "x = 1 / 0"), (2, "y = 2")], FAST, tmp_path)
    assert p.start(time.monotonic() + 60)
    yield p
    p.close()


def test_cells_run_and_their_errors_are_recorded(proc):
    assert [proc.runs[i].status for i in (0, 1, 2)] == ["ok", "error", "ok"]
    assert "ZeroDivisionError" in proc.runs[1].error


def test_calls_bring_back_plain_data_and_handles(proc):
    student = Student(proc)
    out = student("scale")(np.arange(3.0), 2.0)
    assert isinstance(out, np.ndarray) and out.tolist() == [0.0, 2.0, 4.0]
    assert type(student("float32_scalar")()) is np.float32
    counter = student("Counter")()
    assert isinstance(counter, Remote)
    assert counter.add(2).add(3).n == 5
    assert isinstance(student("liar")(), Remote)  # an object with a lying __eq__ stays over there
    assert not (student("liar")() == 1)


def test_in_place_changes_are_copied_back(proc):
    student = Student(proc)
    w = np.ones(3)
    params = {"w": w, "b": np.zeros(2)}
    student("sgd")(params, {"w": np.ones(3), "b": np.ones(2)}, 0.5)
    assert w.tolist() == [0.5, 0.5, 0.5] and params["w"] is w and params["b"].tolist() == [-0.5, -0.5]
    items = [1]
    student("append_to")(items, 2)
    assert items == [1, 2]


def test_the_students_own_functions_pass_back_as_themselves(proc):
    student = Student(proc)
    assert student("apply")(student("double"), 3) == 12
    assert student.lib("builtins.callable")(student("scale")) is True


def test_array_layout_travels(proc):
    x = np.arange(6.0).reshape(2, 3).T
    assert student_layout(proc, x) == (False, True)


def student_layout(proc, x):
    return tuple(Student(proc)("layout")(x))


def test_callbacks_run_here(proc):
    seen = []

    def f(v):
        seen.append(v)
        return v * 10

    assert Student(proc)("apply")(f, 1) == 100
    assert seen == [1, 10]


def test_student_exceptions_carry_their_own_traceback(proc):
    with pytest.raises(StudentCodeError) as err:
        Student(proc)("boom")(3)
    assert err.value.type_name == "ValueError" and "bad x: 3" in str(err.value)
    assert "helper" in err.value.student_traceback and "runner.py" not in err.value.student_traceback
    with pytest.raises(StudentCodeError, match="defines no 'nothing'"):
        Student(proc)("nothing")()
    with pytest.raises(StudentCodeError, match="cannot be sent"):
        Student(proc)("obj_array")()


def _test(source, points=1.0):
    return GradedTest("t", points, source, 0)


def test_a_hung_call_times_out_and_the_next_test_gets_a_fresh_process(proc):
    verdict = run_test(_test('student("slow")()'), proc, 60)
    assert verdict.outcome == "timeout" and verdict.score == 0
    again = run_test(_test('assert student("scale")(2.0, 3.0) == 6.0'), proc, 60)
    assert again.outcome == "passed" and again.score == 1.0 and proc.starts == 2


def test_a_dying_process_fails_its_test_only(proc):
    assert run_test(_test('student("die")()'), proc, 60).outcome == "crashed"
    assert run_test(_test('assert student("scale")(1.0, 2.0) == 2.0'), proc, 60).outcome == "passed"


def test_a_test_cannot_swallow_a_timeout(proc):
    src = 'try:\n    student("slow")()\nexcept Exception:\n    pass'
    assert run_test(_test(src), proc, 60).outcome == "timeout"


def test_public_part_is_judged_on_its_own(proc):
    src = "assert True\n### BEGIN HIDDEN TESTS\nassert False, 'hidden case fails'\n### END HIDDEN TESTS\n"
    verdict = run_test(_test(src), proc, 60)
    assert verdict.outcome == "failed" and verdict.public_passed and "hidden case fails" in verdict.message
    assert split_hidden(src)[0] == "assert True\n"


def test_a_killer_cell_is_skipped_on_restart(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    p = StudentProcess(work, [(0, "def f():\n    return 7"), (1, "while True:\n    pass"), (2, "g = 8")],
                       FAST, tmp_path)
    try:
        assert p.start(time.monotonic() + 60)
        assert p.runs[1].status == "timeout" and p.runs[2].status == "ok" and p.starts == 2
        assert Student(p)("f")() == 7 and Student(p)("g") is not None
    finally:
        p.close()


def test_nothing_runs_the_student_code_here(proc):
    """The names a test gets are proxies: nothing of the student's is a local object."""
    fn = Student(proc)("scale")
    assert type(fn) is Remote and not hasattr(fn, "__code__")
    with pytest.raises(StudentGone):
        proc.stop()
        fn(1.0, 2.0)
