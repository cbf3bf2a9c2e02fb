"""No wasted samples: an agent never suggests a composition already measured or pending, unless asked to."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.agents.base import ALREADY_MEASURED, SAME_POINT, AgentBase, Candidate, Proposal
from tandem.agents.baselines import RandomAgent, SpaceFillingAgent
from tandem.agents.phase_mapping import PhaseMappingAgent, PhaseMappingSettings
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe
from tandem.suggestions import Suggestion

from .conftest import default_region, observe

FAST = PhaseMappingSettings(n_initial=4, num_restarts=2, raw_samples=32, maxiter=20)
DECISIONS = 30


class CornerPhaseMapping(PhaseMappingAgent):
    """A phase-mapping agent whose acquisition peaks at the far corner of the box at every decision."""

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        proposal = super()._propose(station, pending_u, rng_seed)
        top = max((c.value for c in proposal.ranked), default=0.0)
        corner = Candidate(np.ones(self.region.dim), top + 1.0)
        proposal.ranked = [corner, *proposal.ranked]
        return proposal


class OnlyTheCorner(AgentBase):
    """Ranks nothing but the corner: once it is measured, only the agent's own fallback is left."""

    name = "only_the_corner"

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        return Proposal([Candidate(np.ones(self.region.dim), 1.0)], "corner")


def _fractions(region: FeasibleRegion, suggestion: Suggestion) -> np.ndarray:
    return np.asarray(region.vector({n: suggestion.target.mass_fraction(n) for n in region.names}))


def _run(agent: AgentBase, steps: int, probe: Probe = Probe.NEUTRON) -> np.ndarray:
    """`steps` decisions, each measured at once; the suggested points in the unit cube."""
    station = "sans" if probe is Probe.NEUTRON else "saxs"
    points = []
    for _ in range(steps):
        (s,) = agent.suggest(station)
        x = _fractions(agent.region, s)
        agent.tell([observe(x, probe)])
        points.append(
            agent.region.to_unit(agent.region.vector(dict(zip(agent.region.names, x, strict=True))))
        )
    return np.array([np.asarray(p) for p in points])


def _repeats(points: np.ndarray) -> int:
    """How many points lie within SAME_POINT (max-norm) of an earlier one."""
    return sum(
        1
        for i in range(1, len(points))
        if np.min(np.max(np.abs(points[:i] - points[i]), axis=1)) <= SAME_POINT
    )


def test_a_phase_mapping_agent_never_repeats_a_point_though_its_acquisition_keeps_peaking_there() -> None:
    agent = CornerPhaseMapping(default_region(), seed=3, settings=FAST)
    points = _run(agent, DECISIONS)
    assert _repeats(points) == 0
    assert np.allclose(points[0], 1.0)  # the corner was measured, once
    # every later decision passed over it, and says why
    later = agent.records[1:]
    assert all(any(r["reason"] == ALREADY_MEASURED for r in rec.acquisition["rejected"]) for rec in later)


def test_with_replicates_the_agent_may_measure_a_point_again() -> None:
    agent = CornerPhaseMapping(default_region(), seed=3, settings=FAST)
    agent.replicates = True
    points = _run(agent, 6)
    assert _repeats(points) >= 1
    assert all(np.allclose(p, 1.0) for p in points)


def test_pending_points_are_never_suggested_twice_even_with_replicates() -> None:
    agent = OnlyTheCorner(default_region(), stations={"sans": Probe.NEUTRON}, replicates=True)
    first, second = agent.suggest("sans", n=2)
    a, b = (_fractions(agent.region, s) for s in (first, second))
    assert np.max(np.abs(a - b)) > 0  # the second is not the pending corner


def test_when_every_ranked_candidate_is_measured_the_agent_still_suggests_a_new_point() -> None:
    agent = OnlyTheCorner(default_region(), stations={"sans": Probe.NEUTRON})
    points = _run(agent, 5)
    assert np.allclose(points[0], 1.0)
    assert _repeats(points) == 0


def test_the_other_probe_may_measure_the_same_composition() -> None:
    """SANS where SAXS looked is not a replicate: the multi-probe agent depends on it."""
    agent = OnlyTheCorner(default_region(), stations={"saxs": Probe.XRAY, "sans": Probe.NEUTRON})
    (s,) = agent.suggest("saxs")
    x = _fractions(agent.region, s)
    agent.tell([observe(x, Probe.XRAY)])
    (again,) = agent.suggest("sans")
    assert np.allclose(_fractions(agent.region, again), x)
    (third,) = agent.suggest("saxs", pending=[again])
    assert not np.allclose(_fractions(agent.region, third), x)


@pytest.mark.parametrize("baseline", [RandomAgent, SpaceFillingAgent])
def test_the_baselines_never_repeat_a_point(baseline: type[AgentBase]) -> None:
    agent = baseline(default_region(), stations={"sans": Probe.NEUTRON}, seed=2)
    assert _repeats(_run(agent, 12)) == 0


def test_replicates_survive_a_restore() -> None:
    agent = SpaceFillingAgent(default_region(), stations={"sans": Probe.NEUTRON}, replicates=True)
    told: list[Observation] = [observe([0.05, 0.02, 0.01])]
    agent.tell(told)
    state = agent.state()
    assert state["replicates"] is True
    assert SpaceFillingAgent.from_state(state, observations=told).replicates is True
    assert SpaceFillingAgent(default_region()).state()["replicates"] is False
