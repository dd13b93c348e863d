"""Objects homework 5's tests build next to the student's code (``student.lib("coursekit.testcases.torch_probes.X")``).

They let a CPU-only grader see device handling:

* :class:`FakeAccelerators` makes ``torch.cuda`` and ``torch.backends.mps`` report what a test
  wants, so that ``get_device`` is checked on every branch;
* :class:`UnmovedLoader` yields batches that refuse any computation until they are moved with
  ``.to(device)``: a loop that forgets to move them fails with a message naming the fix.

This module imports only torch: it is importable where the course's reference is not.
"""
from __future__ import annotations

from typing import Any
from unittest import mock

import torch

__all__ = ["FakeAccelerators", "UnmovedLoader", "toy_model", "best_device", "devices_of"]


class FakeAccelerators:
    """``start()`` makes CUDA and MPS look (un)available, ``stop()`` undoes it."""

    def __init__(self, cuda: bool, mps: bool):
        self.patches = [
            mock.patch("torch.cuda.is_available", return_value=cuda),
            mock.patch("torch.cuda.device_count", return_value=int(cuda)),
            mock.patch("torch.backends.mps.is_available", return_value=mps),
            mock.patch("torch.backends.mps.is_built", return_value=mps),
        ]

    def start(self) -> None:
        for p in self.patches:
            p.start()

    def stop(self) -> None:
        for p in reversed(self.patches):
            p.stop()


def _is_device(value: Any) -> bool:
    return isinstance(value, (torch.device, str, int)) and not isinstance(value, bool)


class _Unmoved(torch.Tensor):
    """A batch as a loader hands it out: usable in computations only after ``.to(device)``."""

    _MOVES = (torch.Tensor.to, torch.Tensor.cuda)
    _METADATA = (torch.Tensor.__len__, torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel,
                 torch.Tensor.shape.__get__, torch.Tensor.ndim.__get__, torch.Tensor.dtype.__get__,
                 torch.Tensor.device.__get__, torch.Tensor.__repr__, torch.Tensor.__format__)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        plain = tuple(a.as_subclass(torch.Tensor) if isinstance(a, _Unmoved) else a for a in args)
        moved = func in cls._MOVES and (func is torch.Tensor.cuda or "device" in kwargs
                                        or any(_is_device(a) for a in args[1:]))
        if moved or func in cls._METADATA:
            return func(*plain, **kwargs)
        if func is torch.Tensor.to:  # a dtype change only: still not on the device
            return func(*plain, **kwargs).as_subclass(_Unmoved)
        raise RuntimeError("this batch was used before being moved to the device: move every batch with "
                           "x, y = x.to(device), y.to(device) before using it")


class UnmovedLoader:
    """An iterable of ``(x, y)`` batches that must be moved to the device before use."""

    def __init__(self, batches):
        self.batches = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in batches]
        self.dataset = torch.utils.data.TensorDataset(torch.cat([x for x, _ in self.batches]),
                                                      torch.cat([y for _, y in self.batches]))

    def __iter__(self):
        for x, y in self.batches:
            yield x.clone().as_subclass(_Unmoved), y.clone().as_subclass(_Unmoved)

    def __len__(self) -> int:
        return len(self.batches)


def toy_model(d: int, c: int, seed: int, *, dropout: float = 0.0) -> torch.nn.Module:
    """Linear - BatchNorm1d - ReLU - [Dropout] - Linear in float64, initialised from ``seed`` alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [torch.nn.Linear(d, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU()]
        layers += [torch.nn.Dropout(dropout)] if dropout else []
        model = torch.nn.Sequential(*layers, torch.nn.Linear(8, c)).double()
        with torch.no_grad():  # running statistics unlike any batch's own
            model[1].running_mean.normal_()
            model[1].running_var.uniform_(0.5, 2)
    return model


def best_device() -> torch.device:
    """The device the grader trains on (the course's choice, independent of the student's get_device)."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def devices_of(model: torch.nn.Module) -> list:
    """The device type of each of the model's parameters and buffers (``["cuda", ...]``)."""
    return [t.device.type for t in (*model.parameters(), *model.buffers())]
