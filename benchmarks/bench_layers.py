"""Speed of coursekit's numpy conv and pooling against torch.nn.functional on the CPU.

    .venv/bin/python benchmarks/bench_layers.py [--reps 7] [--threads 1 2] [--settle 1.0]

For each case, the median time of coursekit and of torch in the same process, with
the same thread count (threadpoolctl for numpy's BLAS, torch.set_num_threads for
torch), and their ratio coursekit / torch: below 1 means coursekit is faster.
The issue's targets (float32) are printed beside the ratios; nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from coursekit.arith import conv_macs
from coursekit.layers import conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward

# (target ratio at 1 thread, at 2 threads) for float32 (issues 3 and 16); None: no target.
CASES = {
    "conv 3->32, 64x3x32x32, 3x3 s1 p1, fwd+bwd": dict(x=(64, 3, 32, 32), w=(32, 3, 3, 3), target=(1.0, 1.3)),
    "conv 32->64, 64x32x16x16, 3x3 s1 p1, fwd+bwd": dict(x=(64, 32, 16, 16), w=(64, 32, 3, 3), target=(None, 1.5)),
    "maxpool 2x2, 64x32x32x32, fwd": dict(x=(64, 32, 32, 32), pool=True, backward=False, target=(1.0, 1.0)),
    "maxpool 2x2, 64x32x32x32, fwd+bwd": dict(x=(64, 32, 32, 32), pool=True, backward=True, target=(2.0, 2.0)),
}
FLOAT64_CONV_TARGET = 1.0


# After a product on several threads, OpenBLAS's idle threads spin for about half a second
# before they sleep, taking cores from whatever runs next: here, the other library's
# threads. Each measurement therefore starts after a pause (--settle).
SETTLE_SECONDS = 1.0


def median_seconds(fn, reps: int, settle: float = SETTLE_SECONDS) -> float:
    time.sleep(settle)
    fn()  # warm up: allocations, BLAS thread start, torch's kernel choice
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_pair(spec, dtype, rng):
    x = rng.standard_normal(spec["x"]).astype(dtype)
    w = (rng.standard_normal(spec["w"]) * 0.1).astype(dtype)
    b = rng.standard_normal(spec["w"][0]).astype(dtype)
    out_shape = (spec["x"][0], spec["w"][0], *spec["x"][2:])
    dout = rng.standard_normal(out_shape).astype(dtype)

    def ours():
        out, cache = conv2d_forward(x, w, b, padding=1)
        conv2d_backward(dout, cache)

    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    dt = torch.from_numpy(dout)

    def theirs():
        F.conv2d(xt, wt, bt, padding=1).backward(dt)

    n, c, h, wd = spec["x"]
    flops = 2 * 3 * n * conv_macs(c, spec["w"][0], 3, h, wd)  # forward, dx and dw: three products of one size
    return ours, theirs, flops


def pool_pair(spec, dtype, rng):
    # A permutation: no ties, so both libraries route each gradient to the same input.
    x = (rng.permutation(int(np.prod(spec["x"]))).reshape(spec["x"]) / 1000).astype(dtype)
    out_shape = (*spec["x"][:2], spec["x"][2] // 2, spec["x"][3] // 2)
    dout = rng.standard_normal(out_shape).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_(spec["backward"])
    dt = torch.from_numpy(dout)

    def ours():
        out, cache = maxpool2d_forward(x, kernel_size=2)
        if spec["backward"]:
            maxpool2d_backward(dout, cache)

    def theirs():
        out = F.max_pool2d(xt, 2)
        if spec["backward"]:
            out.backward(dt)

    return ours, theirs, None


def matmul_gflops(dtype, reps, settle) -> float:
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(dtype)
    return 2 * 1024**3 / median_seconds(lambda: a @ a, reps, settle) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS, help="seconds of pause before each measurement")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, torch {torch.__version__}; median of {args.reps} runs; ratio = coursekit / torch; "
          f"load average {os.getloadavg()[0]:.1f}")
    header = f"{'case':<48} {'dtype':<8} {'thr':>3} {'coursekit ms':>13} {'torch ms':>9} {'ratio':>6} {'target':>7} {'GFLOP/s':>8} {'peak':>6}"
    print(header)
    print("-" * len(header))
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(threads):
            for dtype in (np.float32, np.float64):
                peak = matmul_gflops(dtype, 3, args.settle)
                for name, spec in CASES.items():
                    make = pool_pair if spec.get("pool") else conv_pair
                    ours, theirs, flops = make(spec, dtype, rng)
                    t_ours, t_theirs = (median_seconds(fn, args.reps, args.settle) for fn in (ours, theirs))
                    target = spec["target"][threads - 1] if dtype == np.float32 and threads <= 2 else None
                    if dtype == np.float64 and not spec.get("pool"):
                        target = FLOAT64_CONV_TARGET
                    ratio = t_ours / t_theirs
                    mark = "" if target is None else (" ok" if ratio <= target else " MISS")
                    gflops = f"{flops / t_ours / 1e9:8.1f}" if flops else " " * 8
                    peak_s = f"{peak:6.1f}" if flops else " " * 6
                    target_s = f"{target:>7.1f}" if target is not None else " " * 7
                    print(f"{name:<48} {np.dtype(dtype).name:<8} {threads:>3} {t_ours * 1e3:13.2f} {t_theirs * 1e3:9.2f} "
                          f"{ratio:6.2f} {target_s}{gflops} {peak_s}{mark}", flush=True)  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
