"""Checks that homework test cells call.

A homework test compares a student's function with coursekit's reference
implementation (float64, fresh random inputs, the seed printed), and compares
the student's backward pass with centred finite differences. A failure says
what differs, where, and by how much::

    conv2d_backward: dw differs from the numerical gradient at index (2, 0, 1, 1):
    analytic 0.4137, numerical 0.3921, relative error 2.7e-02 (expected < 1e-06)

Where the checks run
--------------------
A test cell asks for the student's code by name (``student("conv2d_forward")``,
see :mod:`coursekit.homework`) and passes it to these checks.

* **In the grader** the test cell runs in a trusted process that has never run
  student code: ``student(name)`` is a proxy that calls into the sandboxed
  kernel and brings back plain data, and the verdict is computed here. The
  homework's forbidden modules (the reference implementation, library
  convolutions) are masked inside the sandbox, which is what enforces them.
* **In the student's own notebook** the same cells run beside the student's
  code, as feedback rather than a verdict. :func:`reference_disabled` then gives
  early warning of a call to the reference: every function defined in
  ``coursekit.layers`` (and copies made from its code) and the library
  convolutions in ``FORBIDDEN_ATTRIBUTES`` raise :class:`ReferenceUsedError`
  while the student's function runs. The numpy functions the verdict uses are
  bound when this module is first imported, so a notebook that rebinds
  ``np.allclose`` does not change what these checks compute. None of this is a
  defence against a deliberate attack in the same process; the grader does not
  rely on it.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import types
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from coursekit import gradcheck as _gradcheck

__all__ = [
    "CheckFailure",
    "ReferenceUsedError",
    "fresh_seed",
    "assert_shape",
    "assert_dtype",
    "assert_close",
    "check_against_reference",
    "check_backward_numerically",
    "check_backward",
    "reference_disabled",
    "assert_scalar_close",
    "assert_accuracy",
    "time_budget",
    "count_python_events",
    "python_loop",
    "assert_no_python_loop_over",
    "check_gradient_numerically",
    "in_case",
    "assert_close_to_scale",
    "assert_close_to_any",
    "check_backward_with_caches",
    "assert_loop_free",
    "assert_relative",
    "assert_matches",
]

SEED_ENV_VAR = "COURSEKIT_SEED"

# Import-time bindings. ``globals().get`` keeps the first import's objects
# across ``importlib.reload``, which test cells call after student code ran.
_PRISTINE = globals().get("_PRISTINE") or {
    "asarray": np.asarray,
    "array": np.array,
    "absolute": np.absolute,
    "maximum": np.maximum,
    "isfinite": np.isfinite,
    "unravel_index": np.unravel_index,
    "float64": np.float64,
    "ndarray": np.ndarray,
    "dtype": np.dtype,
    "default_rng": np.random.default_rng,
    "numerical_gradient_array": _gradcheck.numerical_gradient_array,
    "gradient_verdict": _gradcheck.gradient_verdict,
    "urandom": os.urandom,
    "perf_counter": __import__("time").perf_counter,
    "settrace": sys.settrace,
    "gettrace": sys.gettrace,
}
_asarray = _PRISTINE["asarray"]
_array = _PRISTINE["array"]
_absolute = _PRISTINE["absolute"]
_maximum = _PRISTINE["maximum"]
_isfinite = _PRISTINE["isfinite"]
_unravel_index = _PRISTINE["unravel_index"]
_float64 = _PRISTINE["float64"]
_ndarray = _PRISTINE["ndarray"]
_dtype = _PRISTINE["dtype"]
_default_rng = _PRISTINE["default_rng"]
_numerical_gradient_array = _PRISTINE["numerical_gradient_array"]
_gradient_verdict = _PRISTINE.get("gradient_verdict") or _gradcheck.gradient_verdict
_urandom = _PRISTINE["urandom"]
_perf_counter = _PRISTINE.get("perf_counter") or __import__("time").perf_counter
_settrace = _PRISTINE.get("settrace") or sys.settrace
_gettrace = _PRISTINE.get("gettrace") or sys.gettrace

# Modules whose functions count as "the reference" inside reference_disabled().
REFERENCE_MODULES = ("coursekit.layers",)

# Library functions that would do the homework for the student. Swapped on
# their module while a check runs, if the module is already imported (this
# module never imports torch or scipy itself).
FORBIDDEN_ATTRIBUTES = (
    ("torch", ("conv1d", "conv2d", "conv3d", "conv_transpose2d", "convolution")),
    ("torch.nn.functional", ("conv1d", "conv2d", "conv3d", "conv_transpose2d", "unfold", "fold")),
    ("torch.nn.grad", ("conv2d_input", "conv2d_weight")),
    ("scipy.signal", ("correlate", "correlate2d", "convolve", "convolve2d", "fftconvolve", "oaconvolve")),
    ("scipy.ndimage", ("correlate", "convolve")),
)


class CheckFailure(AssertionError):
    """A homework check failed; the message says what, where and by how much."""


class ReferenceUsedError(CheckFailure):
    """The student's code called the reference (or a forbidden library) function."""


