"""Hidden-test cases of homework 4 (batch norm, spatial batch norm, dropout) and the checks that judge them.

Coverage is fixed, randomness varies only the values: every run of a test draws the same
list of case shapes (batch of two and larger, several features or channels, non-square
maps, momentum and eps away from their defaults, small and large scales, a float32 case,
training and evaluation mode), so that no seed can skip the case that catches a bug.

The caches are part of the homework's contract (written in the notebook): batch norm's
cache is ``{"x", "gamma", "mean", "var", "eps", "training"}`` and dropout's is
``{"keep", "p"}``. A backward test therefore builds its cache from the reference, and
scores the backward whatever the student's forward does.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from coursekit import checks
from coursekit.layers import batchnorm as ref_bn
from coursekit.nets import ThreeLayerConvNet

__all__ = ["Case", "batchnorm_cases", "spatial_cases", "dropout_cases", "bn_cache",
           "check_cache", "check_batchnorm_forward", "backward_cases", "convnet_from", "check_batchnorm_backward", "check_spatial_batchnorm",
           "check_dropout_forward", "check_dropout_backward"]


class Case(NamedTuple):
    label: str  # starts every failure message: the function, the case, the seed to replay
    args: dict  # keyword arguments of the case
    float32: bool = False


def _label(fn: str, k: int, n: int, desc: str, seed: int | None) -> str:
    if seed is None:  # a public example: fixed values
        return f"{fn}, example {k + 1} ({desc})"
    return f"{fn}, hidden case {k + 1} of {n} ({desc}; replay with COURSEKIT_SEED={seed})"


def _momentum(rng) -> float:
    return float(rng.uniform(0.15, 0.45))  # away from the default 0.1 and from 0.5 (swapped weights)


# ------------------------------------------------------------------ batch norm


# (N, D, scale, eps, float32): N = 2 makes the unbiased factor 2, N != D catches a wrong axis,
# scale 1e-2 with eps 1e-2 makes eps matter, scale 1e3 (with an offset) tests large values.
_BN_SHAPES = ((2, 3, 1.0, 1e-5, False), (6, 4, 2.0, 1e-3, False), (4, 3, 1e-2, 1e-2, False),
              (3, 5, 1e3, 1e-5, False), (5, 3, 1.0, 1e-5, True))


def batchnorm_cases(seed: int | None, *, training: bool, spatial: bool = False,
                    fn: str | None = None) -> list:
    """Batch-norm problems; ``spatial`` gives ``(N, C, H, W)`` maps with H != W instead of ``(N, D)``.

    ``seed=None`` gives fixed public examples (seed 0, labelled as examples).
    """
    rng = np.random.default_rng(0 if seed is None else seed)
    shapes = _SPATIAL_SHAPES if spatial else _BN_SHAPES
    fn = fn or ("spatial_batchnorm" if spatial else "batchnorm_forward")
    cases = []
    for k, (n, d, scale, eps, f32) in enumerate(shapes):
        shape = (n, d, *_hw(k)) if spatial else (n, d)
        feat = (d, 1, 1) if spatial else (d,)
        x = (rng.standard_normal(shape) * rng.uniform(0.3, 3, size=feat) + rng.uniform(-3, 3, size=feat)) * scale
        dtype = np.float32 if f32 else np.float64
        args = {"x": x, "gamma": rng.uniform(0.5, 2, size=d) * rng.choice([-1, 1], size=d),
                "beta": rng.standard_normal(d), "running_mean": rng.standard_normal(d) * scale,
                "running_var": rng.uniform(0.5, 2, size=d) * scale ** 2,
                "momentum": _momentum(rng), "eps": eps, "training": training}
        args.update({key: np.asarray(v, dtype) for key, v in args.items() if isinstance(v, np.ndarray)})
        desc = (f"x {shape} {np.dtype(dtype).name}, scale {scale:g}, momentum={args['momentum']:.6f}, "
                f"eps={eps:g}, training={training}")
        cases.append(Case(_label(fn, k, len(shapes), desc, seed), args, f32))
    return cases


_SPATIAL_SHAPES = ((2, 3, 1.0, 1e-5, False), (3, 4, 1e-2, 1e-2, False), (2, 3, 1e3, 1e-5, False),
                   (2, 2, 1.0, 1e-5, True))


def _hw(k: int) -> tuple:
    return ((3, 4), (2, 5), (4, 3), (3, 2))[k % 4]  # never square


def spatial_cases(seed: int | None, *, training: bool) -> list:
    return batchnorm_cases(seed, training=training, spatial=True)


def _reference_forward(args: dict, spatial: bool = False) -> tuple:
    fwd = ref_bn.spatial_batchnorm_forward if spatial else ref_bn.batchnorm_forward
    a = args
    return fwd(a["x"].copy(), a["gamma"], a["beta"], a["running_mean"], a["running_var"], training=a["training"],
               momentum=a["momentum"], eps=a["eps"])


def bn_cache(args: dict) -> dict:
    """The cache the homework's ``batchnorm_forward`` returns for these arguments (``(N, D)`` x)."""
    x = args["x"]
    if args["training"]:
        mean, var = x.mean(axis=0), x.var(axis=0)
    else:
        mean, var = args["running_mean"], args["running_var"]
    return {"x": x.copy(), "gamma": args["gamma"].copy(), "mean": np.asarray(mean, x.dtype),
            "var": np.asarray(var, x.dtype), "eps": args["eps"], "training": args["training"]}


