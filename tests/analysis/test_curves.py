"""`Curve.coarsened`: neighbouring points merged for the fits' search, without losing what they say."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError


def _curve(n: int, seed: int = 0) -> Curve:
    rng = np.random.default_rng(seed)
    q = np.geomspace(0.005, 0.5, n)
    sigma = rng.uniform(0.01, 0.2, n)
    return Curve(q, 1.0 / q + rng.normal(0.0, sigma), sigma, 0.01 * q)


def test_merged_points_are_weighted_means_with_combined_errors() -> None:
    curve = Curve(
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.array([10.0, 20.0, 30.0, 40.0]),
        np.array([1.0, 2.0, 1.0, 1.0]),
        np.array([0.1, 0.1, 0.1, 0.1]),
    )
    merged = curve.coarsened(2)
    # weights 1, 1/4: (10 + 20/4) / 1.25
    np.testing.assert_allclose(merged.intensity_per_cm, [12.0, 35.0])
    np.testing.assert_allclose(merged.sigma_per_cm, [1 / np.sqrt(1.25), 1 / np.sqrt(2.0)])
    np.testing.assert_allclose(merged.q_inv_a, [1.2, 3.5])
    # the spread of q within a merged point widens its resolution
    spread = (1.0 * 0.2**2 + 0.25 * 0.8**2) / 1.25
    np.testing.assert_allclose(merged.dq_inv_a[0], np.sqrt(0.01 + spread))
    assert merged.metadata["coarsened_by"] == 2


@given(n=st.integers(2, 300), factor=st.integers(1, 12), seed=st.integers(0, 1000))
def test_merging_keeps_the_information(n: int, factor: int, seed: int) -> None:
    curve = _curve(n, seed)
    merged = curve.coarsened(factor)
    if factor == 1 or n < 2 * factor:
        assert merged is curve
        return
    assert len(merged) == n // factor
    assert np.all(np.diff(merged.q_inv_a) > 0)
    assert merged.q_inv_a[0] >= curve.q_inv_a[0]
    assert merged.q_inv_a[-1] <= curve.q_inv_a[-1]
    assert np.all(merged.dq_inv_a >= 0.01 * merged.q_inv_a * 0.5)
    # the total weight and the weighted sum of the intensity are those of the points merged
    weight = curve.sigma_per_cm**-2
    merged_weight = merged.sigma_per_cm**-2
    assert merged_weight.sum() == pytest.approx(weight.sum())
    assert (merged_weight * merged.intensity_per_cm).sum() == pytest.approx(
        (weight * curve.intensity_per_cm).sum()
    )


@pytest.mark.parametrize("factor", [0, -3])
def test_a_bad_factor_is_refused(factor: int) -> None:
    with pytest.raises(AnalysisError, match="positive integer"):
        _curve(20).coarsened(factor)


def test_points_without_an_uncertainty_cannot_be_merged() -> None:
    curve = _curve(20)
    broken = Curve(curve.q_inv_a, curve.intensity_per_cm, np.zeros(20), curve.dq_inv_a)
    with pytest.raises(AnalysisError, match="positive σ"):
        broken.coarsened(2)
