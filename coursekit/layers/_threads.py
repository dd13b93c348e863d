"""Running a layer batch by batch of images, on as many threads as numpy's BLAS may use.

numpy releases the GIL inside matrix products, copies and element-wise arithmetic, so
Python threads that each take a slice of the batch run on separate cores. The thread
count follows numpy's BLAS (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` or
``threadpoolctl.threadpool_limits``): limit BLAS to one thread and the layers run serially.

While the slices run, BLAS is held at one thread per call, so the slice threads do not
each start their own BLAS threads on the same cores; the previous count is restored after.
Where the system refuses to start a thread (a process limit), the layers run serially.

Small layers run serially, and their products on one BLAS thread too (:func:`one_blas_thread`):
a product of a few million multiply-adds, such as LeNet-5's fully connected layers on 50
images, gains at best about 10 microseconds from a second BLAS thread (the fastest of 200
calls), and loses milliseconds whenever another process holds the second core, since BLAS
waits for its thread.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from functools import cache

import numpy as np


class _Workers:
    """Threads 1 .. count of a parallel region (the caller is thread 0), each with its own queue.

    All are started before any work is handed out, so a refused thread leaves nothing behind.
    """

    def __init__(self, count: int):
        self.queues: list[queue.SimpleQueue] = []
        try:
            for k in range(1, count + 1):
                q = queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(q,), name=f"coursekit-layers-{k}", daemon=True).start()
                self.queues.append(q)
        except RuntimeError:  # "can't start new thread"
            self.close()
            raise

    @staticmethod
    def _serve(q: queue.SimpleQueue) -> None:
        while (item := q.get()) is not None:
            job, future = item
            try:
                future.set_result(job())
            except BaseException as err:  # handed to the caller, which re-raises it
                future.set_exception(err)

    def submit(self, k: int, job) -> Future:
        future: Future = Future()
        self.queues[k - 1].put((job, future))
        return future

    def close(self) -> None:
        for q in self.queues:
            q.put(None)


_lock = threading.Lock()  # one parallel region at a time: the BLAS setting is process-wide
_workers: _Workers | None = None
_refused = False  # the system would not start a thread: stay serial
_local = threading.local()


def _forget_threads():  # a forked child has none of its parent's threads, nor their locks
    global _lock, _workers, _local, _serial, _kept_lock
    _lock, _workers, _local = threading.Lock(), None, threading.local()
    _serial, _kept_lock = threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_forget_threads)


@cache
def _numpy_blas():
    """threadpoolctl's handle on numpy's BLAS library, or None where it cannot be found."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn installs it
        return None
    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    ours = [lib for lib in blas if "numpy" in lib.filepath]
    return (ours or blas or [None])[0]


def blas_threads() -> int:
    """How many threads numpy's BLAS may use now (1 where that cannot be read)."""
    blas = _numpy_blas()
    return max(1, blas.num_threads) if blas is not None else 1


_serial = threading.Lock()  # guards the two below
_serial_depth = 0  # how many callers are inside one_blas_thread
_serial_restore = 1  # the BLAS thread count to restore when the last one leaves


@contextmanager
def one_blas_thread(enabled: bool = True):
    """Hold numpy's BLAS at one thread inside the block (when ``enabled``), then restore it.

    Nested and concurrent blocks share one hold: the count is restored when the last leaves.
    """
    global _serial_depth, _serial_restore
    blas = _numpy_blas() if enabled else None
    if blas is None:
        yield
        return
    with _serial:
        if _serial_depth == 0:
            _serial_restore = blas.num_threads
            if _serial_restore > 1:
                blas.set_num_threads(1)
        _serial_depth += 1
    try:
        yield
    finally:
        with _serial:
            _serial_depth -= 1
            if _serial_depth == 0 and _serial_restore > 1:
                blas.set_num_threads(_serial_restore)


