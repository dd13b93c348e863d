"""Pictures of what a classifier does in a two-dimensional input space.

A classifier with two inputs can be drawn completely: evaluate it on a grid that
covers the data and colour each grid point by the answer. The book uses this to
compare nearest neighbours with different k, a single neuron with a multi-layer
perceptron, and networks with random weights.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
from matplotlib.figure import Figure

__all__ = ["grid_points", "decision_regions_figure", "response_surfaces_figure"]

#: A function from points of shape (M, 2) to one number or one label per point.
Predictor = Callable[[np.ndarray], np.ndarray]


def grid_points(lo: float, hi: float, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ``n x n`` grid over ``[lo, hi]^2``: its two coordinate arrays and its points, shape (n*n, 2)."""
    if not hi > lo or n < 2:
        raise ValueError(f"grid_points: need hi > lo and n >= 2, got lo={lo}, hi={hi}, n={n}")
    ticks = np.linspace(lo, hi, n)
    xx, yy = np.meshgrid(ticks, ticks)
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], axis=1)


def _limits(X: np.ndarray, margin: float = 0.5) -> tuple[float, float]:
    return float(X.min()) - margin, float(X.max()) + margin


def decision_regions_figure(predictors: Mapping[str, Predictor], X: np.ndarray, y: np.ndarray, *,
                            n: int = 200, size: float = 3.0, ncols: int | None = None,
                            cmap: str = "coolwarm", lim: float | None = None) -> Figure:
    """One panel per classifier: its predicted label on a grid, the data on top, the boundary in black.

    Parameters
    ----------
    predictors : mapping of title -> function
        Each maps points ``(M, 2)`` to integer labels ``(M,)``.
    X : array, shape (N, 2)
        The data points, drawn with their true labels ``y``; may be empty (N = 0) when ``lim`` is given.
    y : array of int, shape (N,)
    n : int
        Grid points per axis.
    size : float
        Side of one panel in inches.
    ncols : int, optional
        Panels per row; all in one row by default.
    cmap : str
        Colour map for the labels.
    lim : float, optional
        Draw ``[-lim, lim]^2``; by default the data's range with a margin.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per predictor.

    Raises
    ------
    ValueError
        If there is no predictor, ``X`` is not ``(N, 2)``, ``y`` does not have one label per point,
        or there are no points and no ``lim``.
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y)
    if not predictors:
        raise ValueError("decision_regions_figure: predictors is empty; expected at least one")
    if X.ndim != 2 or X.shape[1] != 2 or y.shape != (len(X),):
        raise ValueError(
            f"decision_regions_figure: need X of shape (N, 2) and y of shape (N,), got {X.shape} and {y.shape}")
    if lim is None and len(X) == 0:
        raise ValueError("decision_regions_figure: no data points to take the range from; pass lim")
    ncols = len(predictors) if ncols is None else ncols
    nrows = -(-len(predictors) // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    xx, yy, pts = grid_points(*(_limits(X) if lim is None else (-lim, lim)), n)
    grids = {title: np.asarray(predict(pts)).reshape(xx.shape) for title, predict in predictors.items()}
    every = np.concatenate([y.ravel()] + [g.ravel() for g in grids.values()])
    lo, hi = int(every.min()), int(every.max())
    levels = np.arange(lo, hi + 2) - 0.5
    for ax, (title, labels) in zip(axes, grids.items()):
        ax.contourf(xx, yy, labels, levels=levels, cmap=cmap, alpha=0.3)
        ax.contour(xx, yy, labels, levels=levels[1:-1], colors="black", linewidths=1.0)
        if len(X):
            ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=lo, vmax=hi, s=12, edgecolors="black", linewidths=0.3)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([]); ax.set_yticks([])
        ax.set_aspect("equal")
    for ax in axes[len(predictors):]:
        ax.axis("off")
    return fig


def response_surfaces_figure(functions: Mapping[str, Predictor], *, lim: float = 3.0, n: int = 60,
                             size: float = 3.2, zlabel: str = "output") -> Figure:
    """One 3-D surface per function of two inputs, over ``[-lim, lim]^2``.

    Parameters
    ----------
    functions : mapping of title -> function
        Each maps points ``(M, 2)`` to one value per point ``(M,)``.
    lim : float
        Half-width of the square drawn.
    n : int
        Grid points per axis.
    size : float
        Width of one panel in inches.
    zlabel : str
        Label of the vertical axis.

    Returns
    -------
    matplotlib.figure.Figure
        One 3-D axis per function.
    """
    if not functions:
        raise ValueError("response_surfaces_figure: functions is empty; expected at least one")
    xx, yy, pts = grid_points(-lim, lim, n)
    fig = Figure(figsize=(size * len(functions), size), layout="constrained")
    for k, (title, f) in enumerate(functions.items(), start=1):
        ax = fig.add_subplot(1, len(functions), k, projection="3d")
        ax.plot_surface(xx, yy, np.asarray(f(pts)).reshape(xx.shape), cmap="viridis",
                        linewidth=0, antialiased=False, rcount=n, ccount=n)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("$x_1$", fontsize=8); ax.set_ylabel("$x_2$", fontsize=8); ax.set_zlabel(zlabel, fontsize=8)
        ax.tick_params(labelsize=6)
    return fig
