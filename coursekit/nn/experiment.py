"""Run one training from a :class:`~coursekit.nn.recipes.TrainConfig`: the course's one entry point.

The command line, the benchmarks and the book's chapters all call :func:`run_training`::

    from coursekit.nn.recipes import default_config
    from coursekit.nn.experiment import run_training

    result = run_training(default_config("lenet5", "mnist5k", device="cpu", progress=False))
    result.metrics["test_accuracy"], result.history["val_acc"]

It resolves the device (and, under ``torchrun``, the process group), loads the
data set of the registry, builds the model, trains it with
:func:`coursekit.nn.train.fit` (writing ``out/checkpoint.pt`` when ``out`` is
set), evaluates it on the test split, and returns the model, its history and a
metrics dict that records the full configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed as ckdist
from .augment import default_augment
from .datasets import DATASETS, AugmentedLoader, Loaders, load_split, make_loaders
from .device import describe_device, pick_device
from .models import build_model
from .recipes import ConfigError, TrainConfig
from .train import evaluate, fit, predict

__all__ = ["RunResult", "run_training"]


@dataclass
class RunResult:
    """What a run gives back. ``metrics`` is empty on ranks other than 0 under torchrun."""

    config: TrainConfig
    model: nn.Module
    history: dict[str, list]
    metrics: dict[str, Any]
    loaders: Loaders
    checkpoint: Path | None

    def test_predictions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels of the test split, on the CPU."""
        return predict(self.model, self.loaders.test)


def _process(config: TrainConfig) -> ckdist.DistInfo:
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        if ckdist.launched_by_torchrun():
            return ckdist.init_from_env(device=config.device)
        return ckdist.DistInfo(0, 1, 0, pick_device(config.device))
    except ValueError as e:  # DeviceError: no such device here
        raise ConfigError(str(e)) from None


def _loaders(config: TrainConfig, info: ckdist.DistInfo) -> tuple[Loaders, Any]:
    """The data set's loaders, and the training loader this process uses (its shard under torchrun)."""
    try:
        split = load_split(config.data, config.data_root)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"cannot load {config.data}: {e}") from None
    augment = default_augment(DATASETS[config.data].augment) if config.augment else None
    loaders = make_loaders(split, batch_size=config.batch_size, augment=augment, seed=config.seed,
                           resize=config.resize, limit=config.limit, num_classes=DATASETS[config.data].num_classes)
    train = loaders.train
    if info.world_size > 1:
        base = train.loader if isinstance(train, AugmentedLoader) else train
        train = ckdist.shard_loader(base.dataset, config.batch_size, info, seed=config.seed)
        if augment is not None:
            train = AugmentedLoader(train, augment, seed=config.seed + 1 + info.rank)
    return loaders, train


def _model(config: TrainConfig, loaders: Loaders) -> nn.Module:
    kw: dict[str, Any] = {}
    if config.batch_norm is not None:
        kw["batch_norm"] = config.batch_norm
    if config.dropout is not None:
        kw["dropout"] = config.dropout
    if config.width is not None:
        kw["width"] = int(config.width) if config.model == "resnet18_small" else config.width
    torch.manual_seed(config.seed)
    try:
        return build_model(config.model, in_channels=loaders.in_channels, num_classes=loaders.num_classes,
                           input_size=loaders.input_size, **kw)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"cannot build {config.model} for {config.data} ({loaders.in_channels}x"
                          f"{loaders.input_size}x{loaders.input_size} images): {e}") from None


def _checkpoint(config: TrainConfig, info: ckdist.DistInfo) -> Path | None:
    """``out/checkpoint.pt``; a fresh run removes an old one, ``resume`` continues from it."""
    if config.out is None:
        return None
    ckpt = Path(config.out) / "checkpoint.pt"
    if info.is_main:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if ckpt.exists() and not config.resume:
            ckpt.unlink()
    if info.world_size > 1:
        torch.distributed.barrier()
    return ckpt


def _metrics(config: TrainConfig, model: nn.Module, history: dict, test: tuple[float, float],
             device: torch.device, info: ckdist.DistInfo, n_test: int) -> dict[str, Any]:
    train_seconds = float(sum(history["train_seconds"]))
    images = int(sum(history["images"]))
    return {
        **config.recipe(), "seed": config.seed, "limit": config.limit,  # flat, as before; "recipe" nests them
        "model": config.model, "data": config.data,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": test[1], "test_loss": test[0], "test_images": n_test,
        "val_accuracy": history["val_acc"][-1] if history["val_acc"] else None,
        "epochs": len(history["epoch"]), "seconds": float(sum(history["seconds"])),
        "train_seconds": train_seconds, "epoch_seconds": history["seconds"],
        "images_per_second": images / train_seconds if train_seconds > 0 else None,
        "device": device.type, "device_name": describe_device(device), "world_size": info.world_size,
        "amp": bool(config.amp and device.type == "cuda"), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "recipe": config.recipe(), "config": config.as_dict(),
    }


def run_training(config: TrainConfig) -> RunResult:
    """Train ``config.model`` on ``config.data`` with ``config``'s recipe; evaluate it on the test split.

    Raises :class:`~coursekit.nn.recipes.ConfigError` (one line) for a configuration
    that cannot run: an unknown name, a bad number, missing data files, a device
    this machine lacks, a model that cannot take the data's images.
    """
    config.check()
    info = _process(config)
    try:
        loaders, train_loader = _loaders(config, info)
        model = _model(config, loaders)
        ckpt = _checkpoint(config, info)
        if info.is_main and config.progress:
            print(f"{config.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on {config.data}: "
                  f"{len(loaders.train.dataset)} train / {len(loaders.val.dataset)} val / "
                  f"{len(loaders.test.dataset)} test images" + (", augmented" if config.augment else ""))
        history = fit(ckdist.wrap(model, info), train_loader, loaders.val, epochs=config.epochs,
                      optimizer=config.optimizer, lr=config.lr, momentum=config.momentum,
                      weight_decay=config.weight_decay, schedule=config.schedule,
                      label_smoothing=config.label_smoothing, ema=config.ema, device=info.device,
                      amp=config.amp, checkpoint=ckpt, resume=config.resume, seed=config.seed, progress=config.progress)
        metrics: dict[str, Any] = {}
        if info.is_main:
            test = evaluate(model, loaders.test, info.device)
            metrics = _metrics(config, model, history, test, info.device, info, len(loaders.test.dataset))
            if config.progress:
                print(f"test: loss {test[0]:.4f}, accuracy {test[1]:.2%} on {len(loaders.test.dataset)} images; "
                      f"training took {metrics['seconds']:.1f} s")
        return RunResult(config, model, history, metrics, loaders, ckpt)
    finally:
        ckdist.cleanup()