def batches(n: int, size: int) -> list[slice]:
    """Images 0..n-1 as consecutive slices of ``size`` images."""
    return [slice(i, i + size) for i in range(0, n, size)]


def map_batches(fn, slices: list[slice], *, parallel: bool = True) -> list:
    """``[fn(s) for s in slices]``, on up to :func:`blas_threads` threads.

    ``fn`` must only write to parts of arrays that no other slice writes to. With
    ``parallel=False`` (the caller's call: too little work to gain from threads, whose
    small numpy calls would then mostly wait for the GIL) the slices run serially, and
    their products on one BLAS thread.
    """
    before = blas_threads()
    threads = min(before, len(slices)) if parallel else 1
    if threads == 1 or not _lock.acquire(blocking=False):  # a concurrent call runs serially
        with one_blas_thread(not parallel):
            return [fn(s) for s in slices]
    try:
        workers = _workers_for(threads - 1)
        if workers is None:
            return [fn(s) for s in slices]
        blas = _numpy_blas()
        blas.set_num_threads(1)
        try:
            return _run_shares(fn, slices, threads, workers)
        finally:
            blas.set_num_threads(before)
    finally:
        _lock.release()


def _workers_for(count: int) -> _Workers | None:
    """The worker threads, started once (again if the count changes); None if the system refuses."""
    global _workers, _refused
    if _workers is None or len(_workers.queues) != count:
        if _workers is not None:
            _workers.close()
            _workers = None
        if _refused:
            return None
        try:
            _workers = _Workers(count)
        except RuntimeError:
            _refused = True
            return None
    return _workers


def _run_shares(fn, slices, threads, workers):
    """Thread k takes slices k, k + threads, ...; the calling thread is thread 0."""

    def share(k):
        return [fn(s) for s in slices[k::threads]]

    others = [workers.submit(k, lambda k=k: share(k)) for k in range(1, threads)]
    try:
        shares = [share(0)]
    finally:  # every slice has stopped writing before the caller goes on, even after an error
        for future in others:
            future.exception()
    shares += [future.result() for future in others]
    results = [None] * len(slices)
    for k, part in enumerate(shares):
        results[k::threads] = part
    return results


def scratch(shape, dtype) -> np.ndarray:
    """An uninitialised array that belongs to the calling thread and is reused from call to call.

    A fresh large array costs page faults on first touch at every call; one buffer per
    thread, kept, pays them once. Valid until the same thread's next call.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _local.buf = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def _unreferenced_count() -> int:
    """What ``sys.getrefcount`` reads, in kept()'s loop, for an array nothing else refers to."""
    count = 0
    for a in [np.empty(0)]:
        count = sys.getrefcount(a)  # the list, the loop variable, the argument: 3 on CPython 3.11
    return count


_UNREFERENCED = _unreferenced_count()
_kept_lock = threading.Lock()
_kept: list[np.ndarray] = []  # arrays handed out by kept(), newest last
_KEPT_COUNT = 8  # at most this many are remembered,
_KEPT_BYTES = 2**26  # and at most 64 MiB of them: the oldest are forgotten first


def kept(shape, dtype) -> np.ndarray:
    """An uninitialised array that outlives the call (a layer's cache), reusing one no longer in use.

    A fresh array of a few megabytes costs a page fault per 4 KiB page on first touch,
    whenever the allocator has handed its memory back to the system: 2,500 faults, 2 ms, per
    LeNet-5 training step on one thread. An array handed out earlier is reused once nothing
    but this list refers to it: no cache, and no view of it (a view holds a reference to it).
    """
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    with _kept_lock:
        for a in _kept:
            if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) == _UNREFERENCED:
                return a
        a = np.empty(shape, dtype=dtype)
        _kept.append(a)
        del _kept[:-_KEPT_COUNT]
        while sum(k.nbytes for k in _kept) > _KEPT_BYTES and len(_kept) > 1:
            del _kept[0]
        return a

