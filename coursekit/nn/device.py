"""Pick the device to compute on: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

__all__ = ["DeviceError", "pick_device", "describe_device"]


class DeviceError(ValueError):
    """A device was asked for by name and this machine does not have it."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def describe_device(device: torch.device) -> str:
    """A short human name for ``device``, e.g. ``"cuda:0 (NVIDIA H100)"`` or ``"cpu (2 threads)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def pick_device(name: str | torch.device = "auto", *, verbose: bool = False) -> torch.device:
    """Return the device to train on.

    Parameters
    ----------
    name : str or torch.device
        ``"auto"`` picks CUDA if present, then Apple MPS, then CPU. Any other
        value (``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"cpu"``) is taken as asked,
        after checking that this machine has it.
    verbose : bool
        If True, print which device was chosen and why.

    Returns
    -------
    torch.device

    Raises
    ------
    DeviceError
        If a named device is not available here (``pick_device("cuda")`` on a
        machine without a CUDA GPU), with a message saying what there is instead.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise DeviceError(f"pick_device: name must be a string such as 'auto', 'cuda' or 'cpu', got {name!r}")
    wanted = name.strip().lower()
    if wanted == "auto":
        if torch.cuda.is_available():
            device, why = torch.device("cuda"), "CUDA is available"
        elif _mps_available():
            device, why = torch.device("mps"), "Apple MPS is available"
        else:
            device, why = torch.device("cpu"), "no CUDA or MPS device found"
        if verbose:
            print(f"device: {describe_device(device)} ({why})")
        return device
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} asked for, but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use --device auto or cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {name!r} asked for, but this machine has {count} CUDA device(s)")
    elif device.type == "mps" and not _mps_available():
        raise DeviceError(f"device {name!r} asked for, but Apple MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unsupported device {name!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if verbose:
        print(f"device: {describe_device(device)} (asked for {name!r})")
    return device
