"""Measure candidate recipes for LeNet-5 on MNIST-5k over several seeds: how the default was chosen.

    .venv/bin/python benchmarks/recipe_sweep.py [--seeds 0 1 2 3 4] [--workers 1] [--cores-per-worker 2]
                                                [--only NAME ...] [--deadline 0] [--json-out FILE]

Each candidate is the default recipe with some fields changed; every run trains
on the CPU with ``--cores-per-worker`` torch threads, each worker pinned to its
own cores (Linux), and reports test accuracy on the fixed 1,000-image test split
and the training time. Prints one line per run and a table of min / median / max
accuracy and median training seconds per candidate. ``--deadline`` (seconds,
0: none) stops starting new runs after that long.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time

import torch

from coursekit.nn.experiment import run_training
from coursekit.nn.recipes import default_config

# Each candidate names every field of the recipe it is about (OLD: the default until 2026-11-30),
# so that a candidate stays the same when the default changes.
OLD = dict(epochs=40, batch_size=32, lr=0.05, label_smoothing=0.1, ema=0.0)
CANDIDATES: dict[str, dict] = {
    "e20": {**OLD, "epochs": 20, "label_smoothing": 0.0},
    "e30": {**OLD, "epochs": 30, "label_smoothing": 0.0},
    "e40": {**OLD, "label_smoothing": 0.0},
    "e50": {**OLD, "epochs": 50, "label_smoothing": 0.0},
    "e40-ls0.1": OLD,
    "e50-ls0.1": {**OLD, "epochs": 50},
    "e30-ls0.1": {**OLD, "epochs": 30},
    "e30-b64-lr0.1": {**OLD, "epochs": 30, "batch_size": 64, "lr": 0.1, "label_smoothing": 0.0},
    "e40-wd1e-3": {**OLD, "weight_decay": 1e-3, "label_smoothing": 0.0},
    "e40-do0.3": {**OLD, "dropout": 0.3, "label_smoothing": 0.0},
    "e40-onecycle-lr0.1": {**OLD, "schedule": "onecycle", "lr": 0.1, "label_smoothing": 0.0},
    "e40-ls0.1-ema0.999": {**OLD, "ema": 0.999},
    "b64-e60-ls0.1": {**OLD, "epochs": 60, "batch_size": 64, "lr": 0.1},
    "b64-e60-ls0.1-ema0.998": {**OLD, "epochs": 60, "batch_size": 64, "lr": 0.1, "ema": 0.998},
    "b128-e80-ls0.1-ema0.998": {**OLD, "epochs": 80, "batch_size": 128, "lr": 0.2, "ema": 0.998},
    "b128-e100-ls0.1-ema0.998": {**OLD, "epochs": 100, "batch_size": 128, "lr": 0.2, "ema": 0.998},
    "b128-e80-wd1e-3": {**OLD, "epochs": 80, "batch_size": 128, "lr": 0.2, "ema": 0.998, "weight_decay": 1e-3},
    "b128-e80-ema0.999": {**OLD, "epochs": 80, "batch_size": 128, "lr": 0.2, "ema": 0.999},
    "b128-e80-lr0.1": {**OLD, "epochs": 80, "batch_size": 128, "lr": 0.1, "ema": 0.998},
    "b256-e120-lr0.4": {**OLD, "epochs": 120, "batch_size": 256, "lr": 0.4, "ema": 0.997},
}


def _worker(jobs, results, cores: list[int], threads: int) -> None:
    cores = [c for c in cores if c < (os.cpu_count() or 1)]
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    torch.set_num_threads(threads)
    while True:
        job = jobs.get()
        if job is None:
            return
        name, seed = job
        config = default_config("lenet5", "mnist5k", device="cpu", progress=False, seed=seed, **CANDIDATES[name])
        m = run_training(config).metrics
        results.put(dict(name=name, seed=seed, test_accuracy=m["test_accuracy"], train_seconds=m["train_seconds"],
                         epochs=m["epochs"], recipe=m["recipe"], threads=m["threads"]))


def _table(rows: list[dict]) -> None:
    print(f"{'candidate':<20} {'runs':>4} {'min acc':>8} {'median':>8} {'max acc':>8} {'median s':>9}")
    for name in CANDIDATES:
        mine = [r for r in rows if r["name"] == name]
        if not mine:
            continue
        acc = [r["test_accuracy"] for r in mine]
        sec = statistics.median(r["train_seconds"] for r in mine)
        print(f"{name:<20} {len(mine):>4} {min(acc):>8.4f} {statistics.median(acc):>8.4f} {max(acc):>8.4f} "
              f"{sec:>9.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--cores-per-worker", type=int, default=2)
    p.add_argument("--first-core", type=int, default=0)
    p.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--deadline", type=float, default=0.0)
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    jobs, results = ctx.Queue(), ctx.Queue()
    todo = [(name, seed) for seed in args.seeds for name in args.only]
    k = args.cores_per_worker
    procs = [ctx.Process(target=_worker, args=(jobs, results, list(range(args.first_core + i * k,
                                                                        args.first_core + (i + 1) * k)), k))
             for i in range(args.workers)]
    for proc in procs:
        proc.start()
    start, rows, sent = time.perf_counter(), [], 0
    for job in todo[:args.workers]:
        jobs.put(job)
        sent += 1
    while len(rows) < sent:
        r = results.get()
        rows.append(r)
        print(f"{r['name']:<20} seed {r['seed']}: test accuracy {r['test_accuracy']:.4f}, "
              f"training {r['train_seconds']:.1f} s", flush=True)
        if sent < len(todo) and not (args.deadline and time.perf_counter() - start > args.deadline):
            jobs.put(todo[sent])
            sent += 1
    for _ in procs:
        jobs.put(None)
    for proc in procs:
        proc.join()
    _table(rows)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
