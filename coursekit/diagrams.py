"""Computational graphs drawn from the numbers of a forward and a backward pass.

Each node is a circle with its name, its forward value and its error message
``dL/dnode``; each edge ``u -> v`` carries two numbers: the value that flows
forward along it (``u``'s value) above, and the message it sends back,
``dL/dv * dv/du``, below, in red. A node's message is the sum of what its
outgoing edges send back, which the figure lets a reader check by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch

__all__ = ["GraphNode", "GraphEdge", "graph_figure"]

FORWARD_COLOUR, BACKWARD_COLOUR = "tab:green", "tab:red"


@dataclass(frozen=True)
class GraphNode:
    """A node at ``(x, y)`` (data units), with its value and its message ``dL/dnode``."""

    name: str
    x: float
    y: float
    value: float
    grad: float


@dataclass(frozen=True)
class GraphEdge:
    """An edge ``src -> dst`` with the value flowing forward and the message flowing back."""

    src: str
    dst: str
    forward: float
    backward: float


def _number(fmt: str, v: float) -> str:
    return fmt.format(v + 0.0)  # + 0.0 writes -0.0 as 0


def _draw_node(ax, node: GraphNode, fmt: str, radius: float) -> None:
    ax.add_patch(Circle((node.x, node.y), radius, facecolor="white", edgecolor="0.3", linewidth=1.2, zorder=3))
    ax.text(node.x, node.y, node.name, ha="center", va="center", fontsize=10, fontweight="bold", zorder=4)
    ax.text(node.x, node.y + radius + 0.08, _number(fmt, node.value), ha="center", va="bottom",
            fontsize=8, color=FORWARD_COLOUR, zorder=4)
    ax.text(node.x, node.y - radius - 0.08, _number(fmt, node.grad), ha="center", va="top",
            fontsize=8, color=BACKWARD_COLOUR, zorder=4)


def _draw_edge(ax, edge: GraphEdge, a: GraphNode, b: GraphNode, fmt: str, radius: float, where: float) -> None:
    length = math.hypot(b.x - a.x, b.y - a.y) or 1.0
    dx, dy = (b.x - a.x) / length * radius, (b.y - a.y) / length * radius  # start and end on the circles
    ax.add_patch(FancyArrowPatch((a.x + dx, a.y + dy), (b.x - dx, b.y - dy), arrowstyle="-|>", mutation_scale=12,
                                 shrinkA=0, shrinkB=0, color="0.45", linewidth=1.0, zorder=1))
    mx, my = a.x + where * (b.x - a.x), a.y + where * (b.y - a.y)
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    ax.text(mx, my + 0.05, _number(fmt, edge.forward), ha="center", va="bottom", fontsize=7,
            color=FORWARD_COLOUR, bbox=box, zorder=2)
    ax.text(mx, my - 0.05, _number(fmt, edge.backward), ha="center", va="top", fontsize=7,
            color=BACKWARD_COLOUR, bbox=box, zorder=2)


def graph_figure(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], *, fmt: str = "{:.3g}",
                 size: tuple[float, float] = (9.0, 4.0), radius: float = 0.22, where: float = 0.5,
                 title: str | None = None) -> Figure:
    """Draw a computational graph with forward values (green) and backward messages (red).

    Parameters
    ----------
    nodes : sequence of GraphNode
        Positions in data units; the axes span the nodes with a margin.
    edges : sequence of GraphEdge
        Each names two nodes of ``nodes``.
    fmt : str
        Format of every number.
    size : (float, float)
        Figure size in inches.
    radius : float
        Node radius in data units (keep x and y on similar scales).
    where : float
        Position of an edge's labels between its ends, 0 (source) to 1.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If there are no nodes, two nodes share a name, or an edge names an unknown node.
    """
    if not nodes:
        raise ValueError("graph_figure: nodes is empty; expected at least one node")
    by_name = {n.name: n for n in nodes}
    if len(by_name) != len(nodes):
        raise ValueError(f"graph_figure: node names must be unique, got {[n.name for n in nodes]}")
    for e in edges:
        for end in (e.src, e.dst):
            if end not in by_name:
                raise ValueError(f"graph_figure: edge {e.src} -> {e.dst} names unknown node {end!r}")
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    for e in edges:
        _draw_edge(ax, e, by_name[e.src], by_name[e.dst], fmt, radius, where)
    for n in nodes:
        _draw_node(ax, n, fmt, radius)
    xs, ys = [n.x for n in nodes], [n.y for n in nodes]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig
