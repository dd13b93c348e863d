"""The course's data sets as torch loaders: one registry, one loader, one set of helpers.

:data:`DATASETS` says what each data set is: image shape, classes, where it
comes from (shipped with coursekit, read from files you have under a root
directory, or generated) and which augmentation suits it.
:func:`load_split` reads a data set by name, :func:`make_loaders` turns a
:class:`coursekit.data.Split` into train / val / test loaders, and
:class:`AugmentedLoader` applies a batched augmentation (see
:mod:`coursekit.nn.augment`) to each training batch with its own seeded
generator, whose state :func:`coursekit.nn.train.fit` checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from coursekit import data as ckdata

__all__ = ["DataSet", "DATASETS", "dataset", "Loaders", "load_split", "split_to_datasets", "make_loaders",
           "AugmentedLoader", "synthetic_split"]


@dataclass(frozen=True)
class DataSet:
    """What a data set is: its images, its classes, where it comes from, how to augment it.

    ``source`` is ``"bundled"`` (ships with coursekit), ``"files"`` (read from
    files you have, under a root directory) or ``"generated"``; ``augment`` is the
    kind :func:`coursekit.nn.augment.default_augment` takes (``"digits"``: small
    affine changes, no flips; ``"natural"``: shifts and mirror images).
    """

    name: str
    shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    source: str
    augment: str
    class_names: tuple[str, ...] | None = None

    @property
    def needs_root(self) -> bool:
        return self.source == "files"


_DIGIT_NAMES = tuple(str(d) for d in range(10))

#: Every data set :func:`load_split` knows, by name.
DATASETS: dict[str, DataSet] = {d.name: d for d in (
    DataSet("mnist5k", (1, 28, 28), 10, "bundled", "digits", _DIGIT_NAMES),
    DataSet("digits", (1, 8, 8), 10, "bundled", "digits", _DIGIT_NAMES),
    DataSet("mnist", (1, 28, 28), 10, "files", "digits", ckdata.CLASS_NAMES["mnist"]),
    DataSet("fashion_mnist", (1, 28, 28), 10, "files", "digits", ckdata.CLASS_NAMES["fashion_mnist"]),
    DataSet("cifar10", (3, 32, 32), 10, "files", "natural", ckdata.CLASS_NAMES["cifar10"]),
    DataSet("synthetic", (1, 28, 28), 10, "generated", "digits"),
)}


def synthetic_split(n: int = 600, *, channels: int = 1, size: int = 28, num_classes: int = 10,
                    seed: int = 0) -> ckdata.Split:
    """A learnable toy data set with the shape contract of :mod:`coursekit.data` (for tests).

    Class ``k`` is a bright square at its own place on a 4-column grid, plus
    uniform noise; images ``(n, C, S, S)`` float32 in [0, 1], labels int64; split 70/10/20.
    """
    rng = np.random.default_rng(seed)
    cell = size // 4
    patterns = np.zeros((num_classes, channels, size, size))
    for k in range(num_classes):
        r, c = (k // 4) % 4, k % 4
        patterns[k, :, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = 1.0
    y = rng.integers(0, num_classes, n)
    X = np.clip(0.7 * patterns[y] + 0.3 * rng.random((n, channels, size, size)), 0, 1).astype(np.float32)
    a, b = int(0.7 * n), int(0.8 * n)
    return ckdata.Split(X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:])


def dataset(name: str) -> DataSet:
    """The registry entry of ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}") from None


def load_split(name: str, root: str | Path | None = None) -> ckdata.Split:
    """Load a data set of :data:`DATASETS` by name.

    Raises
    ------
    ValueError
        Unknown name, or a data set read from files asked for without ``root``.
    FileNotFoundError
        ``root`` does not exist or lacks the files (the message says which).
    """
    info = dataset(name)
    if info.source == "generated":
        return synthetic_split()
    if not info.needs_root:
        return getattr(ckdata, name)()
    if root is None:
        raise ValueError(f"data set {name!r} is read from files you have: give their directory (--data-root DIR)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {str(root)!r} for {name!r} does not exist or is not a directory")
    return getattr(ckdata, name)(root)


def _resize(X: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or X.shape[-1] == size:
        return X
    return F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)


def split_to_datasets(split: ckdata.Split, *, resize: int | None = None, limit: int | None = None,
                      dtype: torch.dtype = torch.float32) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    """Turn a Split into three ``TensorDataset`` of ``(image (C, H, W), label ())``.

    Parameters
    ----------
    resize : int, optional
        Resize images to ``resize x resize`` (bilinear), e.g. 8x8 digits to 32 for LeNet-5.
    limit : int, optional
        Keep only the first ``limit`` images of each part (quick runs, smoke tests).
    """
    parts = []
    for X, y in ((split.X_train, split.y_train), (split.X_val, split.y_val), (split.X_test, split.y_test)):
        if limit is not None:
            X, y = X[:limit], y[:limit]
        X = torch.as_tensor(np.ascontiguousarray(X)).to(dtype)
        if X.dim() != 4:
            raise ValueError(f"split_to_datasets: images must be (N, C, H, W), got {tuple(X.shape)}")
        parts.append(TensorDataset(_resize(X, resize), torch.as_tensor(y).long()))
    return parts[0], parts[1], parts[2]


class AugmentedLoader:
    """Wrap a ``DataLoader`` of ``(x, y)`` batches; yield ``(augment(x), y)``.

    The augmentation draws from this loader's own ``torch.Generator`` (seeded
    with ``seed``), so runs are reproducible and :func:`coursekit.nn.train.fit`
    can save and restore its state for an exact resume.
    """

    def __init__(self, loader: DataLoader, augment: Callable[..., torch.Tensor], seed: int = 0):
        self.loader = loader
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            yield self.augment(x, generator=self.generator), y

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset(self):
        return self.loader.dataset

    @property
    def sampler(self):
        return self.loader.sampler


class Loaders(NamedTuple):
    """Train, validation and test loaders, with what a model needs to know of the data."""

    train: DataLoader | AugmentedLoader
    val: DataLoader
    test: DataLoader
    in_channels: int
    input_size: int
    num_classes: int


def make_loaders(split: ckdata.Split, *, batch_size: int = 64, eval_batch_size: int = 1000,
                 augment: Callable[..., torch.Tensor] | None = None, seed: int = 0,
                 resize: int | None = None, limit: int | None = None, num_workers: int = 0,
                 num_classes: int | None = None, dtype: torch.dtype = torch.float32) -> Loaders:
    """Loaders over a Split: shuffled training batches (optionally augmented), ordered eval batches.

    The training loader shuffles with its own generator seeded from ``seed``,
    independent of the global torch RNG that initialises the model.
    ``num_classes`` defaults to one more than the largest label.
    """
    train, val, test = split_to_datasets(split, resize=resize, limit=limit, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    train_loader: DataLoader | AugmentedLoader = DataLoader(
        train, batch_size=batch_size, shuffle=True, generator=g, num_workers=num_workers)
    if augment is not None:
        train_loader = AugmentedLoader(train_loader, augment, seed=seed + 1)
    val_loader = DataLoader(val, batch_size=eval_batch_size, num_workers=num_workers)
    test_loader = DataLoader(test, batch_size=eval_batch_size, num_workers=num_workers)
    x0 = train.tensors[0]
    labels = torch.cat([train.tensors[1], val.tensors[1], test.tensors[1]])
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if len(labels) else 0
    return Loaders(train_loader, val_loader, test_loader, int(x0.shape[1]), int(x0.shape[-1]), num_classes)
