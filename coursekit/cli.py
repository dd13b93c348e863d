"""The ``coursekit`` command: train a course model on a data set, or print a model's summary.

    coursekit train --model lenet5 --data mnist5k --epochs 5 --device auto --metrics-out m.json
    coursekit summary --model alexnet

Under ``torchrun`` (``torchrun --nproc_per_node N -m coursekit train ...``) the
same ``train`` runs data-parallel with DistributedDataParallel; rank 0 writes
the outputs. Bad arguments end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

__all__ = ["main", "CLIError"]

DEFAULT_INPUT = {"alexnet": (3, 227, 227), "lenet5": (1, 28, 28)}
DIGIT_LIKE = {"mnist5k", "digits", "mnist", "fashion_mnist", "synthetic"}


class CLIError(Exception):
    """A problem with the command's arguments or inputs: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an argument error is one line (no usage block) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        raise CLIError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="coursekit", description="Train and inspect the course's CNNs.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train a model on a data set",
                       description="Train a model; write a checkpoint, training curves and (optionally) metrics.")
    t.add_argument("--model", default="lenet5", help="lenet5, alexnet_small, vgg_small, resnet18_small, alexnet")
    t.add_argument("--data", default="mnist5k", help="mnist5k, digits, mnist, fashion_mnist, cifar10, synthetic")
    t.add_argument("--data-root", type=Path, help="directory with the files of mnist / fashion_mnist / cifar10")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=64, help="examples per step (per process under torchrun)")
    t.add_argument("--optimizer", default="sgd", help="sgd (with momentum), adam or adamw")
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--schedule", default="cosine", help="cosine, step, onecycle or none")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--augment", action="store_true",
                   help="augment training batches (digits: shifts and rotations; cifar10: shifts and flips)")
    t.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="batch norm in the model (default: the model's own)")
    t.add_argument("--dropout", type=float, default=None, help="dropout probability (default: the model's own)")
    t.add_argument("--width", type=float, default=None, help="width of alexnet_small / vgg_small / resnet18_small")
    t.add_argument("--resize", type=int, default=None, help="resize images to SxS (e.g. 32 for digits)")
    t.add_argument("--limit", type=int, default=None, help="use only the first N images of each part (quick runs)")
    t.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    t.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    t.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=Path, default=None, help="output directory (default runs/MODEL-DATA)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    t.add_argument("--metrics-out", type=Path, default=None, help="write a JSON of the run's metrics here")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or epoch lines")

    s = sub.add_parser("summary", help="print a model's layer table (output shapes, parameters, MACs)")
    s.add_argument("--model", default="alexnet")
    s.add_argument("--input-shape", default=None, help="C,H,W (default: 3,227,227 for alexnet, 1,28,28 for "
                                                          "lenet5, 3,32,32 otherwise)")
    s.add_argument("--num-classes", type=int, default=None, help="default 1000 for alexnet, else 10")
    return p


def _check_positive(name: str, value, low=1) -> None:
    if value is not None and value < low:
        raise CLIError(f"--{name} must be >= {low}, got {value}")


def _model_kwargs(args) -> dict:
    kw = {}
    if args.batch_norm is not None:
        kw["batch_norm"] = args.batch_norm
    if args.dropout is not None:
        if not 0 <= args.dropout < 1:
            raise CLIError(f"--dropout must be in [0, 1), got {args.dropout}")
        kw["dropout"] = args.dropout
    if args.width is not None:
        if args.model not in ("alexnet_small", "vgg_small", "resnet18_small"):
            raise CLIError(f"--width applies to alexnet_small, vgg_small and resnet18_small, not {args.model}")
        kw["width"] = int(args.width) if args.model == "resnet18_small" else args.width
    return kw


