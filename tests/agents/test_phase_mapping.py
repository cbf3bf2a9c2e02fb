"""The phase-mapping agent on the twin: closed loop, phase map, pending points, stocks, restore."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from tandem.agents.errors import AgentError, NoFeasibleCandidateError
from tandem.agents.phase_mapping import PhaseMappingAgent, PhaseMappingSettings, bald
from tandem.agents.protocol import Agent
from tandem.agents.region import FeasibleRegion
from tandem.composition import Composition
from tandem.observations import AnalysisStatus, Observation
from tandem.sim.system_phases import NEUTRON_ONLY_BOUNDARY
from tandem.stations import Probe
from tandem.suggestions import Suggestion

from .conftest import accuracy, default_region, grid, observe

FAST = PhaseMappingSettings(n_initial=6, num_restarts=3, raw_samples=64, maxiter=40)


def fractions_of(region: FeasibleRegion, suggestion: Suggestion) -> np.ndarray:
    return region.vector({n: suggestion.target.mass_fraction(n) for n in region.names})


def run(agent: PhaseMappingAgent, steps: int, station: str = "sans") -> list[Observation]:
    told = []
    for _ in range(steps):
        (s,) = agent.suggest(station)
        obs = observe(fractions_of(agent.region, s), Probe.NEUTRON)
        agent.tell([obs])
        told.append(obs)
    return told


def test_closed_loop_predictions_improve_with_data(region: FeasibleRegion, tmp_path: Path) -> None:
    agent = PhaseMappingAgent(region, seed=1, settings=FAST)
    assert isinstance(agent, Agent)
    points = grid(region, 10)
    run(agent, 8)
    early = accuracy(agent.predict(points).most_likely(), points)
    run(agent, 32)
    late = accuracy(agent.predict(points).most_likely(), points)
    assert late > early + 0.05
    assert late > 0.75
    # the phase map on a grid, written out: compositions, label, probability
    path = agent.predict(points).to_csv(tmp_path / "phase_map.csv")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(points)
    assert {"SDS", "PPG", "NaCl", "label", "probability"} <= set(rows[0])
    for row in rows[:50]:
        probs = {k[2:]: float(v) for k, v in row.items() if k.startswith("p_")}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
        assert row["label"] == max(probs, key=lambda k: probs[k])
        assert float(row["probability"]) == pytest.approx(max(probs.values()))
    # every decision has its record: what it used, hyperparameters, chosen and runner-up values, timing
    record = agent.records[-1]
    assert len(record.used) == 39
    assert record.acquisition["name"] == "bald"
    assert record.acquisition["chosen"] >= record.acquisition["runner_up"]
    assert "lengthscales" in record.model["hyperparameters"]
    assert record.timing_s["total"] > 0


def _seeded(region: FeasibleRegion, n: int = 30, seed: int = 0) -> PhaseMappingAgent:
    rng = np.random.default_rng(seed)
    agent = PhaseMappingAgent(region, seed=seed, settings=FAST)
    pts = region.lower + rng.random((n, region.dim)) * (region.upper - region.lower)
    agent.tell([observe(p) for p in pts])
    return agent


def test_pending_points_are_not_chased_twice(region: FeasibleRegion) -> None:
    agent = _seeded(region)
    first, second = agent.suggest("sans", n=2)
    other = agent.suggest("saxs", pending=[first, second])[0]
    points = [region.to_unit(fractions_of(region, s)).numpy() for s in (first, second, other)]
    for i in range(3):
        for j in range(i):
            assert np.linalg.norm(points[i] - points[j]) > 0.05
    # the believer fantasy removes what a pending point would teach: BALD there collapses
    model = agent.gp.model()

    x = torch.as_tensor(points[0][None])
    before = bald(*model.mean_and_variance(x), agent.base_samples())
    after = bald(*agent.believer(model, points[0][None]).mean_and_variance(x), agent.base_samples())
    assert float(after) < 0.5 * float(before)
    assert agent.records[-1].pending == [first.decision_uid, second.decision_uid]


def test_suggestions_are_always_makeable_from_the_stocks() -> None:
    def check(station: str, target: Composition) -> str | None:
        return "SDS stock too dilute" if target.mass_fraction("SDS") > 0.06 else None

    region = default_region(stock_check=check)
    agent = _seeded(region)
    made = agent.suggest("sans", n=3)
    assert all(s.target.mass_fraction("SDS") <= 0.06 for s in made)
    rejected = [r for rec in agent.records for r in rec.acquisition["rejected"]]
    assert rejected
    assert all(r["reason"] == "SDS stock too dilute" for r in rejected)

    def nothing(station: str, target: Composition) -> str:
        return "deck is empty"

    hopeless = _seeded(default_region(stock_check=nothing))
    with pytest.raises(NoFeasibleCandidateError, match="deck is empty"):
        hopeless.suggest("sans")


def test_bad_observations_never_reach_the_model(region: FeasibleRegion) -> None:
    agent = _seeded(region, n=10)
    n = agent.gp.n
    good = observe([0.05, 0.01, 0.01])
    bad = [
        observe([0.05, 0.01, 0.01], status=AnalysisStatus.FAILED),
        Observation(**{**good.__dict__, "run_uid": "dup"}),
        Observation(
            **{**good.__dict__, "sample_uid": "x", "composition": {"SDS": 0.9, "PPG": 0.0, "NaCl": 0.0}}
        ),
        Observation(**{**good.__dict__, "sample_uid": "y", "label": None}),
    ]
    agent.tell([good, *bad])
    assert agent.gp.n == n + 1
    assert len(agent.skipped) == 4
    assert [s["reason"][:9] for s in agent.state()["skipped"]] == [
        "analysis ",
        "duplicate",
        "compositi",
        "no phase ",
    ]


def test_restoring_from_records_gives_the_same_next_suggestion(region: FeasibleRegion) -> None:
    agent = _seeded(region, n=20, seed=7)
    told = list(agent.observations)
    told += run(agent, 3)
    record = agent.records[-1]
    later = [observe([0.03, 0.02, 0.01]), observe([0.1, 0.08, 0.04])]
    agent.tell(later)
    expected = agent.suggest("sans")[0]

    by_run = {o.run_uid: o for o in told}
    used = [by_run[u["run_uid"]] for u in record.used]
    since = [o for o in told if o.run_uid not in {u["run_uid"] for u in record.used}]
    assert len(since) == 1  # the result of the recorded decision itself
    restored = PhaseMappingAgent.from_state(record.agent_state, region, observations=used)
    restored.tell([*since, *later])
    again = restored.suggest("sans")[0]
    np.testing.assert_allclose(fractions_of(region, again), fractions_of(region, expected), atol=1e-7)
    assert restored.records[-1].acquisition["chosen"] == pytest.approx(
        agent.records[-1].acquisition["chosen"], rel=1e-6
    )
    assert restored.step == agent.step


def test_bad_requests_raise_typed_errors(region: FeasibleRegion) -> None:
    agent = PhaseMappingAgent(region, settings=FAST)
    with pytest.raises(AgentError, match="unknown station"):
        agent.suggest("neutron-star")
    with pytest.raises(AgentError, match="at least one"):
        agent.suggest("saxs", n=0)
    with pytest.raises(AgentError, match="n x 3"):
        agent.predict(np.zeros((2, 2)))


def test_initial_design_fills_space_until_two_phases_are_seen(region: FeasibleRegion) -> None:
    agent = PhaseMappingAgent(region, settings=FAST)
    picks = agent.suggest("saxs", n=4)
    assert {r.acquisition["name"] for r in agent.records} == {"maximin_distance"}
    u = np.array([region.to_unit(fractions_of(region, s)).numpy() for s in picks])
    gaps = np.linalg.norm(u[:, None] - u[None], axis=-1) + np.eye(4)
    assert gaps.min() > 0.2
    assert NEUTRON_ONLY_BOUNDARY  # the twin names the boundary the multi-probe agent is tested on


def test_partial_refit_settings_keep_the_phase_agents_lengthscale_prior() -> None:
    from tandem.agents.multi_probe_model import MultiProbeSettings

    settings = PhaseMappingSettings.from_dict({"refit": {"growth": 1.5}})
    assert settings.refit.growth == 1.5
    assert settings.refit.lengthscale_prior_median == PhaseMappingSettings().refit.lengthscale_prior_median
    assert PhaseMappingSettings().refit.lengthscale_prior_median == 0.6
    assert MultiProbeSettings.from_dict({"refit": {}}).refit.lengthscale_prior_median == 0.6
    # and the agent's fits use it
    agent = PhaseMappingAgent(default_region(), settings=settings)
    assert agent.gp.policy.lengthscale_prior_median == 0.6
