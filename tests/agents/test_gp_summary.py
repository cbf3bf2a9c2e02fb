"""A GP's bounded training set: merged rows keep their information and the posterior stays close."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tandem.agents.gp import CachedGP
from tandem.agents.gp_fit import fit_hyperparameters
from tandem.agents.gp_summary import summarise
from tandem.agents.modelling import IncrementalGP, RefitPolicy


def _data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=g, dtype=torch.float64)
    y = torch.stack([torch.sin(6 * x[:, 0]) + x[:, 1], torch.cos(4 * x[:, 2])], -1)
    yvar = 0.02 + 0.1 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    return x, y + yvar.sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64), yvar


def test_rows_at_one_point_merge_into_one_with_the_same_posterior() -> None:
    x, y, yvar = _data(40)
    # every composition measured three times, with different values and noises
    x3 = x.repeat(3, 1)
    y3 = torch.cat([y, y + 0.1, y - 0.3])
    v3 = torch.cat([yvar, 2 * yvar, 0.5 * yvar])
    hp = fit_hyperparameters(x3, y3, v3)
    merged = summarise(x3, y3, v3, rows=40, lengthscales=np.min(hp.lengthscales, axis=0))
    assert merged[0].shape == (40, 3)
    test = torch.rand(5, 1, 3, dtype=torch.float64)
    exact, summary = CachedGP(hp, x3, y3, v3).posterior(test), CachedGP(hp, *merged).posterior(test)
    torch.testing.assert_close(summary.mean, exact.mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(summary.variance, exact.variance, atol=1e-6, rtol=0)


def _off_by(model: CachedGP, exact: CachedGP) -> float:
    """How far `model`'s posterior mean lies from `exact`'s, in the exact posterior's standard deviations
    (the median over random points)."""
    test = torch.rand(200, 1, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    a, b = model.posterior(test), exact.posterior(test)
    return float(((a.mean - b.mean).abs() / b.variance.sqrt()).median())


def _random_rows(n: int, *rows: torch.Tensor) -> list[torch.Tensor]:
    keep = torch.randperm(len(rows[0]), generator=torch.Generator().manual_seed(3))[:n]
    return [r[keep] for r in rows]


def test_a_summary_keeps_the_posterior_far_closer_than_as_many_rows_kept_at_random() -> None:
    x, y, yvar = _data(1200)
    hp = fit_hyperparameters(x[:300], y[:300], yvar[:300])
    exact = CachedGP(hp, x, y, yvar)
    for rows in (300, 600):
        merged = summarise(x, y, yvar, rows=rows, lengthscales=np.min(hp.lengthscales, axis=0))
        assert len(merged[0]) <= rows
        summary = CachedGP(hp, *merged)
        kept = CachedGP(hp, *_random_rows(len(merged[0]), x, y, yvar))
        assert _off_by(summary, exact) < 0.5 * _off_by(kept, exact)
        test = torch.rand(200, 1, 3, dtype=torch.float64)
        ratio = summary.posterior(test).variance / exact.posterior(test).variance
        assert float(ratio.median()) == pytest.approx(1.0, abs=0.1)  # merged rows keep their information


def test_no_row_merges_across_tasks_and_few_rows_stay_as_they_are() -> None:
    x, y, yvar = _data(200)
    tasks = torch.cat([torch.zeros(150, 1), torch.ones(50, 1)]).to(torch.float64)
    xt = torch.cat([x, tasks], -1)
    merged_x, _, _ = summarise(xt, y, yvar, rows=40, lengthscales=np.full(3, 0.3))
    # each merged row is one task's: its task column is a whole number
    assert torch.equal(merged_x[:, 3], merged_x[:, 3].round())
    assert set(merged_x[:, 3].tolist()) == {0.0, 1.0}
    same = summarise(xt, y, yvar, rows=200, lengthscales=np.full(3, 0.3))
    assert all(a is b for a, b in zip(same, (xt, y, yvar), strict=True))
    with pytest.raises(ValueError, match="at least one row"):
        summarise(xt, y, yvar, rows=0, lengthscales=np.full(3, 0.3))


def test_past_the_bound_the_model_holds_a_summary_and_stays_under_it() -> None:
    x, y, yvar = _data(700)
    gp = IncrementalGP(3, policy=RefitPolicy(max_model_rows=200), seed=0)
    sizes = []
    for start in range(0, 700, 25):
        gp.add(x[start : start + 25], y[start : start + 25], yvar[start : start + 25])
        sizes.append(gp.model().num_train)
        assert gp.last_event["model_rows"] == sizes[-1]
    assert sizes[:8] == [25 * (i + 1) for i in range(8)]  # the rows themselves up to the bound
    assert max(sizes) <= 200
    assert min(sizes[8:]) >= 100  # re-summarised to half the bound, then grown again
    hp = gp.model().hyperparameters
    kept = CachedGP(hp, *_random_rows(gp.model().num_train, x, y, yvar))
    assert _off_by(gp.model(), CachedGP(hp, x, y, yvar)) < 0.5 * _off_by(kept, CachedGP(hp, x, y, yvar))


def test_a_model_that_learns_its_noise_is_not_summarised() -> None:
    x, y, _ = _data(120)
    gp = IncrementalGP(3, learned_noise=True, policy=RefitPolicy(max_model_rows=50), seed=0)
    gp.add(x, y)
    assert gp.model().num_train == 120
