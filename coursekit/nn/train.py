"""Fit and evaluate a classifier: one loop for a laptop CPU, one GPU, or several under torchrun.

:func:`fit` trains with SGD (momentum) or Adam, weight decay, a learning-rate
schedule stepped every batch, mixed precision on CUDA, a tqdm progress bar,
a per-epoch history, and a checkpoint written after every epoch that holds
everything needed to continue exactly where it stopped: model, optimizer,
scheduler, grad scaler, the weight average, epoch, history and the random number
generators (torch's global one, and the generators of the training loader and
its augmentation). With the same ``seed`` two CPU runs give identical weights.

With ``ema`` > 0 it also keeps an exponential moving average of the weights (and of
batch norm's running statistics), updated after every step; validation uses the
average, and at the end the model is given the averaged weights. Averaging the
last few thousand steps smooths out the noise of the final SGD steps, which on a
small data set moves test accuracy by a few tenths of a percent from seed to seed.
The decay warms up as ``min(ema, (1 + n) / (10 + n))`` after ``n`` averaged steps, so
that the average follows the weights early on and a short run is not held back by
its random initial weights.

Under ``torch.distributed`` (see :mod:`coursekit.nn.distributed`) the same
function trains a ``DistributedDataParallel`` model: it calls
``sampler.set_epoch``, sums the training statistics over the ranks, and only
rank 0 prints and writes the checkpoint.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from .device import describe_device, pick_device

__all__ = ["seed_everything", "fit", "evaluate", "predict", "save_checkpoint", "load_checkpoint",
           "HISTORY_KEYS"]

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "train_seconds",
                "images", "lr")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (all CUDA devices too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _dist() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch.Generators a loader draws from: its own, its sampler's, and those it wraps."""
    found: list[torch.Generator] = []
    seen: set[int] = set()
    stack = [loader]
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator) and id(g) not in {id(x) for x in found}:
            found.append(g)
        for attr in ("loader", "sampler", "batch_sampler"):
            stack.append(getattr(obj, attr, None))
    return found


