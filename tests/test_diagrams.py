"""graph_figure draws every number it is given; boundaries figures have one panel per function."""

import numpy as np
import pytest

from coursekit.boundaries import decision_regions_figure, grid_points, response_surfaces_figure
from coursekit.diagrams import GraphEdge, GraphNode, graph_figure


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_graph_figure_writes_values_and_messages():
    nodes = [GraphNode("x", 0, 0, 2.0, -3.0), GraphNode("y", 2, 0, 4.0, 1.0)]
    fig = graph_figure(nodes, [GraphEdge("x", "y", 2.0, -3.0)])
    texts = _texts(fig)
    for s in ("x", "y", "2", "4", "-3", "1"):
        assert s in texts, f"graph_figure did not write {s!r}; wrote {texts}"


def test_graph_figure_rejects_an_unknown_node():
    with pytest.raises(ValueError, match="unknown node 'z'"):
        graph_figure([GraphNode("x", 0, 0, 1.0, 1.0)], [GraphEdge("x", "z", 1.0, 1.0)])


def test_decision_regions_one_panel_per_predictor_and_grid_covers_the_range():
    X = np.array([[0.0, 0.0], [1.0, 1.0]]); y = np.array([0, 1])
    predictors = {"a": lambda p: (p[:, 0] > 0.5).astype(int), "b": lambda p: np.zeros(len(p), int)}
    fig = decision_regions_figure(predictors, X, y, n=20)
    assert len(fig.axes) == 2
    xx, yy, pts = grid_points(-1, 2, 5)
    assert pts.shape == (25, 2) and pts.min() == -1 and pts.max() == 2
    with pytest.raises(ValueError, match="need X of shape"):
        decision_regions_figure({"a": lambda p: p[:, 0]}, np.zeros((3, 3)), np.zeros(3))


def test_response_surfaces_one_axis_per_function():
    fig = response_surfaces_figure({"sum": lambda p: p.sum(1), "first": lambda p: p[:, 0]}, n=10)
    assert len(fig.axes) == 2


def test_decision_regions_without_data_needs_a_range():
    fig = decision_regions_figure({"half": lambda p: (p[:, 1] > 0).astype(int)}, np.zeros((0, 2)), np.zeros(0, int),
                                  lim=2.0, n=10)
    assert fig.axes[0].get_xlim()[0] <= -2.0 + 1e-9
    with pytest.raises(ValueError, match="pass lim"):
        decision_regions_figure({"half": lambda p: p[:, 0]}, np.zeros((0, 2)), np.zeros(0, int))
