"""Model simple and complex cells: the properties Hubel and Wiesel observed."""

import numpy as np
import pytest

from coursekit.cells import bar_image, complex_cell, gabor_kernel, simple_cell


def test_gabor_rotated_a_quarter_turn_is_the_transposed_kernel():
    k0, k90 = gabor_kernel(11, 0.0), gabor_kernel(11, np.pi / 2)
    np.testing.assert_allclose(k90, k0.T, atol=1e-12)
    assert abs(k0.sum()) < 1e-12, "a Gabor kernel must not respond to a flat image"


def test_simple_cell_prefers_its_orientation_and_position():
    k = gabor_kernel(11, 0.0)
    centred = simple_cell(bar_image(31, 0.0), k)
    assert centred > 4 * simple_cell(bar_image(31, np.pi / 2), k), "a vertical-bar cell must prefer vertical bars"
    shifted = simple_cell(bar_image(31, 0.0, offset=3.0), k)
    assert shifted < 0.2 * centred, f"a shifted bar must leave the simple cell silent, got {shifted} vs {centred}"


def test_complex_cell_keeps_responding_when_the_bar_moves():
    k = gabor_kernel(11, 0.0)
    responses = [complex_cell(bar_image(31, 0.0, offset=s), k, reach=4) for s in range(-3, 4)]
    assert min(responses) > 0.8 * max(responses), f"complex cell should be position-tolerant, got {responses}"
    assert complex_cell(bar_image(31, np.pi / 2), k) < 0.3 * max(responses)


@pytest.mark.parametrize("call", [lambda: gabor_kernel(10, 0.0), lambda: bar_image(0, 0.0),
                                  lambda: complex_cell(np.zeros((9, 9)), gabor_kernel(3, 0.0), reach=-1)])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def test_bar_brightness_does_not_depend_on_a_fractional_offset():
    totals = [bar_image(21, 0.0, offset=o, width=2.0)[10].sum() for o in (0.0, 0.25, 0.5, 1.0)]
    np.testing.assert_allclose(totals, 2.0, err_msg="a bar of width 2 must carry 2 units of light across")