def _call(fn: Callable, args: dict, label: str, n_out: int, *, unchanged: bool = True) -> tuple:
    """Call a student function on copies of ``args``; fail if it returned the wrong count or (with
    ``unchanged``) changed its arguments."""
    copies = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    keys = [k for k in ("x", "gamma", "beta", "running_mean", "running_var") if k in args]
    result = fn(*(copies[k] for k in keys), **{k: v for k, v in copies.items() if k not in keys})
    for k in keys if unchanged else ():
        if not np.array_equal(copies[k], args[k]):
            raise checks.CheckFailure(f"{label}: your function changed its argument {k} in place; "
                                      "compute into new arrays instead")
    if not isinstance(result, (tuple, list)) or len(result) != n_out:
        raise checks.CheckFailure(f"{label}: should return {n_out} values, got {type(result).__name__}"
                                  + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    return tuple(result)


def _tol(case: Case) -> dict:
    return {"rtol": 2e-4, "atol": 2e-5, "float32_ok": True} if case.float32 else {"rtol": 1e-7, "atol": 1e-10}


def _scaled_tol(case: Case, expected) -> dict:
    """Tolerance for a value whose size follows the data's scale (atol relative to its largest entry)."""
    tol = _tol(case)
    big = float(np.max(np.abs(expected))) if np.size(expected) else 1.0
    return {**tol, "atol": tol["atol"] * max(big, 1e-30)}


def check_cache(label: str, cache: Any, expected: dict, case: Case | None = None) -> None:
    """Batch norm's cache: a dict holding (at least) the prescribed keys with the expected values."""
    if not isinstance(cache, dict):
        raise checks.CheckFailure(f"{label}: the cache should be a dict with keys {sorted(expected)}, "
                                  f"got {type(cache).__name__}")
    missing = sorted(set(expected) - set(cache))
    if missing:
        raise checks.CheckFailure(f"{label}: the cache has no key {missing[0]!r} (it needs {sorted(expected)})")
    for key in ("eps", "training"):
        if cache[key] != expected[key]:
            raise checks.CheckFailure(f"{label}: cache[{key!r}] is {cache[key]!r} but should be {expected[key]!r}")
    for key in ("x", "gamma", "mean", "var"):
        tol = _scaled_tol(case, expected[key]) if case else {"rtol": 1e-7, "atol": 1e-10}
        checks.assert_matches(label, cache[key], expected[key], what=f"cache[{key!r}]", **tol)


def check_batchnorm_forward(fn: Callable, case: Case) -> None:
    """``batchnorm_forward`` on one case: out, the new running statistics and the cache."""
    out, cache, new_mean, new_var = _call(fn, case.args, case.label, 4)
    r_out, _, r_mean, r_var = _reference_forward(case.args)
    checks.assert_matches(case.label, out, r_out, what="out", **_scaled_tol(case, r_out))
    checks.assert_matches(case.label, new_mean, r_mean, what="new_running_mean", **_scaled_tol(case, r_mean))
    checks.assert_matches(case.label, new_var, r_var, what="new_running_var", **_scaled_tol(case, r_var))
    check_cache(case.label, cache, bn_cache(case.args), case)


def _reference_backward_from(cache: dict, dout: np.ndarray) -> tuple:
    inv_std = 1 / np.sqrt(cache["var"] + cache["eps"])
    x_hat = (cache["x"] - cache["mean"]) * inv_std
    return ref_bn.batchnorm_backward(dout, ref_bn.BatchNormCache(x_hat, cache["gamma"], inv_std, cache["training"]))


def backward_cases(seed: int) -> list:
    """Batch-norm backward problems, float64: the first four shapes in training mode, then one in evaluation."""
    fn = "batchnorm_backward"
    training = batchnorm_cases(seed, training=True, fn=fn)[:4]
    evaluation = batchnorm_cases(seed, training=False, fn=fn)[1]
    return [*training, Case(evaluation.label.replace("case 2 of", "case 5 of"), evaluation.args)]


def check_batchnorm_backward(fn: Callable, case: Case, rng: np.random.Generator) -> None:
    """``batchnorm_backward`` with a cache built from the reference: dx, dgamma and dbeta."""
    cache = bn_cache(case.args)
    dout = rng.standard_normal(case.args["x"].shape)
    expected = _reference_backward_from(cache, dout)
    got = fn(dout.copy(), {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in cache.items()})
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise checks.CheckFailure(f"{case.label}: should return (dx, dgamma, dbeta), got {type(got).__name__}")
    for what, g, e in zip(("dx", "dgamma", "dbeta"), got, expected):
        checks.assert_matches(case.label, g, e, what=what, rtol=1e-6, atol=1e-9 * max(float(np.abs(e).max()), 1e-30))


# ------------------------------------------------------------- spatial batch norm


def _to_rows(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_rows(rows: Any, shape: tuple) -> np.ndarray:
    n, c, h, w = shape
    return np.asarray(rows).reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _built_on(batchnorm_forward: Callable, batchnorm_backward: Callable, args: dict, dout: np.ndarray):
    """What the student's spatial functions give if they rearrange correctly around the student's own
    batch norm; None if those functions fail on the rearranged problem."""
    rows = {**args, "x": _to_rows(args["x"])}
    try:
        out, cache, m, v = _call(batchnorm_forward, rows, "", 4, unchanged=False)
        dx, dg, db = batchnorm_backward(_to_rows(dout), cache)
        return _from_rows(out, args["x"].shape), m, v, _from_rows(dx, args["x"].shape), dg, db
    except Exception:  # noqa: BLE001 - a failing batch norm is charged by its own tests
        return None


def check_spatial_batchnorm(forward: Callable, backward: Callable, case: Case, rng: np.random.Generator, *,
                            batchnorm_forward: Callable, batchnorm_backward: Callable) -> None:
    """Spatial batch norm forward and backward on one case.

    The expected values are the reference's, or else what the student's own batch norm gives on
    the correctly rearranged problem: a bug in batch norm is charged by its own tests, not again here.
    """
    dout = rng.standard_normal(case.args["x"].shape).astype(case.args["x"].dtype)
    # arguments changed in place are batch norm's bug (charged by its own test), not checked here
    out, cache, m, v = _call(forward, case.args, case.label, 4, unchanged=False)
    got = (out, m, v, *_call(lambda d, c: backward(d, c), {"x": dout.copy(), "c": cache}, case.label, 3,
                             unchanged=False))
    r_out, r_cache, r_m, r_v = _reference_forward(case.args, spatial=True)
    reference = (r_out, r_m, r_v, *ref_bn.spatial_batchnorm_backward(dout, r_cache))
    names = ("out", "new_running_mean", "new_running_var", "dx", "dgamma", "dbeta")

    def compare(expected, against):
        for what, g, e in zip(names, got, expected):
            checks.assert_matches(case.label, g, e, what=what, against=against, **_scaled_tol(case, e))

    try:
        compare(reference, "the reference")
    except checks.CheckFailure:
        own = _built_on(batchnorm_forward, batchnorm_backward, case.args, dout)
        if own is None:
            raise
        try:
            compare(own, "your batchnorm functions applied per channel")
        except checks.CheckFailure:
            compare(reference, "the reference")  # report the difference from the reference


# ----------------------------------------------------------------------- dropout


# (shape, p range, training, float32): 2-D and 4-D, small and large p, evaluation, p = 0.
_DROPOUT_SHAPES = (((4, 6), (0.1, 0.3), True, False), ((2, 3, 4, 5), (0.6, 0.85), True, False),
                   ((3, 5, 2), (0.2, 0.8), False, False), ((3, 4), (0.0, 0.0), True, False),
                   ((5, 7), (0.3, 0.6), True, True))


def dropout_cases(seed: int, fn: str = "dropout_forward") -> list:
    rng = np.random.default_rng(seed)
    cases = []
    for k, (shape, (lo, hi), training, f32) in enumerate(_DROPOUT_SHAPES):
        dtype = np.float32 if f32 else np.float64
        p = float(rng.uniform(lo, hi)) if hi > lo else lo
        args = {"x": (rng.standard_normal(shape) * 3).astype(dtype), "p": p, "training": training,
                "rng_seed": int(rng.integers(1 << 30))}
        desc = f"x {shape} {np.dtype(dtype).name}, p={p:.6f}, training={training}, rng seed {args['rng_seed']}"
        cases.append(Case(_label(fn, k, len(_DROPOUT_SHAPES), desc, seed), args, f32))
    return cases


def _keep(args: dict) -> np.ndarray:
    """The mask the homework prescribes: ``rng.random(x.shape) >= p`` (all kept when not dropping)."""
    x, p = args["x"], args["p"]
    if not args["training"] or p == 0:
        return np.ones(x.shape, bool)
    return np.random.default_rng(args["rng_seed"]).random(x.shape) >= p


def check_dropout_forward(fn: Callable, make_rng: Callable, case: Case) -> None:
    """``dropout_forward`` on one case; ``make_rng(seed)`` builds the generator the student's code draws from."""
    a = case.args
    x = a["x"].copy()
    result = fn(x, p=a["p"], training=a["training"], rng=make_rng(a["rng_seed"]))
    if not np.array_equal(x, a["x"]):
        raise checks.CheckFailure(f"{case.label}: your function changed x in place; compute a new array instead")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise checks.CheckFailure(f"{case.label}: should return (out, cache), got {type(result).__name__}")
    out, cache = result
    keep = _keep(a)
    expected = a["x"] * keep / (1 - a["p"]) if a["training"] else a["x"]
    checks.assert_matches(case.label, out, expected.astype(a["x"].dtype), what="out", **_tol(case))
    if not isinstance(cache, dict) or "keep" not in cache or "p" not in cache:
        raise checks.CheckFailure(f"{case.label}: the cache should be a dict with keys 'keep' and 'p', "
                                  f"got {cache!r:.80}")
    got_keep = np.ones(x.shape, bool) if cache["keep"] is None else np.asarray(cache["keep"])
    if got_keep.shape != x.shape or not np.array_equal(got_keep.astype(bool), keep):
        raise checks.CheckFailure(f"{case.label}: cache['keep'] should be the boolean mask rng.random(x.shape) >= p "
                                  "(None when nothing is dropped)")
    if cache["p"] != a["p"]:
        raise checks.CheckFailure(f"{case.label}: cache['p'] is {cache['p']!r} but should be {a['p']!r}")


def check_dropout_backward(fn: Callable, case: Case, rng: np.random.Generator) -> None:
    """``dropout_backward`` with the cache built from the reference mask."""
    a = case.args
    dropping = a["training"] and a["p"] > 0
    keep = _keep(a)
    cache = {"keep": keep.copy() if dropping else None, "p": a["p"]}
    dout = rng.standard_normal(a["x"].shape)
    expected = dout * keep / (1 - a["p"]) if dropping else dout
    got = fn(dout.copy(), cache)
    checks.assert_matches(case.label, got, expected, what="dx", rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- the trained ConvNet


def convnet_from(params: dict, bn_state: dict, image_size: tuple = (28, 28)) -> ThreeLayerConvNet:
    """The course's ThreeLayerConvNet holding a student's trained weights, to be evaluated by the grader."""
    try:
        w1, w2, w3 = (np.asarray(params[k]) for k in ("W1", "W2", "W3"))
        net = ThreeLayerConvNet((w1.shape[1], *image_size), num_filters=w1.shape[0], filter_size=w1.shape[2],
                                hidden_dim=w2.shape[0], num_classes=w3.shape[0], batchnorm="gamma1" in params,
                                dtype=w1.dtype)
    except (KeyError, IndexError, ValueError, TypeError) as err:
        raise checks.CheckFailure(f"train_convnet: the returned model is not a ThreeLayerConvNet ({err})") from None
    for key, value in net.params.items():
        got = np.asarray(params.get(key))
        if got.shape != value.shape:
            raise checks.CheckFailure(f"train_convnet: parameter {key} has shape {got.shape}, expected {value.shape}")
        net.params[key] = got.astype(value.dtype)
    net.bn_state = {k: tuple(np.asarray(a) for a in v) for k, v in dict(bn_state or {}).items()}
    return net
