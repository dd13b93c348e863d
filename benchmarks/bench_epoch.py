"""numpy LeNet-5 against torch LeNet-5 on MNIST-5k, same recipe, side by side: seconds per epoch.

    .venv/bin/python benchmarks/bench_epoch.py [--epochs 3] [--threads 2] [--rounds 2]

Both train the same network (conv 6@5x5, ReLU, max pool, conv 16@5x5, ReLU, max
pool, 120, 84, 10; no batch norm, no dropout, no augmentation) with the numpy
recipe ``coursekit.solver.LENET5_MNIST5K`` (Adam, lr 3e-3 decayed by 0.6 per
epoch, batches of 50), float32, on the same threads, in alternating rounds so
that both see the same machine. The time of an epoch is its training pass alone
(no evaluation). Prints the medians and their ratio; target (issue 16): <= 1.3.
Each round's ratio and the load average before and after are printed too: on a
machine that other processes keep busy, two threads of either library wait for
each other's cores, and the ratio says more about the load than the code.
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
from threadpoolctl import threadpool_limits

from coursekit.data import mnist5k
from coursekit.nets import LeNet5
from coursekit.nn.experiment import run_training
from coursekit.nn.recipes import default_config
from coursekit.solver import LENET5_MNIST5K, Solver

TARGET = 1.3


def numpy_epochs(data, epochs: int, seed: int) -> tuple[list[float], float]:
    recipe = {**LENET5_MNIST5K, "num_epochs": epochs}
    solver = Solver(LeNet5(seed=seed), data.X_train, data.y_train, data.X_val, data.y_val, seed=seed,
                    progress=False, **recipe)
    history = solver.train()
    return history.epoch_seconds, solver.accuracy(data.X_test, data.y_test)


def torch_epochs(epochs: int, seed: int) -> tuple[list[float], float]:
    config = default_config("lenet5", "mnist5k", epochs=epochs, batch_size=LENET5_MNIST5K["batch_size"],
                            optimizer="adam", lr=LENET5_MNIST5K["optim_config"]["lr"], weight_decay=0.0,
                            schedule="none", label_smoothing=0.0, ema=0.0, augment=False, batch_norm=False,
                            dropout=0.0, device="cpu",
                            progress=False, seed=seed)
    result = run_training(config)
    return result.history["train_seconds"], result.metrics["test_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating numpy / torch rounds")
    args = parser.parse_args()
    data = mnist5k()
    torch.set_num_threads(args.threads)
    times: dict[str, list[float]] = {"numpy": [], "torch": []}
    acc: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    rounds = []
    with threadpool_limits(args.threads):
        for r in range(args.rounds):
            seconds, acc["numpy"] = numpy_epochs(data, args.epochs, seed=r)
            times["numpy"] += seconds
            rounds.append(statistics.median(seconds))
            seconds, acc["torch"] = torch_epochs(args.epochs, seed=r)
            times["torch"] += seconds
            rounds[-1] /= statistics.median(seconds)
    print(f"LeNet-5 on MNIST-5k, {len(data.X_train)} training images, float32, {args.threads} thread(s), "
          f"{args.rounds} rounds of {args.epochs} epochs; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    print("ratio per round: " + " ".join(f"{r:.2f}" for r in rounds))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in ("numpy", "torch"):
        print(f"{k:>5}: median epoch {med[k]:.3f} s (min {min(times[k]):.3f}, max {max(times[k]):.3f}), "
              f"test accuracy {acc[k]:.3f}")
    print(f"ratio numpy / torch per epoch: {med['numpy'] / med['torch']:.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
