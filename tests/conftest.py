"""Shared pytest fixtures and hypothesis settings for the coursekit test suite."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from coursekit.checks import assert_close as assert_close_located

# The grading tests make their own gradebooks; an instructor's exported database URL
# must not send them (or the nbgrader subprocesses they start) to the real one.
os.environ.pop("AUTOGRADER_DB_URL", None)

# The whole layer suite must stay well under ~90 s on a 2-core machine, so the
# property tests use a modest number of small examples. deadline=None because
# the first call of a test pays for imports (torch) and would trip the deadline.
settings.register_profile(
    "coursekit",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
# A more thorough profile for occasional local runs: HYPOTHESIS_PROFILE=thorough
settings.register_profile("thorough", parent=settings.get_profile("coursekit"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "coursekit"))


def _assert_close(actual, expected, *, name: str, rtol: float, atol: float) -> None:
    """The homework's located-error allclose (:func:`coursekit.checks.assert_close`), keyword-style."""
    assert_close_located(name, actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(scope="session")
def assert_close():
    """The located-error allclose above, as a session fixture (safe with @given)."""
    return _assert_close
