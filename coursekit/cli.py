"""The ``coursekit`` command: train a course model on a data set, or print a model's summary.

    coursekit train --model lenet5 --data mnist5k                  # the recipe measured for the pair
    coursekit train --model lenet5 --data mnist5k --epochs 5 --metrics-out m.json   # flags override it
    coursekit summary --model alexnet

``train`` builds a :class:`coursekit.nn.recipes.TrainConfig` from the recipe of
``--model`` on ``--data`` and the flags given, and runs it with
:func:`coursekit.nn.experiment.run_training`; it then writes the training curves,
the confusion matrix, the history and (with ``--metrics-out``) the metrics.

Under ``torchrun`` (``torchrun --nproc_per_node N -m coursekit train ...``) the
same ``train`` runs data-parallel with DistributedDataParallel; rank 0 writes
the outputs. Bad arguments end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Sequence

from coursekit.nn.datasets import DATASETS
from coursekit.nn.experiment import RunResult, run_training
from coursekit.nn.figures import confusion_matrix_figure, training_curves
from coursekit.nn.models import MODELS, build_model
from coursekit.nn.recipes import ConfigError, TrainConfig, default_config
from coursekit.nn.summary import summary

__all__ = ["main", "CLIError"]

DEFAULT_INPUT = {"alexnet": (3, 227, 227), "lenet5": (1, 28, 28)}


class CLIError(Exception):
    """A problem with the command's arguments or inputs: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an argument error is one line (no usage block) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        raise CLIError(message)


def _train_parser(sub) -> None:
    t = sub.add_parser("train", help="train a model on a data set",
                       description="Train a model with the recipe measured for it and its data set (see the "
                                   "README's recipe table); every flag overrides its part of the recipe. Writes "
                                   "a checkpoint, training curves and (optionally) metrics.")
    t.add_argument("--model", default="lenet5", help="lenet5, alexnet_small, vgg_small, resnet18_small, alexnet")
    t.add_argument("--data", default="mnist5k", help="mnist5k, digits, mnist, fashion_mnist, cifar10, synthetic")
    t.add_argument("--data-root", help="directory with the files of mnist / fashion_mnist / cifar10")
    recipe = t.add_argument_group("recipe (default: the one measured for the model and data set)")
    recipe.add_argument("--epochs", type=int)
    recipe.add_argument("--batch-size", type=int, help="examples per step (per process under torchrun)")
    recipe.add_argument("--optimizer", help="sgd (with momentum), adam or adamw")
    recipe.add_argument("--lr", type=float)
    recipe.add_argument("--momentum", type=float)
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--schedule", help="cosine, step, onecycle or none")
    recipe.add_argument("--label-smoothing", type=float)
    recipe.add_argument("--ema", type=float, help="decay of a moving average of the weights (0: none), e.g. 0.998")
    recipe.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="augment training batches (digits: small affine changes; cifar10: shifts and flips)")
    recipe.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                        help="batch norm in the model")
    recipe.add_argument("--dropout", type=float, help="dropout probability")
    recipe.add_argument("--width", type=float, help="width of alexnet_small / vgg_small / resnet18_small")
    recipe.add_argument("--resize", type=int, help="resize images to SxS (e.g. 28 for digits)")
    t.add_argument("--limit", type=int, help="use only the first N images of each part (quick runs)")
    t.add_argument("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    t.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="no mixed precision on CUDA")
    t.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    t.add_argument("--seed", type=int)
    t.add_argument("--out", type=Path, help="output directory (default runs/MODEL-DATA)")
    t.add_argument("--resume", action="store_true", default=None, help="continue from OUT/checkpoint.pt if it exists")
    t.add_argument("--metrics-out", type=Path, help="write a JSON of the run's metrics here")
    t.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar or epoch lines")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="coursekit", description="Train and inspect the course's CNNs.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _train_parser(sub)
    s = sub.add_parser("summary", help="print a model's layer table (output shapes, parameters, MACs)")
    s.add_argument("--model", default="alexnet")
    s.add_argument("--input-shape", default=None, help="C,H,W (default: 3,227,227 for alexnet, 1,28,28 for "
                                                          "lenet5, 3,32,32 otherwise)")
    s.add_argument("--num-classes", type=int, default=None, help="default 1000 for alexnet, else 10")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The measured recipe of ``--model`` on ``--data``, with every flag given on top."""
    names = {f.name for f in fields(TrainConfig)} - {"model", "data"}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if given.get("out") is None:
        given["out"] = str(Path("runs") / f"{args.model}-{args.data}")
    else:
        given["out"] = str(given["out"])
    return default_config(args.model, args.data, **given)


def _write_outputs(result: RunResult, args: argparse.Namespace, wall_seconds: float) -> None:
    out = Path(result.config.out)
    history, metrics = result.history, result.metrics
    training_curves(history, title=f"{result.config.model} on {result.config.data}").savefig(out / "curves.png",
                                                                                           dpi=100)
    logits, labels = result.test_predictions()
    class_names = DATASETS[result.config.data].class_names
    confusion_matrix_figure(labels.numpy(), logits.argmax(1).numpy(), class_names).savefig(
        out / "confusion.png", dpi=100)
    (out / "history.json").write_text(json.dumps(history, indent=1))
    metrics.update(wall_seconds=wall_seconds, checkpoint=str(result.checkpoint), curves=str(out / "curves.png"),
                   command="coursekit " + " ".join(sys.argv[1:]))
    if args.metrics_out is not None:
        args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
        args.metrics_out.write_text(json.dumps(metrics, indent=1) + "\n")
        if result.config.progress:
            print(f"metrics: {args.metrics_out}")
    if result.config.progress:
        print(f"wrote {result.checkpoint}, {out / 'curves.png'}, {out / 'confusion.png'}")


def _train(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    try:
        result = run_training(config_from_args(args))
    except ConfigError as e:
        raise CLIError(str(e)) from None
    if result.metrics:  # rank 0 (the only rank outside torchrun)
        _write_outputs(result, args, time.perf_counter() - t_start)
    return 0


def _summary(args) -> int:
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
