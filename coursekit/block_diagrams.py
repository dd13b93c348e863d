"""Block diagrams of CNN building blocks, drawn with matplotlib from their real sizes.

A :class:`Diagram` is boxes (:class:`Node`) placed on a grid and arrows
(:class:`Edge`) between them; :func:`draw` turns it into a ``Figure``. The
builders (:func:`inception_module`, :func:`basic_block`,
:func:`bottleneck_block`, :func:`dense_block`, :func:`se_block`) write into
each box the layer's shape and its parameter count from :mod:`coursekit.arith`,
so a diagram cannot disagree with the tables of the book.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from coursekit import arith

__all__ = ["Node", "Edge", "Diagram", "draw", "inception_module", "basic_block", "bottleneck_block",
           "dense_block", "se_block"]

#: Fill colour of each kind of box.
COLOURS = {"data": "#e8e8e8", "conv": "#cfe2f3", "pool": "#d9ead3", "op": "#fff2cc", "fc": "#f4cccc"}


@dataclass(frozen=True)
class Node:
    """A box: ``key`` names it for edges, ``(x, y)`` is its centre in grid units (y grows downwards)."""

    key: str
    label: str
    x: float
    y: float
    kind: str = "conv"


@dataclass(frozen=True)
class Edge:
    """An arrow from the box ``src`` to the box ``dst`` (``dst`` lower down).

    ``route`` says how it runs: ``"straight"``; ``"src"`` or ``"dst"``, down,
    across and down again, turning just below the source or just above the
    target; or a number, the x offset (from the source's centre) of a vertical
    lane beside the boxes that the arrow follows, for skip connections.
    """

    src: str
    dst: str
    label: str = ""
    route: str | float = "straight"


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    title: str = ""
    notes: dict = field(default_factory=dict)   # the numbers written in the boxes, for a caption or a test


def _positive(where: str, **values) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{where}: {name} must be an int >= 1, got {v!r}")


def _half_width(node: Node, box_width: float, box_height: float) -> float:
    return (box_height * 1.3 if node.kind == "op" and len(node.label) <= 2 else box_width) / 2


def _route(a: Node, b: Node, e: Edge, box_width: float, box_height: float) -> list[tuple[float, float]]:
    """The corners of the arrow's path, from the source box's edge to the target box's edge."""
    top, bottom = b.y - box_height / 2, a.y + box_height / 2
    if e.route == "straight":
        return [(a.x, bottom), (b.x, top)]
    if e.route in ("src", "dst"):
        turn = bottom + 0.22 if e.route == "src" else top - 0.22
        return [(a.x, bottom), (a.x, turn), (b.x, turn), (b.x, top)]
    if isinstance(e.route, (int, float)) and not isinstance(e.route, bool):
        lane = a.x + e.route
        side = 1 if e.route > 0 else -1
        return [(a.x + side * _half_width(a, box_width, box_height), a.y), (lane, a.y), (lane, b.y),
                (b.x + side * _half_width(b, box_width, box_height), b.y)]
    raise ValueError(f"draw: edge {e.src!r} -> {e.dst!r} has an unknown route {e.route!r}")


def _check(diagram: Diagram) -> dict[str, Node]:
    keys = [n.key for n in diagram.nodes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"draw: node keys must be unique, got {keys}")
    for e in diagram.edges:
        for end in (e.src, e.dst):
            if end not in keys:
                raise ValueError(f"draw: edge {e.src!r} -> {e.dst!r} names no node {end!r} (nodes: {keys})")
    return {n.key: n for n in diagram.nodes}


def draw(diagram: Diagram, *, box_width: float = 2.1, box_height: float = 0.62, scale: float = 1.0,
         ax=None) -> Figure:
    """Draw ``diagram``: one rounded box per node, one arrow per edge, the title on top.

    Into ``ax`` (a matplotlib Axes) when given, e.g. to put diagrams side by
    side; otherwise into a new ``Figure`` sized to the diagram (times ``scale``).
    Returns the figure drawn into.
    """
    where = _check(diagram)
    paths = [_route(where[e.src], where[e.dst], e, box_width, box_height) for e in diagram.edges]
    xs = [n.x + s * box_width / 2 for n in diagram.nodes for s in (-1, 1)] + [x for p in paths for x, _ in p]
    ys = [n.y for n in diagram.nodes]
    x0, x1 = min(xs) - 0.3, max(xs) + 0.3
    y0, y1 = min(ys) - box_height / 2 - 0.3, max(ys) + box_height / 2 + 0.3
    if ax is None:
        fig = Figure(figsize=(scale * (1.2 * (x1 - x0) + 0.3), scale * (1.05 * (y1 - y0) + 0.5)),
                     layout="constrained")
        ax = fig.subplots()
    for n in diagram.nodes:
        w = 2 * _half_width(n, box_width, box_height)
        ax.add_patch(FancyBboxPatch((n.x - w / 2, n.y - box_height / 2), w, box_height,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=COLOURS.get(n.kind, "white"), edgecolor="0.3", linewidth=1))
        ax.text(n.x, n.y, n.label, ha="center", va="center", fontsize=9)
    for e, path in zip(diagram.edges, paths):
        (px, py) = zip(*path)
        ax.plot(px[:-1], py[:-1], color="0.25", lw=1, solid_capstyle="butt")
        ax.add_patch(FancyArrowPatch(path[-2], path[-1], arrowstyle="-|>", mutation_scale=11, color="0.25",
                                     lw=1, shrinkA=0, shrinkB=1))
        if e.label:
            i = max(range(len(path) - 1), key=lambda k: abs(path[k + 1][1] - path[k][1]))  # longest vertical run
            ax.text(path[i][0] + 0.08, (path[i][1] + path[i + 1][1]) / 2, e.label, fontsize=8, color="0.25",
                    ha="left", va="center")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_aspect("equal")
    ax.axis("off")
    if diagram.title:
        ax.set_title(diagram.title, fontsize=10)
    return ax.figure


def inception_module(in_channels: int = 192, c1: int = 64, c3_reduce: int = 96, c3: int = 128,
                     c5_reduce: int = 16, c5: int = 32, pool_proj: int = 32, size: int = 28) -> Diagram:
    """GoogLeNet's Inception module (defaults: module 3a, 28x28x192 in, 256 channels out)."""
    _positive("inception_module", in_channels=in_channels, c1=c1, c3_reduce=c3_reduce, c3=c3,
              c5_reduce=c5_reduce, c5=c5, pool_proj=pool_proj, size=size)
    convs = {"b1": (in_channels, c1, 1), "b3r": (in_channels, c3_reduce, 1), "b3": (c3_reduce, c3, 3),
             "b5r": (in_channels, c5_reduce, 1), "b5": (c5_reduce, c5, 5), "bp": (in_channels, pool_proj, 1)}
    params = sum(arith.conv_params(i, o, k) for i, o, k in convs.values())
    macs = sum(arith.conv_macs(i, o, k, size, size) for i, o, k in convs.values())
    out = c1 + c3 + c5 + pool_proj
    lab = {key: f"{k}x{k} conv, {o}" for key, (i, o, k) in convs.items()}
    nodes = (Node("in", f"input {size}x{size}x{in_channels}", 3.6, 0, "data"),
             Node("b1", lab["b1"], 0, 1.1), Node("b3r", lab["b3r"], 2.4, 1.1), Node("b3", lab["b3"], 2.4, 2.2),
             Node("b5r", lab["b5r"], 4.8, 1.1), Node("b5", lab["b5"], 4.8, 2.2),
             Node("pool", "3x3 max pool, s 1", 7.2, 1.1, "pool"), Node("bp", lab["bp"], 7.2, 2.2),
             Node("cat", f"concatenate: {size}x{size}x{out}", 3.6, 3.4, "op"))
    edges = (*(Edge("in", b, route="src") for b in ("b1", "b3r", "b5r", "pool")),
             *(Edge(a, b) for a, b in [("b3r", "b3"), ("b5r", "b5"), ("pool", "bp")]),
             *(Edge(a, "cat", route="dst") for a in ("b1", "b3", "b5", "bp")))
    title = f"Inception module: {params:,} parameters, {macs / 1e6:.0f} M multiply-adds"
    return Diagram(nodes, edges, title, {"params": params, "macs": macs, "out_channels": out})


def _residual(where: str, channels: int, convs: list[tuple[int, int, int]], kind: str) -> Diagram:
    params = sum(arith.conv_params(i, o, k, bias=False) + 2 * o for i, o, k in convs)  # + bn's gamma, beta
    nodes = [Node("in", f"x: {channels} channels", 0, 0, "data")]
    edges = []
    previous = "in"
    for j, (i, o, k) in enumerate(convs, start=1):
        last = j == len(convs)
        nodes.append(Node(f"c{j}", f"{k}x{k} conv {i}->{o}, BN" + ("" if last else ", ReLU"), 0, 1.1 * j))
        edges.append(Edge(previous, f"c{j}"))
        previous = f"c{j}"
    y_add = 1.1 * (len(convs) + 1)
    nodes += [Node("add", "+", 0, y_add, "op"), Node("out", "ReLU: y", 0, y_add + 1.0, "data")]
    edges += [Edge(previous, "add", "F(x)"), Edge("in", "add", "identity x", route=-1.5), Edge("add", "out")]
    title = f"{kind} block, {channels} channels: {params:,} parameters"
    return Diagram(tuple(nodes), tuple(edges), title, {"params": params})


def basic_block(channels: int = 64) -> Diagram:
    """ResNet-18/34's basic block: two 3x3 convolutions and an identity shortcut."""
    _positive("basic_block", channels=channels)
    return _residual("basic_block", channels, [(channels, channels, 3)] * 2, "basic")


def bottleneck_block(channels: int = 256, inner: int = 64) -> Diagram:
    """ResNet-50's bottleneck: 1x1 reduce to ``inner``, 3x3, 1x1 expand back to ``channels``."""
    _positive("bottleneck_block", channels=channels, inner=inner)
    return _residual("bottleneck_block", channels, [(channels, inner, 1), (inner, inner, 3), (inner, channels, 1)],
                     "bottleneck")


def dense_block(in_channels: int = 64, growth: int = 32, layers: int = 4) -> Diagram:
    """DenseNet's dense block: layer ``l`` sees the concatenation of the input and all earlier layers."""
    _positive("dense_block", in_channels=in_channels, growth=growth, layers=layers)
    nodes = [Node("x0", f"input: {in_channels} ch", 0, 0, "data")]
    edges = []
    params, lane = 0, 0
    for l in range(1, layers + 1):
        seen = in_channels + (l - 1) * growth
        params += arith.conv_params(seen, growth, 3, bias=False) + 2 * seen
        nodes.append(Node(f"x{l}", f"BN-ReLU-3x3 conv\n{seen} -> {growth}", 0, 1.15 * l))
        edges.append(Edge(f"x{l - 1}", f"x{l}"))
        for j in range(l - 1):                      # the skips, each in its own lane on the left
            lane += 1
            edges.append(Edge(f"x{j}", f"x{l}", route=-1.05 - 0.22 * lane))
    out = in_channels + layers * growth
    nodes.append(Node("cat", f"concat: {out} ch", 0, 1.15 * (layers + 1), "op"))
    edges += [Edge(f"x{j}", "cat", route="straight" if j == layers else 1.2 + 0.25 * (layers - j))
              for j in range(layers + 1)]
    title = f"dense block, growth {growth}: {params:,} parameters"
    return Diagram(tuple(nodes), tuple(edges), title, {"params": params, "out_channels": out})


def se_block(channels: int = 256, reduction: int = 16) -> Diagram:
    """Squeeze-and-excitation: pool each channel to one number, two FC layers, rescale the channels."""
    _positive("se_block", channels=channels, reduction=reduction)
    if channels % reduction:
        raise ValueError(f"se_block: reduction {reduction} must divide channels {channels}")
    squeezed = channels // reduction
    params = arith.linear_params(channels, squeezed) + arith.linear_params(squeezed, channels)
    nodes = (Node("in", f"x: HxWx{channels}", 0, 0, "data"), Node("f", "residual branch F(x)", 0, 1.1),
             Node("gap", f"global avg pool: 1x1x{channels}", 2.6, 2.0, "pool"),
             Node("fc1", f"FC {channels}->{squeezed}, ReLU", 2.6, 3.0, "fc"),
             Node("fc2", f"FC {squeezed}->{channels}, sigmoid", 2.6, 4.0, "fc"),
             Node("scale", "×", 0, 5.0, "op"), Node("add", "+", 0, 6.0, "op"), Node("out", "ReLU: y", 0, 7.0, "data"))
    edges = (Edge("in", "f"), Edge("f", "gap", "squeeze", route="src"), Edge("gap", "fc1"), Edge("fc1", "fc2", "excite"),
             Edge("fc2", "scale", "channel weights", route="dst"), Edge("f", "scale"), Edge("scale", "add"),
             Edge("in", "add", "identity", route=-1.5), Edge("add", "out"))
    title = f"squeeze-and-excitation, r = {reduction}: {params:,} extra parameters"
    return Diagram(nodes, edges, title, {"params": params})
