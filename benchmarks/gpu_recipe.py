"""The default LeNet-5 / MNIST-5k recipe on a CUDA GPU with mixed precision: accuracy and images per second.

    .venv/bin/python benchmarks/gpu_recipe.py [--seeds 0 1] [--batch-sizes 32 256]

Runs :func:`coursekit.nn.experiment.run_training` with the default recipe on
``cuda`` (float16 autocast), once per seed, then once per extra batch size (the
learning rate scaled with it), and prints test accuracy, training seconds and
training images per second (the training passes alone, after the first epoch's
warm-up is included; see the median epoch for the steady state).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from coursekit.nn.experiment import run_training
from coursekit.nn.recipes import default_config


def _line(label: str, m: dict) -> str:
    epoch = statistics.median(m["epoch_seconds"])
    return (f"{label}: {m['device_name']}, amp {m['amp']}, batch {m['batch_size']}, {m['epochs']} epochs, "
            f"test accuracy {m['test_accuracy']:.4f}, training {m['train_seconds']:.1f} s, "
            f"{m['images_per_second']:,.0f} images/s, median epoch {epoch:.3f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--batch-sizes", type=int, nargs="*", default=[256])
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}", flush=True)
    base = default_config("lenet5", "mnist5k", device=args.device, amp=True, progress=False)
    for seed in args.seeds:
        print(_line(f"default recipe, seed {seed}", run_training(default_config(
            "lenet5", "mnist5k", device=args.device, amp=True, progress=False, seed=seed)).metrics), flush=True)
    for bs in args.batch_sizes:
        lr = base.lr * bs / base.batch_size
        m = run_training(default_config("lenet5", "mnist5k", device=args.device, amp=True, progress=False,
                                        batch_size=bs, lr=lr)).metrics
        print(_line(f"batch {bs}, lr {lr:g}", m), flush=True)


if __name__ == "__main__":
    main()
