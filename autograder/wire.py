"""Plain data on a pipe: the only thing that crosses between the grader and the student's process.

Both sides use this module: the trusted grader (:mod:`autograder.session`) and the
untrusted runner in the sandbox (:mod:`autograder.runner`). It imports nothing but the
standard library and numpy.

A *frame* is ``u32 header length | JSON header | blobs``; the header lists the blob sizes.
A *value* is encoded as JSON with tags, arrays as ``.npy`` blobs:

=====================  ==========================================================
``None, bool, int,``   themselves (JSON; NaN and infinities allowed)
``float, str``
``{"L": [...]}``       list            ``{"T": [...]}``   tuple
``{"D": [[k, v]...]}`` dict, in order  ``{"A": i}``       ndarray, blob ``i``
``{"S": i}``           numpy scalar (a 0-d blob)
``{"X": i}``           torch tensor (a blob; rebuilt as a CPU tensor)
``{"H": n, "type": s}``  a handle: an object that stays on the side that made it
``{"C": n}``           a callback: a function that runs on the grader's side
``{"R": target}``      a name in the student's process (``{"name": n}`` or ``{"lib": "pkg.mod.attr"}``)
``{"Dev": "cuda:0"}``  a torch device        ``{"Dt": "float32"}``  a torch dtype
=====================  ==========================================================

Arrays are read with ``allow_pickle=False`` and must have a numeric or boolean dtype;
frames, nesting and containers have hard limits, checked on arrival. Nothing is ever
unpickled, evaluated or imported on behalf of the other side.
"""
from __future__ import annotations

import importlib
import io
import json
import math
import struct
import sys

import numpy as np

MAX_HEADER_BYTES = 8 * 1024 ** 2
MAX_FRAME_BYTES = 512 * 1024 ** 2
MAX_DEPTH = 32
MAX_ITEMS = 100_000
ARRAY_KINDS = "biufc"
_LEN = struct.Struct("<I")


class WireError(ValueError):
    """A frame or value that breaks the protocol: the other side sent something it may not."""


class Handle:
    """An object that stayed on the other side; only its number and type name crossed."""

    def __init__(self, number: int, type_name: str = "object"):
        self.number = int(number)
        self.type_name = str(type_name)[:200]

    def __repr__(self):
        return f"<student object #{self.number}: {self.type_name}>"


class Callback:
    """A function of the grader's, which the student's side can call back through the pipe."""

    def __init__(self, number: int):
        self.number = int(number)


# ------------------------------------------------------------------------------- encode


def _npy(arr: np.ndarray) -> bytes:
    if arr.dtype.kind not in ARRAY_KINDS:
        raise WireError(f"an array of dtype {arr.dtype} cannot be sent (numbers and booleans only)")
    buf = io.BytesIO()
    # C or Fortran order travels as it is (np.save records it): a transposed array stays transposed
    contiguous = arr.flags.c_contiguous or arr.flags.f_contiguous
    np.save(buf, arr if contiguous else arr.copy(order="C"), allow_pickle=False)
    return buf.getvalue()


class Encoder:
    """Turns a value into JSON + blobs. ``opaque(obj)`` is called for what is not plain data.

    ``opaque`` returns a tag (a handle or a callback) or raises :class:`WireError`.
    """

    def __init__(self, opaque=None):
        self.blobs: list = []
        self.opaque = opaque
        self.items = 0

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def encode(self, value, depth: int = 0):
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise WireError(f"value nested deeper than {MAX_DEPTH} or with more than {MAX_ITEMS} items")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and type(value) in (int, bool):
            return value
        if type(value) is float:
            return value
        if isinstance(value, np.ndarray) and type(value) is np.ndarray:
            return {"A": self.blob(_npy(value))}
        if isinstance(value, np.generic):
            return {"S": self.blob(_npy(np.asarray(value)))}
        torch = sys.modules.get("torch")  # torch values can only exist where torch is already imported
        if torch is not None and isinstance(value, torch.Tensor):
            return {"X": self.blob(_npy(value.detach().cpu().numpy()))}
        if torch is not None and isinstance(value, torch.device):
            return {"Dev": str(value)}
        if torch is not None and isinstance(value, torch.dtype):
            return {"Dt": str(value).removeprefix("torch.")}
        if type(value) is list:
            return {"L": [self.encode(v, depth + 1) for v in value]}
        if type(value) is tuple:
            return {"T": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, dict) and type(value).__name__ in ("dict", "OrderedDict"):
            return {"D": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]}
        if self.opaque is None:
            raise WireError(f"a {type(value).__name__} cannot be sent")
        return self.opaque(value)