# --------------------------------------------------------------------------- seeds


def fresh_seed(*, env_var: str = SEED_ENV_VAR, label: str = "grading seed") -> int:
    """Return a new random seed and print it, so that a grade can be replayed.

    The seed comes from ``os.urandom``, so every grading run sees new inputs and
    a hard-coded answer cannot pass. Setting the environment variable
    ``COURSEKIT_SEED`` to a printed seed replays that run exactly.
    """
    replay = os.environ.get(env_var, "").strip()
    if replay:
        seed = int(replay)
        print(f"{label}: {seed} (replayed from ${env_var})")
    else:
        seed = int.from_bytes(_urandom(4), "little")
        print(f"{label}: {seed}")
    return seed


# ---------------------------------------------------------------- located messages


def _fmt(v: float) -> str:
    return f"{float(v):.6g}"


def _index(flat: int, shape: tuple) -> tuple:
    if len(shape) == 0:
        return ()
    return tuple(int(i) for i in _unravel_index(int(flat), shape))


def _as_plain_array(name: str, what: str, value: Any) -> np.ndarray:
    """Convert to a plain ndarray (no subclass), with a message if impossible."""
    try:
        arr = _asarray(value)
    except Exception as exc:  # noqa: BLE001 - report any conversion failure
        raise CheckFailure(f"{name}: {what} is not an array ({type(value).__name__}): {exc}") from None
    if type(arr) is not _ndarray:
        arr = _array(arr, subok=False)
    return arr


def assert_shape(name: str, actual: Any, expected_shape: Sequence[int], *, what: str = "output") -> None:
    """Fail with ``name: out has shape (..) but expected (..)`` on a mismatch."""
    shape = tuple(int(s) for s in getattr(actual, "shape", ()))
    expected_shape = tuple(int(s) for s in expected_shape)
    if not hasattr(actual, "shape"):
        raise CheckFailure(f"{name}: {what} should be an array of shape {expected_shape}, "
                           f"got {type(actual).__name__}")
    if shape != expected_shape:
        raise CheckFailure(f"{name}: {what} has shape {shape} but expected {expected_shape}")


def assert_dtype(name: str, actual: Any, expected_dtype: Any, *, what: str = "output") -> None:
    """Fail if ``actual.dtype`` differs from ``expected_dtype`` (outputs keep the input dtype)."""
    got = getattr(actual, "dtype", None)
    if got is None or _dtype(got) != _dtype(expected_dtype):
        raise CheckFailure(f"{name}: {what} has dtype {got} but expected {_dtype(expected_dtype)} "
                           "(outputs keep the dtype of the inputs)")


