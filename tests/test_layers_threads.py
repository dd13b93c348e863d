"""The numpy conv and pooling layers split large batches over threads (coursekit/layers/_threads.py).

The other layer tests use batches of one to three images, which run serially. Here the
batches span several slices, so these check what threading could break: results against
torch, results that do not depend on the thread count, slices that take different paths,
the BLAS setting being restored, concurrent callers, and a forked child.
"""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from coursekit.layers import conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward
from coursekit.layers import _threads
from coursekit.layers import conv as conv_module
from coursekit.layers import pooling as pooling_module
from coursekit.layers._threads import batches, blas_threads, map_batches, one_blas_thread

N = 19  # three slices: 8, 8 and 3 images for the pools, 7, 7 and 5 for the convs (equal chunks)


@pytest.fixture
def two_threads(monkeypatch):
    """BLAS at 2 threads, and the layers' work thresholds at 0 so that these small cases use them."""
    monkeypatch.setattr(conv_module, "_PARALLEL_MACS", 0)
    monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 0)  # chunks of the fewest images
    monkeypatch.setattr(pooling_module, "_PARALLEL_SIZE", 0)
    monkeypatch.setattr(pooling_module, "_SLICE_BYTES", 0)  # slices of the fewest images
    with threadpool_limits(2):
        if blas_threads() < 2:
            pytest.skip("numpy's BLAS cannot use 2 threads on this machine")
        yield


def conv_pass(x, w, b, dout):
    out, cache = conv2d_forward(x, w, b, padding=1)
    return (out, *conv2d_backward(dout, cache))


def torch_conv_pass(x, w, b, dout):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, padding=1)
    out.backward(torch.tensor(dout))
    return [t.detach().numpy() for t in (out, xt.grad, wt.grad, bt.grad)]


@pytest.fixture
def conv_arrays():
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((N, 4, 9, 7)), rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)
    return x, w, b, rng.standard_normal((N, 5, 9, 7))


def test_threaded_conv_matches_torch(two_threads, conv_arrays, assert_close):
    for name, ours, theirs in zip(["out", "dx", "dw", "db"], conv_pass(*conv_arrays), torch_conv_pass(*conv_arrays)):
        assert_close(ours, theirs, name=f"conv with N={N} on 2 threads: {name}", rtol=1e-9, atol=1e-10)


def test_conv_results_do_not_depend_on_thread_count(two_threads, conv_arrays):
    threaded = conv_pass(*conv_arrays)
    with threadpool_limits(1):
        serial = conv_pass(*conv_arrays)
    for name, a, b in zip(["out", "dx", "dw", "db"], threaded, serial):
        assert np.array_equal(a, b), f"conv {name} differs between 1 and 2 threads by {np.abs(a - b).max():.3g}"


def test_maxpool_slices_with_and_without_ties_match_torch(two_threads, assert_close):
    """Slice 1 has a tie and slice 2 a non-finite gradient, so they take the per-tap path
    while slices 0 and 3 take the tiled one; all must route gradients as torch does."""
    rng = np.random.default_rng(3)
    x = rng.permutation(30 * 3 * 6 * 6).reshape(30, 3, 6, 6).astype(np.float64)
    x[9, 1, 0, 0] = x[9, 1, 1, 1] = x[9, 1, :2, :2].max() + 0.5  # a tied window in the second slice
    dout = rng.standard_normal((30, 3, 3, 3))
    dout[17, 0, 2, 1] = np.inf
    xt = torch.tensor(x, requires_grad=True)
    F.max_pool2d(xt, 2).backward(torch.tensor(dout))
    out, cache = maxpool2d_forward(x)
    dx = maxpool2d_backward(dout, cache)
    finite = np.isfinite(xt.grad.numpy())
    assert np.array_equal(np.isfinite(dx), finite), "the infinite gradient reached other pixels than torch's"
    assert_close(dx[finite], xt.grad.numpy()[finite], name="maxpool dx, 30 images on 2 threads", rtol=0, atol=0)


def test_map_batches_runs_in_order_on_two_threads_and_restores_blas(two_threads):
    seen = set()

    def work(s):
        seen.add(threading.current_thread().name)
        assert blas_threads() == 1, "BLAS must be held at one thread inside the slices"
        return s.start

    assert map_batches(work, batches(40, 4)) == list(range(0, 40, 4))
    assert seen == {threading.current_thread().name, "coursekit-layers-1"}, f"slices ran on {seen}"
    assert blas_threads() == 2, "the BLAS thread count was not restored"


def test_one_blas_thread_holds_nested_blocks_and_restores_after_the_last(two_threads):
    with one_blas_thread():
        assert blas_threads() == 1, "BLAS must run on one thread inside the block"
        with one_blas_thread():
            assert blas_threads() == 1
        assert blas_threads() == 1, "leaving an inner block released the outer block's hold"
        assert map_batches(lambda s: blas_threads(), batches(16, 8), parallel=False) == [1, 1]
    assert blas_threads() == 2, "the BLAS thread count was not restored"
    with one_blas_thread(False):
        assert blas_threads() == 2, "a disabled block changed the BLAS thread count"


def test_map_batches_restores_blas_and_raises_when_a_slice_fails(two_threads):
    def work(s):
        if s.start == 8:
            raise ValueError("slice 8 is broken")
        return s.start

    with pytest.raises(ValueError, match="slice 8 is broken"):
        map_batches(work, batches(24, 4))
    assert blas_threads() == 2, "the BLAS thread count was not restored after the error"
    assert map_batches(lambda s: s.start, batches(8, 4)) == [0, 4], "the pool is unusable after an error"


