"""Block diagrams: the numbers in the boxes, and the drawing."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from coursekit.block_diagrams import (Diagram, Edge, Node, basic_block, bottleneck_block, dense_block, draw,
                                inception_module, se_block)


def test_inception_3a_matches_the_googlenet_table():
    d = inception_module()
    # GoogLeNet's table: 256 output channels, 159K parameters (weights, in units of 1024), 128M ops.
    weights = d.notes["params"] - (64 + 96 + 128 + 16 + 32 + 32)
    assert d.notes["out_channels"] == 256
    assert weights == 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    assert weights // 1024 == 159
    assert round(d.notes["macs"] / 1e6) == 128


def test_residual_block_counts():
    # two 3x3 convs 64->64 without bias, plus gamma and beta of two batch norms
    assert basic_block(64).notes["params"] == 2 * (9 * 64 * 64 + 2 * 64)
    assert bottleneck_block(256, 64).notes["params"] == (256 * 64 + 2 * 64) + (9 * 64 * 64 + 2 * 64) + (64 * 256 + 2 * 256)


def test_dense_and_se_counts():
    d = dense_block(64, 32, 4)
    assert d.notes["out_channels"] == 64 + 4 * 32
    layer_edges = [e for e in d.edges if e.dst == "x4"]
    assert len(layer_edges) == 4, "the fourth layer receives the input and all three earlier layers"
    assert se_block(256, 16).notes["params"] == 256 * 16 + 16 + 16 * 256 + 256


@pytest.mark.parametrize("build", [inception_module, basic_block, bottleneck_block, dense_block, se_block])
def test_every_box_is_drawn(build):
    d = build()
    fig = draw(d)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert all(n.label in texts for n in d.nodes)
    assert fig.axes[0].get_title() == d.title


def test_draws_into_a_given_axes():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert draw(basic_block(), ax=right) is fig
    assert right.get_title() == basic_block().title and not left.texts


def test_bad_diagrams_are_named():
    with pytest.raises(ValueError, match="names no node 'b'"):
        draw(Diagram((Node("a", "a", 0, 0),), (Edge("a", "b"),)))
    with pytest.raises(ValueError, match="unique"):
        draw(Diagram((Node("a", "a", 0, 0), Node("a", "b", 0, 1)), ()))
    with pytest.raises(ValueError, match="unknown route"):
        draw(Diagram((Node("a", "a", 0, 0), Node("b", "b", 0, 1)), (Edge("a", "b", route="zigzag"),)))
    with pytest.raises(ValueError, match="reduction 5 must divide channels 256"):
        se_block(256, 5)
    with pytest.raises(ValueError, match="channels must be an int >= 1"):
        basic_block(0)
