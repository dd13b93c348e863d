"""Properties of the torch augmentations: shapes, identities, involutions, seeding."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from coursekit.nn import augment as A  # noqa: E402


@pytest.fixture
def x():
    return torch.rand(5, 3, 12, 12, generator=torch.Generator().manual_seed(0))


ALL = [A.RandomHorizontalFlip(), A.RandomCrop(3), A.RandomRotation(15), A.RandomAffine(), A.ElasticDistortion(), A.GaussianNoise(0.1),
       A.default_augment("digits"), A.default_augment("natural")]


@pytest.mark.parametrize("t", ALL, ids=repr)
def test_shape_dtype_and_input_untouched(t, x):
    before = x.clone()
    for dtype in (torch.float32, torch.float64):
        out = t(x.to(dtype), generator=torch.Generator().manual_seed(1))
        assert out.shape == x.shape and out.dtype == dtype, f"{t!r}: {tuple(out.shape)} {out.dtype}"
    assert torch.equal(x, before), f"{t!r} modified its input"


@pytest.mark.parametrize("t", ALL, ids=repr)
def test_seeded_generator_reproduces_the_batch(t, x):
    a = t(x, generator=torch.Generator().manual_seed(7))
    b = t(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b), f"{t!r}: same seed, different output"
    c = t(x, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a, c), f"{t!r}: different seeds gave the same output"


def test_hflip_is_an_involution_and_mirrors(x):
    assert torch.equal(A.hflip(A.hflip(x)), x)
    assert torch.equal(A.hflip(x)[..., 0], x[..., -1])
    flipped = A.RandomHorizontalFlip(p=1.0)(x)
    assert torch.equal(flipped, A.hflip(x))
    assert torch.equal(A.RandomHorizontalFlip(p=0.0)(x), x)


def test_crop_identities_and_shift(x):
    n = x.shape[0]
    assert torch.equal(A.crop(x, 0, torch.zeros(n, 2, dtype=torch.long)), x), "padding 0 must be the identity"
    assert torch.equal(A.crop(x, 2, torch.full((n, 2), 2)), x), "the centred window must be the identity"
    assert torch.equal(A.RandomCrop(0)(x), x)
    # offset (0, 0) with padding 2: the image moves 2 down and 2 right, zeros come in.
    shifted = A.crop(x, 2, torch.zeros(n, 2, dtype=torch.long))
    assert torch.equal(shifted[..., 2:, 2:], x[..., :-2, :-2])
    assert shifted[..., :2, :].abs().sum() == 0 and shifted[..., :, :2].abs().sum() == 0
    with pytest.raises(ValueError, match="offsets must lie in"):
        A.crop(x, 1, torch.full((n, 2), 3))


def test_rotation_by_zero_is_identity_and_by_90_is_rot90(x):
    # Tolerance: affine_grid + grid_sample at the pixel centres, exact up to float32 rounding.
    torch.testing.assert_close(A.rotate(x, 0.0), x, rtol=0, atol=1e-6)
    torch.testing.assert_close(A.RandomRotation(0.0)(x), x, rtol=0, atol=1e-6)
    torch.testing.assert_close(A.rotate(x, 90.0), torch.rot90(x, 1, (2, 3)), rtol=0, atol=1e-5)
    torch.testing.assert_close(A.affine(x), x, rtol=0, atol=1e-6)
    angles = torch.tensor([0.0, 90.0, 180.0, -90.0, 0.0])
    expect = torch.stack([x[0], torch.rot90(x[1], 1, (1, 2)), torch.rot90(x[2], 2, (1, 2)),
                          torch.rot90(x[3], -1, (1, 2)), x[4]])
    torch.testing.assert_close(A.rotate(x, angles), expect, rtol=0, atol=1e-5)


def test_elastic_distortion_with_alpha_zero_is_identity(x):
    # The identity grid reproduces the pixels up to float32 rounding of the grid coordinates.
    torch.testing.assert_close(A.ElasticDistortion(alpha=0.0)(x), x, rtol=0, atol=1e-5)
    moved = A.ElasticDistortion()(x, generator=torch.Generator().manual_seed(0))
    assert (moved - x).abs().max() > 0.05, "alpha 34, sigma 4 should visibly move pixels"


def test_affine_integer_shift_equals_crop(x):
    n = x.shape[0]
    shift = torch.tensor([[1.0, -2.0]]).expand(n, 2)
    torch.testing.assert_close(A.affine(x, shift=shift), A.crop(x, 2, torch.tensor([[1, 4]]).expand(n, 2)),
                               rtol=0, atol=1e-6)


def test_noise_statistics_and_clamp():
    x = torch.full((64, 1, 32, 32), 0.5)
    out = A.GaussianNoise(0.1)(x, generator=torch.Generator().manual_seed(0))
    std = (out - x).std().item()
    assert abs(std - 0.1) < 0.005, f"noise std {std:.4f}, expected 0.1 (65k samples: +-0.5%)"
    clamped = A.GaussianNoise(1.0, clamp=(0.0, 1.0))(x, generator=torch.Generator().manual_seed(0))
    assert clamped.min() >= 0 and clamped.max() <= 1


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"RandomCrop: x must be a \(N, C, H, W\) tensor, got \(3, 8, 8\)"):
        A.RandomCrop(2)(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="padding"):
        A.RandomCrop(-1)
