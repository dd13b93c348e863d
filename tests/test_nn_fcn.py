"""The fully convolutional network, its size arithmetic and its metrics."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from coursekit.nn.fcn import (TinyFCN, confusion, per_class_iou, shapes_dataset,  # noqa: E402
                              transposed_conv_output_size)


@pytest.mark.parametrize("n,kernel,stride,padding,output_padding",
                         [(8, 2, 2, 0, 0), (7, 3, 2, 1, 1), (5, 4, 2, 1, 0), (3, 5, 1, 2, 0), (4, 3, 3, 0, 2)])
def test_transposed_size_matches_torch(n, kernel, stride, padding, output_padding):
    layer = nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=padding, output_padding=output_padding)
    want = layer(torch.zeros(1, 1, n, n)).shape[-1]
    assert transposed_conv_output_size(n, kernel, stride, padding, output_padding) == want


def test_transposed_size_rejects_bad_arguments():
    with pytest.raises(ValueError, match="output_padding 2 must be < stride 2"):
        transposed_conv_output_size(4, 3, 2, output_padding=2)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        transposed_conv_output_size(4, 3, 0)


def test_shapes_dataset_masks_match_the_drawn_pixels():
    images, masks = shapes_dataset(20, size=32, noise=0.0, seed=1)
    assert images.shape == (20, 1, 32, 32) and masks.shape == (20, 32, 32)
    assert set(masks.unique().tolist()) == {0, 1, 2}
    assert (images[:, 0][masks == 0] == 0).all(), "without noise the background is 0"
    assert (images[:, 0][masks > 0] >= 0.5).all(), "shapes are drawn with brightness >= 0.5"
    assert torch.equal(shapes_dataset(3, seed=7)[0], shapes_dataset(3, seed=7)[0])


@pytest.mark.parametrize("size", [(32, 32), (48, 64)])
def test_fcn_output_has_the_input_size(size):
    assert TinyFCN(width=4)(torch.zeros(2, 1, *size)).shape == (2, 3, *size)


def test_fcn_rejects_sizes_it_cannot_restore():
    with pytest.raises(ValueError, match="multiples of 4"):
        TinyFCN(width=4)(torch.zeros(1, 1, 30, 32))


def test_iou_by_hand():
    truth = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 0]])
    assert confusion(pred, truth, 3).tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]
    # class 0: 2 / (3 + 3 - 2); class 1: 2 / (2 + 3 - 2); class 2: 2 / (3 + 2 - 2)
    assert per_class_iou(pred, truth, 3) == pytest.approx([0.5, 2 / 3, 2 / 3])


def test_shapes_dataset_draws_shapes_of_the_asked_size():
    _, masks = shapes_dataset(30, size=32, shapes=1, radii=(4, 7), noise=0.0, seed=2)
    for mask in masks:
        rows = (mask > 0).any(1).nonzero()
        side = int(rows.max() - rows.min() + 1)
        assert 2 * 4 + 1 <= side <= 2 * 7 + 1, f"a shape of half-width 4..7 spans {side} rows"
    with pytest.raises(ValueError, match="radii must be"):
        shapes_dataset(1, size=16, radii=(4, 8))
    with pytest.raises(ValueError, match="radii must be"):
        shapes_dataset(1, radii=(5, 4))


def test_fcn_main_path_and_skips():
    model = TinyFCN(width=4)
    path = model.main_path()
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in path) == 2
    assert sum(isinstance(m, nn.MaxPool2d) for m in path) == 2
    # The skips: the decoder's convolutions read the upsampled maps and the encoder's maps side by side.
    assert model.dec2[0].in_channels == 4 + 8 and model.head.in_channels == 4 + 4
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        TinyFCN(width=0)


def test_fcn_output_at_a_pixel_depends_on_the_full_resolution_skip():
    """Zeroing the first stage's maps (the skip to the head) changes the scores: the skip is used."""
    torch.manual_seed(0)
    model = TinyFCN(width=4).eval()
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        before = model(x)
        model.head.weight[:, 4:] = 0               # the head's weights on the skip's channels
        after = model(x)
    assert not torch.allclose(before, after)
