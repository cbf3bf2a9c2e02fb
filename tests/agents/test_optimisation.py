"""The optimisation agent: noisy log-EI towards a target size, with constraints and pending points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tandem.agents.errors import AgentError
from tandem.agents.optimisation import Objective, OptimisationAgent, OptimisationSettings
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe

from .conftest import observe

FAST = OptimisationSettings(n_initial=5, num_restarts=3, raw_samples=64, maxiter=40, mc_samples=64)
TARGET_A = 40.0


def size_a(x: np.ndarray) -> float:
    """A smooth stand-in for a fitted structure size: grows with surfactant and salt."""
    sds, ppg, nacl = x
    return 15.0 + 250.0 * sds + 400.0 * nacl * (1 + 3 * sds) - 30.0 * ppg


def measure(x: np.ndarray, rng: np.random.Generator) -> Observation:
    return observe(
        x,
        Probe.XRAY,
        features={
            "size_a": size_a(x) * (1 + 0.01 * rng.standard_normal()),
            "polydispersity": 0.1 + 2.0 * float(x[1]),
        },
    )


def run(agent: OptimisationAgent, steps: int, rng: np.random.Generator) -> None:
    for _ in range(steps):
        (s,) = agent.suggest("saxs")
        agent.tell(
            [measure(agent.region.vector({n: s.target.mass_fraction(n) for n in agent.region.names}), rng)]
        )


def test_closed_loop_finds_the_target_size(region: FeasibleRegion, rng: np.random.Generator) -> None:
    agent = OptimisationAgent(region, Objective("size_a", target=TARGET_A), seed=0, settings=FAST)
    run(agent, 5, rng)
    best_initial = agent.objective.score(agent.best.features["size_a"])  # type: ignore[union-attr]
    run(agent, 12, rng)
    best = agent.best
    assert best is not None
    assert abs(math.log(best.features["size_a"] / TARGET_A)) < 0.03
    assert agent.objective.score(best.features["size_a"]) > best_initial
    assert agent.records[-1].acquisition["name"] == "qLogNoisyExpectedImprovement"
    # predictions improve with data: the model knows the score at the best point within noise
    x = np.array([[best.composition[n] for n in region.names]])
    pred = agent.predict(x)
    assert pred.mean is not None
    assert pred.std is not None
    assert abs(pred.mean[0] - agent.objective.score(best.features["size_a"])) < 3 * pred.std[0] + 0.05


def test_outcome_constraints_are_respected(region: FeasibleRegion, rng: np.random.Generator) -> None:
    objective = Objective("size_a", target=TARGET_A, constraints={"polydispersity": (None, 0.15)})
    agent = OptimisationAgent(region, objective, seed=1, settings=FAST)
    run(agent, 16, rng)
    best = agent.best
    assert best is not None
    assert best.features["polydispersity"] <= 0.15
    assert abs(math.log(best.features["size_a"] / TARGET_A)) < 0.05


def test_pending_points_are_passed_as_x_pending(region: FeasibleRegion, rng: np.random.Generator) -> None:
    agent = OptimisationAgent(region, Objective("size_a", target=TARGET_A), seed=2, settings=FAST)
    run(agent, 8, rng)
    a, b = agent.suggest("saxs", n=2)
    ua = region.to_unit(region.vector({n: a.target.mass_fraction(n) for n in region.names})).numpy()
    ub = region.to_unit(region.vector({n: b.target.mass_fraction(n) for n in region.names})).numpy()
    assert np.linalg.norm(ua - ub) > 1e-3
    assert agent.records[-1].pending == [a.decision_uid]


def test_bad_objectives_and_observations(region: FeasibleRegion, rng: np.random.Generator) -> None:
    with pytest.raises(AgentError, match="positive"):
        Objective("size_a", target=-1.0)
    with pytest.raises(AgentError, match="neither side"):
        Objective("size_a", constraints={"x": (None, None)})
    agent = OptimisationAgent(region, Objective("size_a", target=TARGET_A, probe=Probe.XRAY), settings=FAST)
    agent.tell(
        [
            observe([0.05, 0.0, 0.01], Probe.XRAY, features={"size_a": math.nan}),
            observe([0.05, 0.0, 0.01], Probe.XRAY, features={"size_a": -3.0}),
            observe([0.05, 0.0, 0.01], Probe.NEUTRON, features={"size_a": 30.0}),
            observe([0.05, 0.0, 0.01], Probe.XRAY, features={"radius": 30.0}),
        ]
    )
    assert agent.observations == []
    reasons = [s.reason for s in agent.skipped]
    assert "nan" in reasons[0]
    assert "not positive" in reasons[1]
    assert "measured with neutron" in reasons[2]
    assert "no feature 'size_a'" in reasons[3]


def test_restore_gives_the_same_next_suggestion(region: FeasibleRegion, rng: np.random.Generator) -> None:
    agent = OptimisationAgent(region, Objective("size_a", target=TARGET_A), seed=3, settings=FAST)
    run(agent, 9, rng)
    record = agent.records[-1]
    later = [measure(np.array([0.05, 0.01, 0.01]), rng)]
    told = list(agent.observations)
    agent.tell(later)
    expected = agent.suggest("saxs")[0]
    used_ids = {u["run_uid"] for u in record.used}
    restored = OptimisationAgent.from_state(
        record.agent_state, region, observations=[o for o in told if o.run_uid in used_ids]
    )
    restored.tell([o for o in told if o.run_uid not in used_ids] + later)
    again = restored.suggest("saxs")[0]
    for n in region.names:
        assert again.target.mass_fraction(n) == pytest.approx(expected.target.mass_fraction(n), abs=1e-7)