def dumps(message: dict, opaque=None) -> bytes:
    """One frame: ``message``'s fields, with ``message['value']``-like entries already encoded by the caller."""
    enc = Encoder(opaque)
    header = {k: enc.encode(v) if k in ("value", "args", "kwargs", "writeback") else v for k, v in message.items()}
    header["blobs"] = [len(b) for b in enc.blobs]
    text = json.dumps(header, allow_nan=True).encode()
    return _LEN.pack(len(text)) + text + b"".join(enc.blobs)


# ------------------------------------------------------------------------------- decode


def _read_exact(stream, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(stream, *, max_bytes: int = MAX_FRAME_BYTES) -> tuple:
    """``(header, blobs)`` of the next frame; :class:`WireError` for anything malformed or too big."""
    (size,) = _LEN.unpack(_read_exact(stream, _LEN.size))
    if size > MAX_HEADER_BYTES:
        raise WireError(f"a message header of {size} bytes (limit {MAX_HEADER_BYTES})")
    try:
        header = json.loads(_read_exact(stream, size))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"a message header that is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("blobs", []), list):
        raise WireError("a message header that is not an object with a list of blobs")
    sizes = header.pop("blobs", [])
    if not all(type(s) is int and s >= 0 for s in sizes) or sum(sizes) > max_bytes:
        raise WireError(f"message blobs larger than {max_bytes} bytes, or with bad sizes")
    return header, [_read_exact(stream, s) for s in sizes]


def _load_npy(data: bytes) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - whatever the bytes are, they are not an array we accept
        raise WireError(f"an array that is not a plain .npy: {type(exc).__name__}: {exc}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in ARRAY_KINDS:
        raise WireError(f"an array of dtype {getattr(arr, 'dtype', '?')} (numbers and booleans only)")
    return arr


class Decoder:
    """Turns JSON + blobs back into a value. ``handle(tag)`` and ``callback(tag)`` rebuild opaque tags."""

    def __init__(self, blobs, *, handle=None, callback=None, tensor=None, ref=None):
        self.blobs = blobs
        self.handle = handle
        self.callback = callback
        self.tensor = tensor
        self.ref = ref
        self.items = 0

    def _blob(self, i) -> np.ndarray:
        if type(i) is not int or not 0 <= i < len(self.blobs):
            raise WireError(f"a reference to blob {i!r}, which the message does not hold")
        return _load_npy(self.blobs[i])

    def decode(self, value, depth: int = 0):
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise WireError(f"value nested deeper than {MAX_DEPTH} or with more than {MAX_ITEMS} items")
        if value is None or isinstance(value, (bool, int, float, str)):
            if isinstance(value, float) and math.isnan(value):
                return float("nan")
            return value
        if not isinstance(value, dict) or len(value) not in (1, 2):
            raise WireError(f"an untagged value of type {type(value).__name__}")
        (tag, body), *_ = value.items()
        if tag == "L" and isinstance(body, list):
            return [self.decode(v, depth + 1) for v in body]
        if tag == "T" and isinstance(body, list):
            return tuple(self.decode(v, depth + 1) for v in body)
        if tag == "D" and isinstance(body, list):
            out = {}
            for pair in body:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise WireError("a dict entry that is not a [key, value] pair")
                key = self.decode(pair[0], depth + 1)
                try:
                    out[key] = self.decode(pair[1], depth + 1)
                except TypeError:
                    raise WireError(f"a dict key of type {type(key).__name__}") from None
            return out
        if tag == "A":
            return self._blob(body)
        if tag == "S":
            arr = self._blob(body)
            if arr.ndim != 0:
                raise WireError("a numpy scalar that is not 0-dimensional")
            return arr[()]
        if tag == "X":
            arr = self._blob(body)
            return self.tensor(arr) if self.tensor is not None else arr
        if tag == "H" and type(body) is int and self.handle is not None:
            return self.handle(body, value.get("type", "object"))
        if tag == "C" and type(body) is int and self.callback is not None:
            return self.callback(body)
        if tag == "R" and isinstance(body, dict) and self.ref is not None:
            return self.ref(body)
        if tag in ("Dev", "Dt") and isinstance(body, str) and len(body) < 64:
            return _torch_value(tag, body)
        raise WireError(f"an unknown or unexpected tag {tag!r}")


def _torch_value(tag: str, text: str):
    torch = importlib.import_module("torch")
    try:
        if tag == "Dev":
            return torch.device(text)
        dtype = getattr(torch, text)
    except (RuntimeError, AttributeError, TypeError) as exc:
        raise WireError(f"not a torch {'device' if tag == 'Dev' else 'dtype'}: {text!r} ({exc})") from None
    if not isinstance(dtype, torch.dtype):
        raise WireError(f"not a torch dtype: {text!r}")
    return dtype


def write_frame(stream, data: bytes) -> None:
    stream.write(data)
    stream.flush()
