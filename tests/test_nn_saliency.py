"""Saliency maps, checked on a linear model whose answers are known in closed form."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from coursekit.nn.saliency import gradient_saliency, occlusion_map  # noqa: E402


def _linear(h=8, w=8, classes=3, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(h * w, classes))
    return model, model[1].weight.detach().reshape(classes, h, w)


def test_gradient_of_a_linear_score_is_its_weights():
    model, weights = _linear()
    image = torch.rand(1, 8, 8)
    assert torch.allclose(gradient_saliency(model, image, 2), weights[2].abs())


def test_gradient_matches_finite_differences():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).double()
    image = torch.rand(1, 6, 6, dtype=torch.float64)
    sal = gradient_saliency(model, image, 1)
    eps = 1e-6
    for (i, j) in [(0, 0), (2, 3), (5, 5)]:
        up, down = image.clone(), image.clone()
        up[0, i, j] += eps
        down[0, i, j] -= eps
        numeric = (model(up[None])[0, 1] - model(down[None])[0, 1]).item() / (2 * eps)
        assert abs(abs(numeric) - sal[i, j].item()) < 1e-6, f"pixel {(i, j)}: {numeric} vs {sal[i, j].item()}"


def test_occlusion_of_a_linear_score_by_hand():
    model, weights = _linear()
    image = torch.rand(1, 8, 8)
    got = occlusion_map(model, image, 0, patch=4, stride=2, fill=0.5, score="logit")
    # Each window's drop is sum over the window of w * (x - fill); a pixel averages its windows.
    contribution = weights[0] * (image[0] - 0.5)
    expected = torch.zeros(8, 8)
    count = torch.zeros(8, 8)
    for top in (0, 2, 4):
        for left in (0, 2, 4):
            expected[top:top + 4, left:left + 4] += contribution[top:top + 4, left:left + 4].sum()
            count[top:top + 4, left:left + 4] += 1
    assert torch.allclose(got, expected / count, atol=1e-5)


def test_occlusion_probability_drop_is_bounded_and_uncovered_pixels_are_zero():
    model, _ = _linear(h=9, w=9)
    got = occlusion_map(model, torch.rand(1, 9, 9), 1, patch=4, stride=4)
    assert got.shape == (9, 9) and (got.abs() <= 1).all()
    assert (got[8] == 0).all() and (got[:, 8] == 0).all(), "row and column 8 are covered by no window"


def test_bad_input_is_named():
    model, _ = _linear()
    with pytest.raises(ValueError, match=r"\(C, H, W\) tensor"):
        occlusion_map(model, torch.rand(8, 8), 0)
    with pytest.raises(ValueError, match="not one of the model's 3 classes"):
        gradient_saliency(model, torch.rand(1, 8, 8), 5)
    with pytest.raises(ValueError, match="score must be"):
        occlusion_map(model, torch.rand(1, 8, 8), 0, score="loss")
