"""The cached GP: conditioning equals refactorising, and it matches BoTorch's own GP."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tandem.agents.errors import AgentStateError, ModelFitError
from tandem.agents.gp import CachedGP
from tandem.agents.gp_fit import _build_fit_model, _load, fit_hyperparameters
from tandem.agents.gp_hyperparameters import KernelHyperparameters
from tandem.agents.modelling import IncrementalGP, RefitPolicy


def _data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=g, dtype=torch.float64)
    y = torch.stack([torch.sin(6 * x[:, 0]) + x[:, 1], torch.cos(4 * x[:, 2])], -1)
    return x, y, torch.full_like(y, 0.05)


def test_conditioning_in_pieces_equals_one_factorisation() -> None:
    x, y, yvar = _data(90)
    hp = fit_hyperparameters(x[:40], y[:40], yvar[:40])
    # a small tail limit so that the tail is merged into the head along the way
    model = CachedGP(hp, x[:30], y[:30], yvar[:30], tail_limit=16)
    for start in range(30, 90, 7):
        model = model.condition(x[start : start + 7], y[start : start + 7], yvar[start : start + 7])
    full = CachedGP(hp, x, y, yvar)
    test = torch.rand(6, 2, 3, dtype=torch.float64)
    a, b = model.posterior(test), full.posterior(test)
    torch.testing.assert_close(a.mean, b.mean, atol=1e-9, rtol=0)
    torch.testing.assert_close(a.mvn.covariance_matrix, b.mvn.covariance_matrix, atol=1e-9, rtol=0)
    assert a.mean.shape == (6, 2, 2)


def test_cached_posterior_matches_botorch_single_task_gp() -> None:
    x, y, yvar = _data(50)
    hp = fit_hyperparameters(x, y, yvar)
    reference = _build_fit_model(x, y, yvar, num_tasks=0)
    _load(reference, hp)
    reference.eval()
    test = torch.rand(8, 1, 3, dtype=torch.float64)
    ours, theirs = CachedGP(hp, x, y, yvar).posterior(test), reference.posterior(test)
    torch.testing.assert_close(ours.mean, theirs.mean.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.variance, theirs.variance.detach(), atol=1e-5, rtol=0)


def test_multitask_kernel_learns_correlated_tasks() -> None:
    x, y, yvar = _data(60)
    tasks = (torch.arange(60) % 2).double().unsqueeze(-1)
    # both tasks see the same function: the fitted task correlation must be high
    hp = fit_hyperparameters(torch.cat([x, tasks], -1), y[:, :1], yvar[:, :1], num_tasks=2)
    assert hp.task_covariance is not None
    b = hp.task_covariance[0]
    assert b[0, 1] / np.sqrt(b[0, 0] * b[1, 1]) > 0.8


def test_hyperparameters_round_trip_and_reject_garbage() -> None:
    x, y, yvar = _data(30)
    hp = fit_hyperparameters(x, y, yvar)
    again = KernelHyperparameters.from_dict(hp.to_dict())
    np.testing.assert_array_equal(again.lengthscales, hp.lengthscales)
    with pytest.raises(AgentStateError):
        KernelHyperparameters.from_dict({"lengthscales": [[1.0]]})


def test_a_failed_refit_falls_back_to_the_last_good_state(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    x, y, yvar = _data(40)
    gp = IncrementalGP(3, policy=RefitPolicy(growth=1.2, min_new=2))
    gp.add(x[:20], y[:20], yvar[:20])
    gp.model()
    good = gp.hyperparameters
    assert gp.last_event["refit"]
    assert gp.last_event["fallback"] is None

    def broken(*args: object, **kwargs: object) -> KernelHyperparameters:
        raise ModelFitError("optimiser diverged")

    monkeypatch.setattr("tandem.agents.modelling.fit_hyperparameters", broken)
    gp.add(x[20:], y[20:], yvar[20:])
    with caplog.at_level(logging.WARNING):
        model = gp.model()
    assert gp.last_event["refit"]
    assert "optimiser diverged" in gp.last_event["fallback"]
    assert "last good hyperparameters" in gp.last_event["fallback"]
    assert gp.hyperparameters is good
    assert model.num_train == 40
    assert any("model fit failed" in r.message for r in caplog.records)


def test_between_refits_new_rows_are_conditioned_not_refitted() -> None:
    x, y, yvar = _data(60)
    gp = IncrementalGP(3, policy=RefitPolicy(growth=1.5, min_new=4))
    gp.add(x[:40], y[:40], yvar[:40])
    gp.model()
    fitted = gp.hyperparameters
    gp.add(x[40:45], y[40:45], yvar[40:45])
    gp.model()
    assert gp.last_event == {**gp.last_event, "refit": False, "conditioned": 5}
    assert gp.hyperparameters is fitted
    gp.add(x[45:], y[45:], yvar[45:])  # 60 >= 1.5 * 40: time for a refit
    gp.model()
    assert gp.last_event["refit"]


def test_lengthscale_prior_pulls_a_fit_from_few_points_towards_its_median() -> None:
    x, y, yvar = _data(8, seed=3)
    short = fit_hyperparameters(x, y, yvar, lengthscale_prior_median=0.15)
    long = fit_hyperparameters(x, y, yvar, lengthscale_prior_median=1.0)
    assert np.exp(np.log(long.lengthscales).mean()) > 1.5 * np.exp(np.log(short.lengthscales).mean())
