"""Plain and residual networks of variable depth."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from coursekit.nn.depth import DepthNet, TwoConvBlock, degradation_experiment, weighted_layers  # noqa: E402


@pytest.mark.parametrize("blocks", [1, 3])
@pytest.mark.parametrize("residual", [False, True])
def test_shapes_and_layer_count(blocks, residual):
    model = DepthNet(blocks, residual, width=4)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == weighted_layers(blocks) == 2 * blocks + 2


def test_the_shortcut_is_the_only_difference():
    torch.manual_seed(0)
    plain = DepthNet(2, False, width=4)
    torch.manual_seed(0)
    residual = DepthNet(2, True, width=4)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), residual.state_dict().values()))
    x = torch.randn(3, 1, 28, 28)
    assert not torch.allclose(plain.eval()(x), residual.eval()(x))


def test_residual_block_is_relu_of_branch_plus_input():
    torch.manual_seed(0)
    block = TwoConvBlock(3, residual=True).eval()
    plain = TwoConvBlock(3, residual=False).eval()
    plain.load_state_dict(block.state_dict())
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        branch = plain.bn2(plain.conv2(torch.relu(plain.bn1(plain.conv1(x)))))
        assert torch.allclose(plain(x), torch.relu(branch))
        assert torch.allclose(block(x), torch.relu(branch + x))


def test_bad_depth_is_named():
    with pytest.raises(ValueError, match="blocks must be an int >= 1"):
        DepthNet(0, True)


def test_experiment_reports_every_network():
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    result = degradation_experiment(X, y, X[:16], y[:16], blocks=(1, 2), width=4, epochs=1)
    kinds = [(r["kind"], r["layers"]) for r in result["records"]]
    assert kinds == [("plain", 4), ("residual", 4), ("plain", 6), ("residual", 6)]
    for r in result["records"]:
        assert 0 <= r["test_acc"] <= 1 and r["train_loss"] > 0 and r["init_grad"] > 0
