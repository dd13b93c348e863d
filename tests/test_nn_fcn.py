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
