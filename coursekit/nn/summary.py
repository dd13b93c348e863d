"""A layer-by-layer table of a torch model: output shapes, parameters, MACs and FLOPs.

The counts use the course's hand formulas (``coursekit.arith``): a conv layer
costs ``K * H2 * W2 * (KH * KW * D1 / groups)`` multiply-accumulates (MACs) and a
linear layer ``in * out``; one MAC is two FLOPs; bias adds, activations,
pooling and normalisation are not counted, as in the syllabus's AlexNet table.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

__all__ = ["SummaryRow", "Summary", "summary"]


class SummaryRow(NamedTuple):
    """One executed leaf module: ``output_shape`` excludes the batch axis, e.g. ``(96, 55, 55)``."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


class Summary(NamedTuple):
    """The rows of :func:`summary` with totals; ``str(s)`` is the printable table."""

    rows: list[SummaryRow]
    input_shape: tuple[int, ...]
    total_params: int
    trainable_params: int
    total_macs: int

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    def table(self) -> str:
        """The table as text: one line per layer, then the totals."""
        head = ("layer", "type", "output shape", "params", "MACs")
        lines = [(r.name, r.type, "x".join(str(d) for d in r.output_shape), f"{r.params:,}", f"{r.macs:,}")
                 for r in self.rows]
        widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(head)]

        def fmt(cols):
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))

        rule = "-" * len(fmt(head))
        out = [f"input: {'x'.join(str(d) for d in self.input_shape)}", fmt(head), rule, *map(fmt, lines), rule,
               f"total parameters: {self.total_params:,} ({self.trainable_params:,} trainable)",
               f"total MACs: {self.total_macs:,} ({_human(self.total_macs)}); "
               f"FLOPs: {self.total_flops:,} ({_human(self.total_flops)}) per image"]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        _, k, h2, w2 = out.shape
        return k * h2 * w2 * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features * (out.numel() // out.shape[-1] // out.shape[0])
    return 0


def summary(model: nn.Module, input_shape: Sequence[int], *, device: torch.device | str | None = None,
            dtype: torch.dtype = torch.float32) -> Summary:
    """Run one image through ``model`` and record every leaf module's output.

    Parameters
    ----------
    model : nn.Module
    input_shape : (C, H, W)
        One image's shape; a batch of one is run, in eval mode, without gradients
        (the model's train/eval mode is restored afterwards).
    device : torch.device or str, optional
        Where to run; default: where the model's parameters are.

    Returns
    -------
    Summary
        ``rows`` in execution order (a module called twice gets two rows, its
        parameters counted on the first), and totals: parameters from
        ``model.parameters()``, MACs summed over the rows.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"summary: input_shape must be (C, H, W), got {input_shape}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    names = {m: n for n, m in model.named_modules()}
    rows: list[SummaryRow] = []
    seen: set[int] = set()

    def hook(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            return
        params = 0
        if id(module) not in seen:
            seen.add(id(module))
            params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(SummaryRow(names.get(module, "?") or type(module).__name__, type(module).__name__,
                               tuple(output.shape[1:]), params, _macs(module, output)))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Summary(rows, input_shape, total, trainable, sum(r.macs for r in rows))