def _train(args) -> int:
    import torch

    from coursekit import data as ckdata
    from coursekit.nn import distributed as ckdist
    from coursekit.nn.augment import default_augment
    from coursekit.nn.datasets import DATASETS, AugmentedLoader, load_split, make_loaders
    from coursekit.nn.device import DeviceError, describe_device, pick_device
    from coursekit.nn.figures import confusion_matrix_figure, training_curves
    from coursekit.nn.models import MODELS, build_model
    from coursekit.nn.train import evaluate, fit, predict

    t_start = time.perf_counter()
    # Check everything cheap before loading data or building anything.
    if args.model not in MODELS:
        raise CLIError(f"unknown model {args.model!r}; choose one of: {', '.join(MODELS)}")
    if args.data not in DATASETS:
        raise CLIError(f"unknown data set {args.data!r}; choose one of: {', '.join(DATASETS)}")
    if DATASETS[args.data]:
        if args.data_root is None:
            raise CLIError(f"--data {args.data} reads files you have: give their directory with --data-root DIR")
        if not args.data_root.is_dir():
            raise CLIError(f"--data-root {str(args.data_root)!r} does not exist or is not a directory")
    for name in ("epochs", "batch_size", "limit", "resize", "threads"):
        _check_positive(name.replace("_", "-"), getattr(args, name), low=0 if name == "epochs" else 1)
    if args.lr <= 0:
        raise CLIError(f"--lr must be > 0, got {args.lr}")
    schedule = None if args.schedule == "none" else args.schedule
    if schedule not in (None, "cosine", "step", "onecycle"):
        raise CLIError(f"unknown --schedule {args.schedule!r}; choose cosine, step, onecycle or none")
    if args.optimizer not in ("sgd", "adam", "adamw"):
        raise CLIError(f"unknown --optimizer {args.optimizer!r}; choose sgd, adam or adamw")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if ckdist.launched_by_torchrun():
            info = ckdist.init_from_env(device=args.device)
        else:
            info = ckdist.DistInfo(0, 1, 0, pick_device(args.device))
    except DeviceError as e:
        raise CLIError(str(e)) from None
    device = info.device
    main_rank = info.is_main
    say = print if (main_rank and args.progress) else (lambda *a, **k: None)

    try:
        try:
            split = load_split(args.data, args.data_root)
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(f"cannot load {args.data}: {e}") from None
        class_names = ckdata.CLASS_NAMES.get(args.data) if hasattr(ckdata, "CLASS_NAMES") else None
        augment = default_augment("digits" if args.data in DIGIT_LIKE else "natural") if args.augment else None
        loaders = make_loaders(split, batch_size=args.batch_size, augment=augment, seed=args.seed,
                               resize=args.resize, limit=args.limit,
                               num_classes=len(class_names) if class_names else None)
        train_loader = loaders.train
        if info.world_size > 1:
            base = loaders.train.loader if isinstance(loaders.train, AugmentedLoader) else loaders.train
            train_loader = ckdist.shard_loader(base.dataset, args.batch_size, info, seed=args.seed)
            if augment is not None:
                train_loader = AugmentedLoader(train_loader, augment, seed=args.seed + 1 + info.rank)
        torch.manual_seed(args.seed)
        try:
            model = build_model(args.model, in_channels=loaders.in_channels, num_classes=loaders.num_classes,
                                input_size=loaders.input_size, **_model_kwargs(args))
        except (ValueError, TypeError) as e:
            raise CLIError(f"cannot build {args.model} for {args.data} "
                           f"({loaders.in_channels}x{loaders.input_size}x{loaders.input_size} images): {e}") from None
        n_params = sum(p.numel() for p in model.parameters())
        out = args.out or Path("runs") / f"{args.model}-{args.data}"
        ckpt = out / "checkpoint.pt"
        if main_rank:
            out.mkdir(parents=True, exist_ok=True)
            if ckpt.exists() and not args.resume:
                ckpt.unlink()  # a fresh run; --resume continues instead
        if info.world_size > 1:
            torch.distributed.barrier()
        say(f"{args.model} ({n_params:,} parameters) on {args.data}: {len(loaders.train.dataset)} train / "
            f"{len(loaders.val.dataset)} val / {len(loaders.test.dataset)} test images"
            + (f", augmented ({augment})" if augment is not None else ""))
        net = ckdist.wrap(model, info)
        history = fit(net, train_loader, loaders.val, epochs=args.epochs, optimizer=args.optimizer, lr=args.lr,
                      momentum=args.momentum, weight_decay=args.weight_decay, schedule=schedule,
                      label_smoothing=args.label_smoothing, device=device, amp=args.amp, checkpoint=ckpt,
                      resume=args.resume, seed=args.seed, progress=args.progress)
        if not main_rank:
            return 0
        test_loss, test_acc = evaluate(model, loaders.test, device)
        fit_seconds = float(sum(history["seconds"]))
        train_seconds = float(sum(history["train_seconds"]))
        images = int(sum(history["images"]))
        say(f"test: loss {test_loss:.4f}, accuracy {test_acc:.2%} on {len(loaders.test.dataset)} images; "
            f"training took {fit_seconds:.1f} s")
        fig = training_curves(history, title=f"{args.model} on {args.data}")
        fig.savefig(out / "curves.png", dpi=100)
        logits, labels = predict(model, loaders.test, device)
        confusion_matrix_figure(labels.numpy(), logits.argmax(1).numpy(), class_names).savefig(
            out / "confusion.png", dpi=100)
        (out / "history.json").write_text(json.dumps(history, indent=1))
        metrics = {
            "model": args.model, "data": args.data, "parameters": n_params,
            "test_accuracy": test_acc, "test_loss": test_loss,
            "val_accuracy": history["val_acc"][-1] if history["val_acc"] else None,
            "epochs": len(history["epoch"]), "seconds": fit_seconds,
            "train_seconds": train_seconds, "epoch_seconds": history["seconds"],
            "images_per_second": images / train_seconds if train_seconds > 0 else None,
            "wall_seconds": time.perf_counter() - t_start,
            "device": device.type, "device_name": describe_device(device), "world_size": info.world_size,
            "amp": bool(args.amp and device.type == "cuda"), "threads": torch.get_num_threads(),
            "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr,
            "weight_decay": args.weight_decay, "schedule": args.schedule, "augment": bool(args.augment),
            "seed": args.seed, "limit": args.limit, "torch": torch.__version__,
            "checkpoint": str(ckpt), "curves": str(out / "curves.png"),
            "command": "coursekit " + " ".join(sys.argv[1:]),
        }
        if args.metrics_out is not None:
            args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
            args.metrics_out.write_text(json.dumps(metrics, indent=1) + "\n")
            say(f"metrics: {args.metrics_out}")
        say(f"wrote {ckpt}, {out / 'curves.png'}, {out / 'confusion.png'}")
        return 0
    finally:
        ckdist.cleanup()


def _summary(args) -> int:
    from coursekit.nn.models import MODELS, build_model
    from coursekit.nn.summary import summary

    if args.model not in MODELS:
        raise CLIError(f"unknown model {args.model!r}; choose one of: {', '.join(MODELS)}")
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.split(","))
            assert len(shape) == 3 and min(shape) > 0
        except (ValueError, AssertionError):
            raise CLIError(f"--input-shape must be C,H,W with positive ints, got {args.input_shape!r}") from None
    else:
        shape = DEFAULT_INPUT.get(args.model, (3, 32, 32))
    classes = args.num_classes or (1000 if args.model == "alexnet" else 10)
    try:
        model = build_model(args.model, in_channels=shape[0], num_classes=classes, input_size=shape[1])
        table = summary(model, shape)
    except (ValueError, RuntimeError) as e:
        raise CLIError(f"cannot summarise {args.model} on input {shape}: {str(e).splitlines()[0]}") from None
    print(f"{args.model}")
    print(table)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coursekit`` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        return _train(args) if args.command == "train" else _summary(args)
    except CLIError as e:
        print(f"coursekit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coursekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
