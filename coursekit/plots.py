"""Matplotlib figures for the book and the reports.

Every function builds a :class:`matplotlib.figure.Figure` directly instead of
going through ``pyplot``. Such a figure belongs to no global state: it is not
kept alive by pyplot's figure manager, needs no ``plt.close``, works under any
backend (tests run headless), and in a notebook it is displayed by returning
it from a cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["show_images", "show_arrays", "sliding_window_figure"]

# Colours of the highlighted windows in sliding_window_figure, in order.
_WINDOW_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple")


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    ncols = n if ncols is None else max(1, min(ncols, n))
    return -(-n // ncols), ncols


def show_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, *,
                ncols: int | None = None, cmap: str = "gray",
                vmin: float | None = None, vmax: float | None = None,
                size: float = 3.0, colorbar: bool = False) -> Figure:
    """Show images side by side, one axis per image, without ticks.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        Each ``(H, W)`` (drawn with ``cmap``) or ``(H, W, 3)`` with values in
        ``[0, 255]`` or ``[0, 1]``.
    titles : sequence of str, optional
        One title per image.
    ncols : int, optional
        Images per row; all in one row by default.
    cmap : str, default "gray"
        Colour map for single-channel images.
    vmin, vmax : float, optional
        Shared colour limits for single-channel images. By default each image
        is scaled to its own range, which is what one wants for filter
        responses with negative values.
    size : float, default 3.0
        Width and height of one panel in inches.
    colorbar : bool, default False
        Add a colour bar beside each single-channel image.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with exactly ``len(images)`` axes.

    Raises
    ------
    ValueError
        If there are no images, or the number of titles differs from the
        number of images.
    """
    images = list(images)
    if not images:
        raise ValueError("show_images: images is empty; expected at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(
            f"show_images: got {len(titles)} titles for {len(images)} images"
        )
    nrows, ncols = _grid(len(images), ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, ax in enumerate(axes):
        if k >= len(images):
            fig.delaxes(ax)  # keep one axis per image
            continue
        img = np.asarray(images[k])
        if img.ndim == 3:
            rgb = img / 255.0 if img.max() > 1.0 else img
            ax.imshow(np.clip(rgb, 0.0, 1.0))
        else:
            im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if colorbar:
                fig.colorbar(im, ax=ax, shrink=0.8)
        if titles is not None:
            ax.set_title(titles[k])
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def _draw_array(ax, a: np.ndarray, fmt: str, cmap: str) -> None:
    a = np.asarray(a, dtype=float)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if hi == lo:  # a constant array (a box kernel): draw it light, not as a black block
        lo = hi - 1.0
    ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    mid = (lo + hi) / 2
    for (i, j), v in np.ndenumerate(a):
        # Dark cells get white text; the test is on the cell's shade in the colour map.
        colour = "white" if v < mid else "black"
        ax.text(j, i, fmt.format(v), ha="center", va="center", color=colour, fontsize=9)
    ax.set_xticks(np.arange(-0.5, a.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, a.shape[0], 1), minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)


def show_arrays(arrays: Sequence[np.ndarray], titles: Sequence[str] | None = None, *,
                fmt: str = "{:g}", cmap: str = "gray", cell: float = 0.45) -> Figure:
    """Draw small 2-D arrays as grids with their values written in the cells.

    Meant for worked examples (a 5x5 image, a 3x3 kernel, the result), where
    the reader should be able to check each number.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        Each of shape ``(H, W)``; a 1-D array is drawn as one row.
    titles : sequence of str, optional
        One title per array.
    fmt : str, default "{:g}"
        Format applied to each value.
    cmap : str, default "gray"
        Colour map for the cell shading.
    cell : float, default 0.45
        Size of one cell in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with exactly ``len(arrays)`` axes.

    Raises
    ------
    ValueError
        If there are no arrays, one is not 1-D or 2-D, or the number of
        titles differs from the number of arrays.
    """
    arrays = [np.atleast_2d(np.asarray(a)) for a in arrays]
    if not arrays:
        raise ValueError("show_arrays: arrays is empty; expected at least one array")
    for k, a in enumerate(arrays):
        if a.ndim != 2:
            raise ValueError(f"show_arrays: arrays[{k}] has shape {a.shape}; expected 1-D or 2-D")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"show_arrays: got {len(titles)} titles for {len(arrays)} arrays")
    height = max(a.shape[0] for a in arrays) * cell + 0.6
    widths = [a.shape[1] for a in arrays]
    fig = Figure(figsize=(sum(widths) * cell + 0.5 * len(arrays), height), layout="constrained")
    axes = fig.subplots(1, len(arrays), squeeze=False, width_ratios=widths).ravel()
    for k, (ax, a) in enumerate(zip(axes, arrays)):
        _draw_array(ax, a, fmt, cmap)
        if titles is not None:
            ax.set_title(titles[k], fontsize=10)
    return fig


def sliding_window_figure(input_size: int, kernel_size: int, stride: int = 1,
                          padding: int = 0, *, positions: Sequence[tuple[int, int]] | None = None,
                          cell: float = 0.4) -> Figure:
    """Show where a square kernel lands on a zero-padded square input.

    The left panel is the padded input: real pixels white, padding grey, and
    the kernel's window drawn at a few output positions, each in its own
    colour. The right panel is the output map with the same positions filled
    in the matching colours, so one can see which window produced which
    output value and how far apart consecutive windows are (the stride).

    Parameters
    ----------
    input_size : int
        Height and width ``N`` of the (unpadded) input.
    kernel_size : int
        Height and width ``F`` of the kernel.
    stride : int, default 1
        Step ``S`` between windows.
    padding : int, default 0
        Zeros ``P`` added on every side.
    positions : sequence of (int, int), optional
        Output positions ``(row, col)`` to highlight, at most five. By default
        the first two in the top row and the first in the second row.
    cell : float, default 0.4
        Size of one cell in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with two axes: padded input, output.

    Raises
    ------
    ValueError
        If the sizes are not positive, the kernel does not fit in the padded
        input, or a requested position is outside the output. The stride need
        not tile the input exactly; windows that would run past the edge are
        simply never placed (that is what ``floor`` in the size formula means).
    """
    from coursekit.arith import conv_output_size

    if input_size < 1 or kernel_size < 1 or stride < 1 or padding < 0:
        raise ValueError(
            "sliding_window_figure: need input_size, kernel_size, stride >= 1 and padding >= 0, "
            f"got {input_size}, {kernel_size}, {stride}, {padding}"
        )
    padded = input_size + 2 * padding
    if kernel_size > padded:
        raise ValueError(
            f"sliding_window_figure: kernel_size {kernel_size} is larger than the padded input {padded}"
        )
    out = conv_output_size(input_size, kernel_size, stride, padding, strict=False)
    if positions is None:
        positions = [(0, 0)] + ([(0, 1)] if out > 1 else []) + ([(1, 0)] if out > 1 else [])
    positions = list(positions)
    if len(positions) > len(_WINDOW_COLOURS):
        raise ValueError(f"sliding_window_figure: at most {len(_WINDOW_COLOURS)} positions, got {len(positions)}")
    for r, c in positions:
        if not (0 <= r < out and 0 <= c < out):
            raise ValueError(f"sliding_window_figure: position {(r, c)} is outside the {out}x{out} output")

    fig = Figure(figsize=((padded + out) * cell + 1.2, max(padded, out) * cell + 0.8),
                 layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2, width_ratios=[padded, out])

    for ax, n in ((ax_in, padded), (ax_out, out)):
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)  # row 0 at the top, like an image
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    for i in range(padded):
        for j in range(padded):
            inside = padding <= i < padding + input_size and padding <= j < padding + input_size
            ax_in.add_patch(Rectangle((j, i), 1, 1, facecolor="white" if inside else "0.85",
                                      edgecolor="0.6", linewidth=0.5))
            if not inside:
                ax_in.text(j + 0.5, i + 0.5, "0", ha="center", va="center", fontsize=7, color="0.45")
    for i in range(out):
        for j in range(out):
            ax_out.add_patch(Rectangle((j, i), 1, 1, facecolor="white", edgecolor="0.6", linewidth=0.5))

    for k, (r, c) in enumerate(positions):
        colour = _WINDOW_COLOURS[k]
        top, left = r * stride, c * stride
        # Offset nested outlines a little so overlapping windows stay visible.
        inset = 0.06 * (k + 1)
        ax_in.add_patch(Rectangle((left + inset, top + inset), kernel_size - 2 * inset,
                                  kernel_size - 2 * inset, fill=False, edgecolor=colour, linewidth=2.2))
        ax_out.add_patch(Rectangle((c, r), 1, 1, facecolor=colour, alpha=0.55, edgecolor=colour))

    ax_in.set_title(f"input {input_size}x{input_size}, padding {padding}\n"
                    f"kernel {kernel_size}x{kernel_size}, stride {stride}", fontsize=10)
    ax_out.set_title(f"output {out}x{out}", fontsize=10)
    return fig


# --- Training curves (appended for the book's training chapters) -----------------------

__all__ += ["training_curves"]


def training_curves(histories, *, smooth: int = 10, size: tuple[float, float] = (10.0, 3.4)) -> Figure:
    """Loss per step and accuracy per epoch of one or more training runs.

    Parameters
    ----------
    histories : mapping of str to History
        ``{label: history}``; each history has ``loss`` (one value per step),
        ``train_acc`` and ``val_acc`` (one per epoch), as :class:`coursekit.solver.History`.
    smooth : int
        The loss is drawn raw (faint) and as a moving average over this many steps.

    Returns
    -------
    Figure
        Left: loss against step. Right: training (dashed) and validation (solid)
        accuracy against epoch, one colour per run.
    """
    fig = Figure(figsize=size, layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for k, (label, h) in enumerate(histories.items()):
        colour = f"C{k}"
        loss = np.asarray(h.loss, dtype=float)
        steps = np.arange(1, len(loss) + 1)
        ax_loss.plot(steps, loss, color=colour, alpha=0.25, linewidth=0.8)
        if smooth > 1 and len(loss) >= smooth:
            avg = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
            ax_loss.plot(steps[smooth - 1:], avg, color=colour, label=label)
        else:
            ax_loss.plot(steps, loss, color=colour, label=label)
        epochs = np.arange(1, len(h.val_acc) + 1)
        ax_acc.plot(epochs, h.train_acc, color=colour, linestyle="--", marker=".")
        ax_acc.plot(epochs, h.val_acc, color=colour, marker="o", label=f"{label} (validation)")
    ax_loss.set_xlabel("step (mini-batch)")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend()
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (dashed: training)")
    ax_acc.legend(loc="lower right")
    return fig