def _rng_state(loader: Any, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "loaders": [g.get_state() for g in _loader_generators(loader)]}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, loader: Any, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    gens = _loader_generators(loader)
    if len(gens) != len(state["loaders"]):
        raise ValueError(f"checkpoint holds {len(state['loaders'])} loader generator states but this training "
                         f"loader has {len(gens)}: resume with the same kind of loader (augmented or not)")
    for g, s in zip(gens, state["loaders"]):
        g.set_state(s)
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write ``state`` with ``torch.save`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`fit` (tensors and plain Python values only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def _make_optimizer(name: str, params: Iterable, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {name!r}")


def _make_schedule(name: str | None, optimizer, total_steps: int, steps_per_epoch: int, step_epochs: int | None,
                   gamma: float, lr: float):
    if name is None or name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if name == "step":
        every = step_epochs or max(1, total_steps // steps_per_epoch // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=every * steps_per_epoch, gamma=gamma)
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(2, total_steps))
    raise ValueError(f"schedule must be 'cosine', 'step', 'onecycle' or None, got {name!r}")


def _batches(loader, device: torch.device, dtype: torch.dtype | None):
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if dtype is not None:
            x = x.to(dtype)
        yield x, y.to(device, non_blocking=True)


def _param_dtype(model: nn.Module) -> torch.dtype | None:
    p = next(model.parameters(), None)
    return p.dtype if p is not None and p.is_floating_point() else None


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of a whole loader, on the CPU: ``(N, classes)`` and ``(N,)``."""
    device = _model_device(model) if device is None else pick_device(device)
    was_training = model.training
    model.eval()
    outs, labels = [], []
    try:
        for x, y in _batches(loader, device, _param_dtype(model)):
            outs.append(model(x).float().cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs), torch.cat(labels)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: str | torch.device | None = None, *,
             amp: bool = False) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy (a fraction in [0, 1]) of ``model`` over ``loader``.

    The model is put in eval mode for the pass and its mode restored after.
    ``device`` defaults to where the model's parameters are.
    """
    device = _model_device(model) if device is None else pick_device(device)
    use_amp = amp and device.type == "cuda"
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    try:
        for x, y in _batches(loader, device, _param_dtype(model)):
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            count += y.numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no examples")
    return loss_sum / count, correct / count


@dataclass
class _Run:
    """What one call of :func:`fit` trains with, built once and read by every step."""

    model: nn.Module  # as given (perhaps a DistributedDataParallel)
    core: nn.Module  # the model itself, whose state_dict is saved
    train_loader: Any
    opt: torch.optim.Optimizer
    sched: Any
    scaler: torch.amp.GradScaler
    device: torch.device
    dtype: torch.dtype | None
    use_amp: bool
    label_smoothing: float
    epochs: int
    rank: int
    world: int
    progress: bool
    config: dict
    ema: AveragedModel | None = None  # the moving average of ``core``'s weights and buffers

    @property
    def says(self) -> bool:
        return self.progress and self.rank == 0

    @property
    def evaluated(self) -> nn.Module:
        """What validation measures: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.model


def _ema_update(decay: float):
    """AveragedModel's ``multi_avg_fn``: a <- d a + (1 - d) w, with d = min(decay, (1 + n) / (10 + n))."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - d)
        else:  # counters such as batch norm's num_batches_tracked: the current value
            torch._foreach_copy_(averaged, current)

    return update


def _start(model, train_loader, epochs, optimizer, lr, momentum, weight_decay, schedule, step_epochs, gamma,
           label_smoothing, ema, device, amp, progress) -> _Run:
    """Move the model to its device and build the optimiser, schedule and grad scaler."""
    device = pick_device(device)
    rank, world = _dist()
    model.to(device)
    use_amp = bool(amp) and device.type == "cuda"
    steps = len(train_loader)  # type: ignore[arg-type]
    opt = _make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    sched = _make_schedule(schedule, opt, epochs * steps, steps, step_epochs, gamma, lr)
    config = dict(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
                  epochs=epochs, ema=ema)
    core = _unwrap(model)
    average = AveragedModel(core, multi_avg_fn=_ema_update(ema), use_buffers=True) if ema else None
    return _Run(model, core, train_loader, opt, sched, torch.amp.GradScaler("cuda", enabled=use_amp),
                device, _param_dtype(model), use_amp, label_smoothing, epochs, rank, world, progress, config, average)


def _resume(run: _Run, checkpoint: Path) -> tuple[int, dict[str, list]]:
    """Load a checkpoint written by :func:`_save` into ``run``; return its epoch and history."""
    state = load_checkpoint(checkpoint, map_location=run.device)
    run.core.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    if run.sched is not None and state.get("scheduler") is not None:
        run.sched.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    if run.ema is not None:
        if state.get("ema") is None:
            raise ValueError(f"{checkpoint} was written without a weight average (ema): resume it with ema=0")
        run.ema.load_state_dict(state["ema"])
    _set_rng_state(state["rng"], run.train_loader, run.device)
    if run.says:
        print(f"resumed from {checkpoint} at epoch {int(state['epoch'])}/{run.epochs}")
    return int(state["epoch"]), {k: list(state["history"].get(k, [])) for k in HISTORY_KEYS}


def _train_step(run: _Run, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One optimiser step on a batch; returns (loss sum, correct, count) of the batch."""
    x = x.to(run.device, non_blocking=True)
    if run.dtype is not None and x.dtype != run.dtype:
        x = x.to(run.dtype)
    y = y.to(run.device, non_blocking=True)
    with torch.autocast(device_type=run.device.type, dtype=torch.float16, enabled=run.use_amp):
        logits = run.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=run.label_smoothing)
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.opt)
    run.scaler.update()
    if run.sched is not None:
        run.sched.step()
    if run.ema is not None:
        run.ema.update_parameters(run.core)
    with torch.no_grad():
        n = float(y.numel())
        return torch.stack([loss.detach().double() * n, (logits.argmax(1) == y).sum().double(),
                            torch.tensor(n, dtype=torch.float64, device=run.device)])


def _train_epoch(run: _Run, epoch: int) -> tuple[list[float], float]:
    """One pass over the training loader; (loss sum, correct, count) over all ranks, and its seconds."""
    for attr in ("sampler", "batch_sampler"):
        sampler = getattr(run.train_loader, attr, None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
    run.model.train()
    t0 = time.perf_counter()
    stats = torch.zeros(3, dtype=torch.float64, device=run.device)
    steps = len(run.train_loader)
    bar = tqdm(run.train_loader, total=steps, desc=f"epoch {epoch + 1}/{run.epochs}", leave=False,
               disable=not run.says, unit="batch", dynamic_ncols=True)
    for i, (x, y) in enumerate(bar):
        stats += _train_step(run, x, y)
        if not bar.disable and (i % 10 == 0 or i + 1 == steps):
            s = stats.tolist()
            bar.set_postfix(loss=f"{s[0] / max(s[2], 1):.4f}", acc=f"{s[1] / max(s[2], 1):.2%}", refresh=False)
    bar.close()
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    seconds = time.perf_counter() - t0
    if run.world > 1:
        dist.all_reduce(stats)
    return stats.tolist(), seconds


def _epoch_row(run: _Run, epoch: int, stats: list[float], train_seconds: float, val_loader, t0: float) -> dict:
    """Evaluate on ``val_loader`` and make the epoch's history row (and print it)."""
    loss_sum, correct, count = stats
    val_loss, val_acc = evaluate(run.evaluated, val_loader, run.device, amp=run.use_amp) if val_loader is not None \
        else (math.nan, math.nan)
    seconds = time.perf_counter() - t0
    row = dict(epoch=epoch + 1, train_loss=loss_sum / max(count, 1), train_acc=correct / max(count, 1),
               val_loss=val_loss, val_acc=val_acc, seconds=seconds, train_seconds=train_seconds,
               images=int(count), lr=run.opt.param_groups[0]["lr"])
    if run.says:
        val = f"  val loss {val_loss:.4f} acc {val_acc:.2%}" if val_loader is not None else ""
        print(f"epoch {epoch + 1:>3}/{run.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%}"
              f"{val}  {seconds:.1f} s ({count / train_seconds:,.0f} img/s)  lr {row['lr']:.3g}", flush=True)
    return row


def _save(run: _Run, checkpoint: Path, epoch: int, history: dict[str, list]) -> None:
    """Write everything an exact resume needs (rank 0 writes; every rank waits for it)."""
    if run.rank == 0:
        save_checkpoint(checkpoint, model=run.core.state_dict(), optimizer=run.opt.state_dict(),
                        scheduler=run.sched.state_dict() if run.sched is not None else None,
                        scaler=run.scaler.state_dict() if run.use_amp else None, epoch=epoch,
                        ema=run.ema.state_dict() if run.ema is not None else None,
                        history=history, rng=_rng_state(run.train_loader, run.device), config=run.config)
    if run.world > 1:
        dist.barrier()


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None, *, epochs: int = 10,
        optimizer: str = "sgd", lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 5e-4,
        schedule: str | None = "cosine", step_epochs: int | None = None, gamma: float = 0.1,
        label_smoothing: float = 0.0, ema: float = 0.0, device: str | torch.device = "auto", amp: bool = True,
        checkpoint: str | Path | None = None, resume: bool = True, seed: int | None = 0,
        progress: bool = True) -> dict[str, list]:
    """Train ``model`` for ``epochs`` epochs, and return its per-epoch history.

    Parameters
    ----------
    model : nn.Module
        Maps ``x: (N, C, H, W)`` to logits ``(N, classes)``; may be a
        ``DistributedDataParallel`` (see :mod:`coursekit.nn.distributed`).
        Moved to ``device``; trained in place.
    train_loader, val_loader : iterables of ``(x, y)`` batches
        Usually from :func:`coursekit.nn.datasets.make_loaders`; ``y: (N,)`` int64.
    epochs : int
        Total epochs; on resume, training continues up to this number.
    optimizer : {"sgd", "adam", "adamw"}
    lr, momentum, weight_decay : float
        ``momentum`` is used by SGD only.
    schedule : {"cosine", "step", "onecycle", None}
        Stepped after every batch: cosine decay to 0 over the whole run,
        ``step`` multiplies by ``gamma`` every ``step_epochs`` epochs, ``onecycle``
        warms up to ``lr`` then anneals.
    label_smoothing : float
        Passed to ``cross_entropy`` for the training loss.
    ema : float
        Decay of an exponential moving average of the weights, in [0, 1); 0: none.
        Validation measures the average, and the model ends with its weights.
    device : str or torch.device
        ``"auto"``: CUDA, then MPS, then CPU (see :func:`coursekit.nn.device.pick_device`).
    amp : bool
        Mixed precision (float16 autocast with a GradScaler) when on CUDA; ignored elsewhere.
    checkpoint : path, optional
        Written after every epoch (by rank 0 only under torch.distributed).
    resume : bool
        If ``checkpoint`` exists, load it and continue from its epoch.
    seed : int or None
        Seeds the global generators before training (None: leave them).
    progress : bool
        Show a tqdm bar with the running loss and accuracy, and print one line per epoch.

    Returns
    -------
    dict of lists, one entry per epoch:
        ``epoch`` (1-based), ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``
        (NaN without a validation loader), ``seconds`` (whole epoch), ``train_seconds``
        (the training pass alone), ``images`` (trained on, over all ranks) and ``lr``
        (at the epoch's end). Accuracies are fractions.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    if not 0 <= ema < 1:
        raise ValueError(f"fit: ema must be in [0, 1), got {ema!r}")
    if seed is not None:
        seed_everything(seed)
    run = _start(model, train_loader, epochs, optimizer, lr, momentum, weight_decay, schedule, step_epochs, gamma,
                 label_smoothing, ema, device, amp, progress)
    history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        start, history = _resume(run, Path(checkpoint))
    if run.says and start < epochs:
        print(f"training on {describe_device(run.device)}"
              + (f" x {run.world} processes" if run.world > 1 else "")
              + (", mixed precision (float16)" if run.use_amp else ""))
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        stats, train_seconds = _train_epoch(run, epoch)
        row = _epoch_row(run, epoch, stats, train_seconds, val_loader, t0)
        for k in HISTORY_KEYS:
            history[k].append(row[k])
        if checkpoint is not None:
            _save(run, Path(checkpoint), epoch + 1, history)
    if run.ema is not None:
        run.core.load_state_dict(run.ema.module.state_dict())
    return history