def assert_close(name: str, actual: Any, expected: Any, *, rtol: float = 1e-7, atol: float = 1e-9,
                 what: str = "output", against: str = "the reference") -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` element-wise.

    On failure the message names the worst entry::

        conv2d_forward: out differs from the reference at index (0, 2, 1, 3):
        got 0.41, expected 0.39, abs error 0.02 (tolerance 1e-09 + 1e-07 * |expected|;
        7 of 96 entries outside it)

    Shapes must match exactly (no broadcasting). NaN or inf in ``actual`` where
    ``expected`` is finite counts as a difference at that index.
    """
    expected_arr = _as_plain_array(name, "expected value", expected)
    assert_shape(name, actual, expected_arr.shape, what=what)
    got = _as_plain_array(name, what, actual)
    try:
        got = got.astype(_float64)
    except (TypeError, ValueError) as exc:
        raise CheckFailure(f"{name}: {what} has dtype {got.dtype}, which is not numeric: {exc}") from None
    exp = expected_arr.astype(_float64)
    if got.size == 0:
        return
    shape = got.shape
    got, exp = got.reshape(-1), exp.reshape(-1)  # 0-d values too: the steps below index arrays

    err = _absolute(got - exp)
    allowed = atol + rtol * _absolute(exp)
    bad = ~(err <= allowed)  # NaN in err compares False, so it counts as bad
    bad = bad | (~_isfinite(got) & _isfinite(exp))
    n_bad = int(bad.sum())
    if n_bad == 0:
        return
    # Worst entry: non-finite first, then the largest error relative to its allowance.
    score = err / _maximum(allowed, 1e-300)
    score[~_isfinite(score)] = float("inf")
    score[~bad] = -1.0
    flat = int(score.argmax())
    idx = _index(flat, shape)
    g, e, a = got.flat[flat], exp.flat[flat], err.flat[flat]
    raise CheckFailure(
        f"{name}: {what} differs from {against} at index {idx}: got {_fmt(g)}, expected {_fmt(e)}, "
        f"abs error {a:.2g} (tolerance {atol:.0e} + {rtol:.0e} * |expected|; "
        f"{n_bad} of {got.size} entries outside it)"
    )


# ------------------------------------------------------------ reference disabled

_TRIPPED: list = globals().get("_TRIPPED") or []


def _reference_called(what: str) -> None:
    """Called by every tripwire; records the call and raises."""
    _TRIPPED.append(what)
    raise ReferenceUsedError(
        f"your code called {what}, which does the work this homework asks you to write; "
        "the tests run with it disabled, so write your own version"
    )


def _tripwire_code(qualified_name: str, n_free: int) -> types.CodeType:
    """A code object with ``n_free`` free variables that reports ``qualified_name``.

    A function's ``__code__`` can only be replaced by code with as many free
    variables as the function has closure cells, hence the generated source.
    The body looks this module up through ``sys.modules`` because the code runs
    with the *reference* module's globals.
    """
    free = [f"_free{i}" for i in range(n_free)]
    lines = ["def _outer():"]
    lines += [f"    {v} = None" for v in free]
    lines.append("    def _tripwire(*args, **kwargs):")
    if free:
        lines.append(f"        ({', '.join(free)},)")
    lines.append("        __import__('sys').modules['coursekit.checks']"
                 f"._reference_called({qualified_name!r})")
    lines.append("    return _tripwire")
    namespace: dict = {}
    exec(compile("\n".join(lines), f"<tripwire {qualified_name}>", "exec"), namespace)  # noqa: S102
    return namespace["_outer"]().__code__


def _reference_functions(module_prefixes: Sequence[str]) -> list:
    """Every plain function defined in the given modules (and their submodules)."""
    found: dict = {}
    for mod_name, module in list(sys.modules.items()):
        if module is None or not any(mod_name == p or mod_name.startswith(p + ".") for p in module_prefixes):
            continue
        for value in list(vars(module).values()):
            owner = getattr(value, "__module__", None) or ""
            if isinstance(value, types.FunctionType) and any(
                    owner == p or owner.startswith(p + ".") for p in module_prefixes):
                found[id(value)] = value
    return list(found.values())


@contextlib.contextmanager
def reference_disabled(modules: Sequence[str] = REFERENCE_MODULES,
                       forbidden: Sequence = FORBIDDEN_ATTRIBUTES) -> Iterator[None]:
    """Make the reference implementation unusable while the block runs.

    Every function defined in ``modules`` gets a tripwire as its ``__code__``
    (so every alias of it trips too), other function objects built on the same
    code objects are found through the garbage collector and swapped as well,
    and the ``forbidden`` library attributes are replaced on their modules.
    Everything is restored on exit. If anything tripped, even if the student's
    code caught the exception, the block fails with :class:`ReferenceUsedError`.
    """
    for m in modules:  # load them, so that their functions can be found
        try:
            __import__(m)
        except ImportError:
            pass
    functions = _reference_functions(modules)
    originals = {id(f): f.__code__ for f in functions}
    codes = {id(c): c for c in originals.values()}
    # Copies: other function objects sharing a reference code object.
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and id(obj.__code__) in codes and id(obj) not in originals:
            functions.append(obj)
            originals[id(obj)] = obj.__code__
    swapped = []
    patched_attrs = []
    del _TRIPPED[:]
    try:
        for f in functions:
            name = f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', f.__name__)}"
            n_free = len(f.__closure__ or ())
            f.__code__ = _tripwire_code(name, n_free)
            swapped.append(f)
        for mod_name, attrs in forbidden:
            module = sys.modules.get(mod_name)
            if module is None:
                continue
            for attr in attrs:
                if hasattr(module, attr):
                    old = getattr(module, attr)
                    qualified = f"{mod_name}.{attr}"
                    setattr(module, attr, _make_forbidden(qualified))
                    patched_attrs.append((module, attr, old))
        yield
    finally:
        for f in swapped:
            f.__code__ = originals[id(f)]
        for module, attr, old in reversed(patched_attrs):
            setattr(module, attr, old)
    if _TRIPPED:
        what = _TRIPPED[0]
        del _TRIPPED[:]
        raise ReferenceUsedError(
            f"your code called {what} (and caught the error); the tests run with the "
            "reference disabled, so write your own version")


def _make_forbidden(qualified: str) -> Callable:
    def forbidden(*args, **kwargs):
        _reference_called(qualified)
    forbidden.__qualname__ = forbidden.__name__ = qualified.rsplit(".", 1)[-1]
    return forbidden


# ------------------------------------------------------------- calling helpers


def _copy_args(args: Sequence) -> tuple:
    return tuple(a.copy() if isinstance(a, _ndarray) else a for a in args)


def _check_unchanged(name: str, before: Sequence, after: Sequence, names: Sequence[str]) -> None:
    for arg_name, b, a in zip(names, before, after):
        if isinstance(b, _ndarray):
            same = a.shape == b.shape and bool(((a == b) | ((a != a) & (b != b))).all())
            if not same:
                raise CheckFailure(f"{name}: your function modified its argument {arg_name} in place; "
                                   "compute into new arrays instead")


def _as_tuple(result: Any, n: int, name: str) -> tuple:
    if n == 1 and not isinstance(result, tuple):
        return (result,)
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = f"a {type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list)) \
            else type(result).__name__
        raise CheckFailure(f"{name}: should return {n} values, got {got}")
    return tuple(result)


def check_against_reference(student_fn: Callable, reference_fn: Callable, args: Sequence = (),
                            kwargs: Mapping | None = None, *, name: str | None = None,
                            outputs: Sequence[str | None] = ("out",), arg_names: Sequence[str] | None = None,
                            rtol: float = 1e-7, atol: float = 1e-9, check_dtype: bool = True,
                            disable_reference: bool = True) -> tuple:
    """Call both functions on copies of ``args`` and compare the named outputs.

    Parameters
    ----------
    outputs : names for the values the functions return, in order. ``None``
        skips a value (e.g. ``("out", None)`` compares ``out`` and ignores the
        cache). A single name means the function returns one value.
    rtol, atol : tolerance of :func:`assert_close`. The defaults suit float64
        inputs: the same sum in another order differs by about 1e-15 relative,
        a wrong formula by far more.
    disable_reference : run the student's function inside :func:`reference_disabled`.

    Returns the student's outputs as a tuple. Fails if the student's function
    modifies its arguments, returns the wrong number of values, or a compared
    value differs in shape, dtype or value.
    """
    kwargs = dict(kwargs or {})
    name = name or getattr(student_fn, "__name__", "function")
    arg_names = list(arg_names or [f"argument {i}" for i in range(len(args))])
    expected = _as_tuple(reference_fn(*_copy_args(args), **kwargs), len(outputs), name)
    student_args = _copy_args(args)
    context = reference_disabled() if disable_reference else contextlib.nullcontext()
    with context:
        result = student_fn(*student_args, **kwargs)
    _check_unchanged(name, args, student_args, arg_names)
    got = _as_tuple(result, len(outputs), name)
    for out_name, g, e in zip(outputs, got, expected):
        if out_name is None:
            continue
        assert_shape(name, g, _asarray(e).shape, what=out_name)
        if check_dtype:
            assert_dtype(name, g, _asarray(e).dtype, what=out_name)
        assert_close(name, g, e, rtol=rtol, atol=atol, what=out_name)
    return got


def _assert_gradient_close(name: str, grad_name: str, analytic: Any, numerical: np.ndarray, *,
                           tol: float, atol: float) -> None:
    """Fail where the relative error exceeds ``tol`` *and* the absolute error exceeds ``atol``
    (:func:`coursekit.gradcheck.gradient_verdict`, the one rule)."""
    assert_shape(name, analytic, numerical.shape, what=grad_name)
    a = _as_plain_array(name, grad_name, analytic).astype(_float64)
    n = numerical.astype(_float64)
    verdict = _gradient_verdict(a, n, tol, atol)
    if verdict.n_bad == 0:
        return
    flat = verdict.worst
    raise CheckFailure(
        f"{name}: {grad_name} differs from the numerical gradient at index {_index(flat, a.shape)}: "
        f"analytic {_fmt(a.flat[flat])}, numerical {_fmt(n.flat[flat])}, relative error "
        f"{verdict.rel_error:.1e} (expected < {tol:.0e}, or absolute error < {atol:.0e}; "
        f"{verdict.n_bad} of {a.size} entries outside it)"
    )


def check_backward_numerically(forward: Callable, backward: Callable, inputs: Sequence[np.ndarray], *,
                               kwargs: Mapping | None = None, dout: np.ndarray | None = None,
                               input_names: Sequence[str] | None = None, only: Sequence[str] | None = None,
                               numerical_forward: Callable | None = None, name: str | None = None,
                               h: float = 1e-6, tol: float = 1e-6, atol: float = 1e-7, seed: int = 0,
                               disable_reference: bool = True) -> tuple:
    """Compare ``backward``'s gradients with centred finite differences.

    ``forward(*inputs, **kwargs)`` returns ``(out, cache)`` and
    ``backward(dout, cache)`` returns one gradient per input, in order. The
    finite differences are of ``L = sum(out * dout)`` computed with
    ``numerical_forward`` (default: ``forward`` itself; pass the reference to
    keep a bug in the student's forward out of the backward's verdict).

    Tolerance: with float64 and h=1e-6 the centred difference is accurate to
    about 1e-9 absolute for O(1) outputs, so a correct backward has relative
    error well below ``tol=1e-6`` wherever the gradient is not tiny; entries
    whose absolute error is below ``atol=1e-7`` pass regardless, because near
    zero the relative error measures round-off, not a bug.

    Returns the student's gradients (all of them, compared or not).
    """
    kwargs = dict(kwargs or {})
    inputs = [_asarray(x, dtype=_float64) for x in inputs]
    input_names = list(input_names or [f"d{i}" for i in range(len(inputs))])
    only = list(only) if only is not None else list(input_names)
    name = name or getattr(backward, "__name__", "backward")
    context = reference_disabled if disable_reference else contextlib.nullcontext
    student_inputs = _copy_args(inputs)
    with context():
        out, cache = _as_tuple(forward(*student_inputs, **kwargs), 2, getattr(forward, "__name__", "forward"))
    if dout is None:
        dout = _default_rng(seed).standard_normal(_asarray(out).shape)
    dout = _asarray(dout, dtype=_float64)
    with context():
        grads = _as_tuple(backward(dout.copy(), cache), len(inputs), name)

    num_fwd = numerical_forward or forward
    num_context = context if numerical_forward is None else contextlib.nullcontext
    for i, grad_name in enumerate(input_names):
        if grad_name not in only:
            continue
        base = list(_copy_args(inputs))

        def f(xi, i=i, base=base):
            args = list(base)
            args[i] = xi
            return num_fwd(*args, **kwargs)[0]

        with num_context():
            numerical = _asarray(_numerical_gradient_array(f, base[i].copy(), dout, h=h), dtype=_float64)
        _assert_gradient_close(name, grad_name, grads[i], numerical, tol=tol, atol=atol)
    return grads


def check_backward(forward: Callable, backward: Callable, reference_forward: Callable,
                   reference_backward: Callable, inputs: Sequence[np.ndarray], *,
                   kwargs: Mapping | None = None, input_names: Sequence[str], only: Sequence[str],
                   name: str | None = None, seed: int = 0, rtol: float = 1e-6, atol: float = 1e-8,
                   numerical: bool = True) -> tuple:
    """Check the named gradients of a student's backward against the reference.

    Runs the student's forward and backward (reference disabled) on copies of
    ``inputs`` with a random upstream gradient, then compares each gradient in
    ``only`` with the reference backward (``rtol``/``atol``: float64 sums in a
    different order agree to ~1e-13; a wrong formula differs by O(1)) and, if
    ``numerical``, with finite differences of the *reference* forward, so the
    verdict depends on neither the student's forward nor the reference backward
    alone.
    """
    kwargs = dict(kwargs or {})
    name = name or getattr(backward, "__name__", "backward")
    inputs = [_asarray(x, dtype=_float64) for x in inputs]
    ref_out, ref_cache = reference_forward(*_copy_args(inputs), **kwargs)
    dout = _default_rng(seed).standard_normal(_asarray(ref_out).shape)
    expected = _as_tuple(reference_backward(dout.copy(), ref_cache), len(inputs), name)

    student_inputs = _copy_args(inputs)
    with reference_disabled():
        fwd = forward(*student_inputs, **kwargs)
    _check_unchanged(getattr(forward, "__name__", "forward"), inputs, student_inputs,
                     [n.lstrip("d") or n for n in input_names])
    _out, cache = _as_tuple(fwd, 2, getattr(forward, "__name__", "forward"))
    dout_student = dout.copy()
    with reference_disabled():
        grads = _as_tuple(backward(dout_student, cache), len(inputs), name)
    _check_unchanged(name, [dout], [dout_student], ["dout"])

    for i, grad_name in enumerate(input_names):
        if grad_name not in only:
            continue
        assert_close(name, grads[i], expected[i], rtol=rtol, atol=atol, what=grad_name)
    if numerical:
        check_backward_numerically(reference_forward, lambda d, c: grads, inputs, kwargs=kwargs,
                                   dout=dout, input_names=input_names, only=only, name=name,
                                   disable_reference=False)
    return grads


# ------------------------------------------------- more checks (homework 1, 2, 4, 5)


def assert_scalar_close(name: str, actual: Any, expected: Any, *, rtol: float = 1e-7, atol: float = 1e-9,
                        what: str = "loss", against: str = "the reference") -> None:
    """:func:`assert_close` for one number (a Python float, a numpy scalar or a 0-d array)."""
    try:
        got = _float64(actual)
    except (TypeError, ValueError) as exc:
        raise CheckFailure(f"{name}: {what} should be a number, got {type(actual).__name__}: {exc}") from None
    # as 1-element arrays: the failure message's index arithmetic needs at least one axis
    assert_close(name, _asarray([got]), _asarray([_float64(expected)]), rtol=rtol, atol=atol, what=what,
                 against=against)


def assert_accuracy(name: str, predictions: Any, labels: Any, *, at_least: float,
                    what: str = "test accuracy") -> float:
    """Fail unless the fraction of ``predictions == labels`` is at least ``at_least``.

    Returns the accuracy. The message gives the accuracy, the bar and the counts.
    """
    labels = _as_plain_array(name, "labels", labels)
    pred = _as_plain_array(name, "predictions", predictions)
    assert_shape(name, pred, labels.shape, what="predictions")
    correct = int((pred == labels).sum())
    acc = correct / max(labels.size, 1)
    if not acc >= at_least:
        raise CheckFailure(f"{name}: {what} is {acc:.4f} ({correct} of {labels.size} correct) but should be "
                           f"at least {at_least:.4f}")
    return acc


class _Budget:
    seconds: float = 0.0


@contextlib.contextmanager
def time_budget(name: str, seconds: float) -> Iterator[_Budget]:
    """Fail if the block takes longer than ``seconds`` of wall-clock time.

    Yields an object whose ``seconds`` attribute holds the time taken once the
    block is over. The clock is ``time.perf_counter`` as it was when this
    module was first imported.
    """
    budget = _Budget()
    start = _perf_counter()
    yield budget
    budget.seconds = _perf_counter() - start
    if budget.seconds > seconds:
        raise CheckFailure(f"{name}: took {budget.seconds:.1f} s, over the time budget of {seconds:g} s")


def count_python_events(fn: Callable, *args: Any, **kwargs: Any) -> tuple:
    """Call ``fn(*args, **kwargs)`` and count the Python-level events it causes.

    Returns ``(result, n_events)``, where the events are the function calls and
    executed lines that ``sys.settrace`` reports in every Python frame the call
    opens (the student's code and the Python parts of numpy alike). A loop
    written in Python reports at least one line per iteration; array operations
    report a number of events that does not depend on the size of the arrays.
    Counting events, unlike timing, does not depend on the machine's load.
    """
    count = [0]

    def tracer(frame, event, arg):
        count[0] += 1
        return tracer

    previous = _gettrace()
    _settrace(tracer)
    try:
        result = fn(*args, **kwargs)
    finally:
        _settrace(previous)
    return result, count[0]


def assert_no_python_loop_over(name: str, call: Callable[[int], Any], *, small: int = 2, large: int = 50,
                               what: str = "test images") -> tuple:
    """Fail if ``call(n)`` runs a Python loop over its ``n`` items.

    ``call(n)`` must run the student's function on ``n`` items (e.g. ``n`` test
    images). The check counts Python events (:func:`count_python_events`) for
    ``n = small`` and ``n = large``: a vectorised function reports the same
    number (give or take a few, when numpy takes another branch for another
    size), a loop over the items at least ``large - small`` more. The verdict
    therefore does not depend on timing. Returns the two counts.
    """
    return assert_loop_free(name, lambda n: count_python_events(call, n)[1], small=small, large=large, what=what)


def check_gradient_numerically(name: str, f: Callable[[np.ndarray], Any], x: Any, analytic: Any, *,
                               what: str = "gradient", h: float = 1e-6, tol: float = 1e-6,
                               atol: float = 1e-7) -> None:
    """Compare ``analytic`` with the centred finite differences of a scalar ``f`` at ``x``.

    ``f(x)`` returns one number (a loss). The tolerances are those of
    :func:`check_backward_numerically`: an entry fails when its relative error
    exceeds ``tol`` and its absolute error exceeds ``atol``. ``x`` is not modified.
    """
    x = _array(x, dtype=_float64)
    numerical = _asarray(_numerical_gradient_array(lambda v: _asarray(_float64(f(v))), x.copy(),
                                                   _asarray(1.0), h=h), dtype=_float64)
    _assert_gradient_close(name, what, analytic, numerical, tol=tol, atol=atol)


@contextlib.contextmanager
def in_case(label: str) -> Iterator[None]:
    """Name the case a check failed on: a :class:`CheckFailure` raised in the block gets ``label``
    appended (shapes, stride, padding, seed), so a student can rebuild the case by hand."""
    try:
        yield
    except CheckFailure as exc:
        raise type(exc)(f"{exc}\n    in {label}") from None


def assert_close_to_scale(name: str, actual: Any, expected: Any, *, rtol: float = 1e-7, what: str = "output",
                          against: str = "the reference") -> None:
    """:func:`assert_close` with an absolute tolerance of ``rtol`` times the largest ``|expected|``.

    A fixed ``atol`` is too loose for values of size 1e-4 and too tight for 1e4; measured
    against the array's own scale, sums taken in another order (loops, einsum, im2col)
    agree to ~1e-14 at every scale, and a wrong formula is off by far more than 1e-7.
    Also checks the shape, and the dtype when ``expected`` is floating.
    """
    expected_arr = _as_plain_array(name, "expected value", expected)
    assert_shape(name, actual, expected_arr.shape, what=what)
    assert_dtype(name, actual, expected_arr.dtype, what=what)
    scale = float(_absolute(expected_arr).max()) if expected_arr.size else 0.0
    atol = max(rtol * scale, 1e-300)
    try:
        assert_close(name, actual, expected_arr, rtol=rtol, atol=atol, what=what, against=against)
    except CheckFailure as exc:
        # the located message prints 6 digits; a near miss needs all of them to be seen
        got, exp = _as_plain_array(name, what, actual).astype(_float64), expected_arr.astype(_float64)
        score = _absolute(got - exp) / (atol + rtol * _absolute(exp))
        score[~_isfinite(score)] = float("inf")
        flat = int(score.argmax())
        raise CheckFailure(f"{exc}; at full precision got {float(got.flat[flat])!r}, "
                           f"expected {float(exp.flat[flat])!r}") from None
# ------------------------------------- verdicts that accept every correct answer (homework 1, 2)


def assert_close_to_any(name: str, actual: Any, candidates: Sequence[tuple], *, rtol: float = 1e-7,
                        atol: float = 1e-9, what: str = "output") -> str:
    """Pass if ``actual`` is close to one of ``candidates``, ``(label, expected)`` pairs; return that label.

    For a function built on others the student wrote (k-NN on the student's own
    distances, a network on the student's own layers): the first candidate is the
    reference, the others the same computation from the student's parts, so a bug
    already charged to a part is not charged again. On failure the message is the
    one for the first candidate.
    """
    first = None
    for label, expected in candidates:
        try:
            assert_close(name, actual, expected, rtol=rtol, atol=atol, what=what, against=label)
            return label
        except CheckFailure as exc:
            first = first or exc
    raise first if first is not None else CheckFailure(f"{name}: nothing to compare {what} with")


def check_backward_with_caches(name: str, backward: Callable, dout: Any, caches: Sequence[tuple],
                               expected: Sequence, grad_names: Sequence[str], *, rtol: float = 1e-7,
                               atol: float = 1e-9) -> tuple:
    """Pass if ``backward(dout, cache)`` returns the ``expected`` gradients for one of ``caches``.

    ``caches`` are ``(label, make_cache)`` pairs tried in order: first the cache the
    homework specifies, built by the test (so a bug in the student's forward costs
    the backward nothing), then the cache of the student's own forward (so a
    student who chose another cache layout is not penalised). A cache whose
    ``make_cache`` or backward call raises counts as a failure of that try.
    Raises the first try's failure if none passes; returns the gradients.
    """
    first = None
    for label, make_cache in caches:
        try:
            grads = _as_tuple(backward(_array(dout, copy=True), make_cache()), len(expected), name)
            for grad_name, got, exp in zip(grad_names, grads, expected):
                assert_close(name, got, exp, rtol=rtol, atol=atol, what=f"{grad_name} (cache: {label})")
            return grads
        except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
            first = first or exc
    raise first


def python_loop(n: int) -> int:
    """A Python loop of ``n`` steps: the probe that shows an event counter still counts."""
    total = 0
    for i in range(int(n)):
        total += i
    return total


def assert_loop_free(name: str, count: Callable[[int], int], *, small: int = 2, large: int = 50,
                     what: str = "rows", probe: Callable[[int], int] | None = None) -> tuple:
    """Fail if ``count(n)``, the Python events a call on ``n`` items takes, grows with ``n``.

    :func:`assert_no_python_loop_over` counts in this process; this takes the count
    from wherever the student's code runs (``student.lib("coursekit.checks.count_python_events")``).
    ``probe(n)``, when given, counts :func:`python_loop` the same way, after the student's
    calls: a counter that no longer sees a known loop (replaced, or tracing switched off)
    fails the check instead of passing it. Returns the two counts.
    """
    count(small)  # warm-up: first calls import modules and fill caches
    n_small, n_large = int(count(small)), int(count(large))
    if probe is not None and int(probe(large)) - int(probe(small)) < large - small:
        raise CheckFailure(
            f"{name}: the Python-step counter in your kernel no longer counts a known loop of {large} steps, "
            "so this check cannot be made: something in the notebook replaced it or switched tracing off "
            "(sys.settrace)")
    if n_large - n_small >= large - small:
        raise CheckFailure(
            f"{name}: runs {n_large} Python steps for {large} {what} but {n_small} for {small}, so it loops over "
            f"the {what} in Python (a loop, a comprehension, map or np.vectorize); compute all of them at once "
            "with array operations (broadcasting or a matrix product)")
    return n_small, n_large


def assert_relative(name: str, actual: Any, expected: Any, *, rtol: float, what: str = "output",
                    against: str = "the reference") -> None:
    """:func:`assert_close` with no absolute slack: tiny values (1e-313) must be right to ``rtol`` too.

    For functions whose tails matter (a sigmoid far below 0 returns e^x, not 0).
    A non-float dtype is reported as such.
    """
    got_dtype = getattr(actual, "dtype", None)
    if got_dtype is not None and _dtype(got_dtype).kind != "f":
        raise CheckFailure(f"{name}: {what} has dtype {got_dtype}; it should be a float array")
    assert_close(name, actual, expected, rtol=rtol, atol=0.0, what=what, against=against)
# ------------------------------------------------------- one hidden case, named (issue 13)


def _digits(v: float) -> str:
    return f"{float(v):.12g}"


def assert_matches(case: str, actual: Any, expected: Any, *, what: str = "output", rtol: float = 1e-7,
                   atol: float = 1e-9, float32_ok: bool = False, against: str = "the reference") -> None:
    """Compare one output of a named hidden case with its expected value.

    ``case`` names the function and the case (shapes, parameters, the seed to replay), and
    starts every failure message. A float64 problem expects a float64 answer: another dtype
    (float32, an integer type) fails with a message that names the dtype rather than a value
    far off. With ``float32_ok`` (a float32 problem) float32 and float64 answers both pass.
    Values are printed with 12 significant digits, so that close misses show their difference.
    """
    exp = _as_plain_array(case, "expected value", expected)
    if not hasattr(actual, "shape") or not hasattr(actual, "dtype"):
        raise CheckFailure(f"{case}: {what} should be an array of shape {tuple(exp.shape)}, "
                           f"got {type(actual).__name__}")
    got = _as_plain_array(case, what, actual)
    if got.dtype.kind not in "fiub":
        raise CheckFailure(f"{case}: {what} has dtype {got.dtype}, which is not a number type")
    allowed = {"float32", "float64"} if float32_ok else {str(exp.dtype)}
    if exp.dtype.kind == "f" and str(got.dtype) not in allowed:
        raise CheckFailure(f"{case}: {what} has dtype {got.dtype} but expected {exp.dtype} "
                           "(compute in the dtype of the inputs)")
    if tuple(got.shape) != tuple(exp.shape):
        raise CheckFailure(f"{case}: {what} has shape {tuple(got.shape)} but expected {tuple(exp.shape)}")
    g, e = got.astype(_float64).reshape(-1), exp.astype(_float64).reshape(-1)
    err = _absolute(g - e)
    bad = ~(err <= atol + rtol * _absolute(e)) | (~_isfinite(g) & _isfinite(e))
    if not bool(bad.any()):
        return
    score = err / _maximum(atol + rtol * _absolute(e), 1e-300)
    score[~_isfinite(score)] = float("inf")
    score[~bad] = -1.0
    flat = int(score.argmax())
    raise CheckFailure(
        f"{case}: {what} differs from {against} at index {_index(flat, got.shape)}: got {_digits(g[flat])}, "
        f"expected {_digits(e[flat])}, abs error {float(err[flat]):.3g} (tolerance {atol:.0e} + {rtol:.0e} "
        f"* |expected|; {int(bad.sum())} of {g.size} entries outside it)")