def test_concurrent_callers_get_their_own_results(two_threads, conv_arrays):
    expected = conv_pass(*conv_arrays)
    results, errors = {}, []

    def call(k):
        try:
            results[k] = conv_pass(*conv_arrays)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    callers = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert not errors, errors
    for k, got in results.items():
        for name, a, b in zip(["out", "dx", "dw", "db"], got, expected):
            assert np.array_equal(a, b), f"caller {k}: conv {name} differs from a lone call"


def test_layers_run_serially_where_no_thread_may_start(two_threads, conv_arrays, monkeypatch):
    expected = conv_pass(*conv_arrays)

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    monkeypatch.setattr(_threads, "_workers", None)
    monkeypatch.setattr(_threads, "_refused", False)
    for name, a, b in zip(["out", "dx", "dw", "db"], conv_pass(*conv_arrays), expected):
        assert np.array_equal(a, b), f"conv {name} differs when threads are refused"
    assert _threads._refused and _threads._workers is None


def _conv_in_child(queue):
    with threadpool_limits(2):
        x = np.ones((N, 2, 5, 5))
        out, _ = conv2d_forward(x, np.ones((3, 2, 3, 3)), np.zeros(3), padding=1)
        queue.put(float(out[:, :, 2, 2].min()))


def test_forked_child_can_use_the_threaded_layers(two_threads, conv_arrays):
    conv_pass(*conv_arrays)  # the parent's thread pool now exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("a forked child hung in the threaded conv (it inherited the parent's dead pool)")
    assert queue.get(timeout=5) == 18.0, "the child's conv computed a wrong value"


def test_only_layers_with_enough_work_use_threads(monkeypatch):
    """Small layers (LeNet-5's second conv on 8 images, its pools) lose time on threads; wider ones gain it."""
    calls = []
    run_shares = _threads._run_shares
    monkeypatch.setattr(_threads, "_run_shares", lambda *a: calls.append(a) or run_shares(*a))
    rng = np.random.default_rng(0)
    with threadpool_limits(2):
        if blas_threads() < 2:
            pytest.skip("numpy's BLAS cannot use 2 threads on this machine")
        x, w = rng.standard_normal((8, 6, 14, 14)), rng.standard_normal((16, 6, 5, 5))  # 1.9 million MACs
        out, cache = conv2d_forward(x, w, np.zeros(16))
        conv2d_backward(out, cache)
        pooled, pool_cache = maxpool2d_forward(rng.standard_normal((50, 6, 28, 28)))
        maxpool2d_backward(pooled, pool_cache)
        assert calls == [], "a small layer ran on threads"
        x = rng.standard_normal((50, 6, 14, 14))  # LeNet's second conv on a batch of 50: 12 million MACs
        out, cache = conv2d_forward(x, w, np.zeros(16))
        assert len(calls) == 1, "LeNet-5's second conv on 50 images should use threads"
        calls.clear()
        x, w = rng.standard_normal((64, 3, 32, 32)), rng.standard_normal((32, 3, 3, 3))  # the benchmark's first case
        out, cache = conv2d_forward(x, w, np.zeros(32), padding=1)
        conv2d_backward(out, cache)
        assert len(calls) == 2, "the forward and backward of a 57-million multiply-add conv should use threads"


def test_conv_backward_is_the_same_with_kept_or_regathered_windows(two_threads, conv_arrays, monkeypatch):
    """Small layers keep the forward's windows for the backward; large ones gather them again."""
    kept_pass = conv_pass(*conv_arrays)
    monkeypatch.setattr(conv_module, "_KEEP_BYTES", 0)
    regathered = conv_pass(*conv_arrays)
    assert conv2d_forward(*conv_arrays[:3], padding=1)[1].cols is None  # the second path did run
    for name, a, b in zip(["out", "dx", "dw", "db"], kept_pass, regathered):
        assert np.array_equal(a, b), f"conv {name} differs between kept and regathered windows"


def test_a_second_forward_does_not_overwrite_the_windows_a_live_cache_keeps(conv_arrays, assert_close):
    x, w, b, dout = conv_arrays
    _, first = conv2d_forward(x, w, b, padding=1)
    _, second = conv2d_forward(-x, w, b, padding=1)  # same shapes: the same size of windows
    assert first.cols is not None and not np.shares_memory(first.cols, second.cols)
    for name, ours, theirs in zip(["dx", "dw", "db"], conv2d_backward(dout, first), torch_conv_pass(*conv_arrays)[1:]):
        assert_close(ours, theirs, name=f"backward of the first of two live caches: {name}", rtol=1e-9, atol=1e-10)


def test_kept_reuses_an_array_only_once_nothing_refers_to_it():
    def address(array):
        return array.__array_interface__["data"][0]

    a = _threads.kept((3, 5), np.float32)
    view, earlier = a[1:], {address(a)}
    del a
    b = _threads.kept((3, 5), np.float32)
    assert not np.shares_memory(view, b), "an array was handed out again while a view of it was alive"
    earlier.add(address(b))
    del view, b
    assert address(_threads.kept((3, 5), np.float32)) in earlier, "a released array was not reused"
    assert _threads.kept((3, 5), np.float64).dtype == np.float64 and _threads.kept((5, 3), np.float32).shape == (5, 3)


def test_kept_remembers_at_most_its_byte_budget(monkeypatch):
    monkeypatch.setattr(_threads, "_kept", [])
    monkeypatch.setattr(_threads, "_KEPT_BYTES", 10_000)
    for n in (1000, 1001, 1002, 1003):  # 4 kB each, all released at once
        _threads.kept((n,), np.float32)
    assert sum(a.nbytes for a in _threads._kept) <= 10_000 and len(_threads._kept) == 2
    assert _threads.kept((20_000,), np.float32).nbytes == 80_000 and len(_threads._kept) == 1  # the newest stays
