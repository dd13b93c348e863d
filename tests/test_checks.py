"""coursekit.checks.assert_close on values of every rank, scalars included."""

import numpy as np
import pytest

from coursekit import checks  # use checks.X at call time: homework tests reload this module


def test_scalars_get_the_located_message():
    # A 0-d value (a loss, say) once raised TypeError inside the check instead of failing it.
    with pytest.raises(checks.CheckFailure, match=r"loss: output differs from the reference at index \(\): got 1, expected 2"):
        checks.assert_close("loss", np.float64(1.0), np.float64(2.0), rtol=1e-6, atol=1e-9)
    checks.assert_close("loss", np.float64(1.0), 1.0 + 1e-12, rtol=1e-6, atol=1e-9)


def test_the_worst_entry_is_located_in_the_original_shape():
    expected = np.zeros((2, 3, 4))
    actual = expected.copy()
    actual[1, 2, 3] = 0.5
    actual[0, 1, 1] = 1e-3
    with pytest.raises(checks.CheckFailure, match=r"at index \(1, 2, 3\).*2 of 24 entries"):
        checks.assert_close("x", actual, expected, rtol=1e-6, atol=1e-9)
