"""Train the numpy LeNet-5 on MNIST-5k and report seconds per epoch and test accuracy.

    .venv/bin/python benchmarks/bench_numpy_training.py [--model lenet5|three_layer] [--epochs 5] [--threads 2]

Target (issue 3): >= 95% test accuracy on the course's 1,000 held-out images in
5 epochs, at <= 1.5 s per epoch on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from coursekit.data import mnist5k
from coursekit.nets import LeNet5, ThreeLayerConvNet
from coursekit.solver import LENET5_MNIST5K, Solver



def build(name: str, seed: int):
    if name == "lenet5":
        return LeNet5(seed=seed)
    if name == "three_layer":
        return ThreeLayerConvNet(num_filters=16, filter_size=5, hidden_dim=100, seed=seed)
    raise SystemExit(f"unknown model {name!r}: choose lenet5 or three_layer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = mnist5k()
    with threadpool_limits(args.threads):
        model = build(args.model, args.seed)
        recipe = {**LENET5_MNIST5K, "num_epochs": args.epochs}  # Solver copies optim_config: the recipe stays as it is
        solver = Solver(model, data.X_train, data.y_train, data.X_val, data.y_val, seed=args.seed, progress=False, **recipe)
        start = time.perf_counter()
        history = solver.train()
        total = time.perf_counter() - start
        test_acc = solver.accuracy(data.X_test, data.y_test)
    print(f"{args.model}, {args.threads} thread(s), {len(data.X_train)} training images, float32")
    for epoch, (sec, tr, va) in enumerate(zip(history.epoch_seconds, history.train_acc, history.val_acc), 1):
        print(f"epoch {epoch}: {sec:5.2f} s   train acc {tr:.3f}   val acc {va:.3f}")
    per_epoch = float(np.median(history.epoch_seconds))
    print(f"median epoch {per_epoch:.2f} s (target <= 1.5 s), total {total:.1f} s with evaluation")
    print(f"test accuracy {test_acc:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
