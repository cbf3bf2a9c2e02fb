"""A campaign's phases: results get phase names, bad ones fail with the reason, renames reach the agent."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from tandem.agents.phase_mapping import PhaseMappingAgent, PhaseMappingSettings
from tandem.agents.region import region_from_bounds
from tandem.analysis.curves import Curve
from tandem.analysis.store import AnalysisRecord
from tandem.campaign.phases import CampaignPhases
from tandem.observations import NO_CONTRAST, AnalysisStatus, Observation
from tandem.sim.scattering import intensity
from tandem.sim.system_phases import D2O, DEFAULT_BOUNDS, DEFAULT_COMPONENTS, H2O
from tandem.sim.truth import TruthPoint
from tandem.stations import SANS, SAXS, Probe

FAST = PhaseMappingSettings(n_initial=2, num_restarts=2, raw_samples=32, maxiter=20)
_ids = itertools.count()


def sphere_curve(radius: float, seed: int) -> Curve:
    return curve_of(
        TruthPoint(
            "sphere",
            "sphere",
            {
                "radius": radius,
                "radius_pd": 0.1,
                "radius_pd_n": 35,
                "sld": 0.4,
                "sld_solvent": 6.4,
                "scale": 0.02,
                "background": 0.0,
            },
        ),
        seed,
    )


def lamellar_curve(seed: int) -> Curve:
    pars = {
        "thickness": 30.0,
        "d_spacing": 120.0,
        "sigma_d": 0.05,
        "Nlayers": 20,
        "sld": 0.4,
        "sld_solvent": 6.4,
        "scale": 0.1,
        "background": 0.0,
    }
    return curve_of(TruthPoint("lamellar", "lamellar_stack_paracrystal", pars), seed)


def nan_curve(seed: int) -> Curve:
    curve = sphere_curve(40.0, seed)
    i = curve.intensity_per_cm.copy()
    i[::2] = np.nan
    return Curve(curve.q_inv_a, i, curve.sigma_per_cm, curve.dq_inv_a)


def curve_of(point: TruthPoint, seed: int) -> Curve:
    rng = np.random.default_rng(seed)
    q = np.geomspace(0.004, 0.5, 120)
    i = intensity(point, q)
    sigma = 0.01 * i + 1e-4
    return Curve(q, i + rng.normal(0.0, sigma), sigma, np.zeros_like(q))


def flat_curve(seed: int) -> Curve:
    rng = np.random.default_rng(seed)
    q = np.geomspace(0.004, 0.5, 120)
    return Curve(q, 0.08 + rng.normal(0.0, 0.001, q.size), np.full(q.size, 0.001), np.zeros_like(q))


def result(
    curve: Curve | None, sds: float, *, ok: bool = True, label: str | None = "sphere"
) -> tuple[AnalysisRecord, Observation]:
    """An analysed run at SDS = `sds` (PPG 0.02, NaCl 0.01) and the observation made of it."""
    k = next(_ids)
    composition = {"SDS": sds, "PPG": 0.02, "NaCl": 0.01}
    status = AnalysisStatus.OK if ok else AnalysisStatus.FAILED
    record = AnalysisRecord(
        run_uid=f"run-{k}",
        status=status,
        analysis_version="test",
        parameters={},
        probe=Probe.NEUTRON.value,
        composition=composition,
        label=label,
        curve=curve,
    )
    obs = Observation(
        sample_uid=f"sample-{k}",
        run_uid=f"run-{k}",
        campaign_id="test",
        station=SANS,
        probe=Probe.NEUTRON,
        composition=composition,
        status=status,
        exposure_s=300.0,
        label=label,
        failure_reason=None if ok else "reduction failed: no transmission",
    )
    return record, obs


class Writer:
    """What the ledger would get: each call's events and state."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []

    def __call__(self, events: Any, state: dict[str, Any]) -> None:
        self.calls.append((list(events), dict(state)))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for events, _ in self.calls for e in events]


@pytest.fixture
def agent() -> PhaseMappingAgent:
    region = region_from_bounds(DEFAULT_COMPONENTS, DEFAULT_BOUNDS, H2O, solvents={SAXS: H2O, SANS: D2O})
    return PhaseMappingAgent(region, seed=0, settings=FAST)


def small_and_big() -> list[tuple[AnalysisRecord, Observation]]:
    """Small spheres at low SDS, large ones (more than the size shift allows) at high SDS."""
    small = [result(sphere_curve(25 + 2 * k, seed=k), 0.01 + 0.005 * k) for k in range(4)]
    big = [result(sphere_curve(80 + 4 * k, seed=10 + k), 0.12 + 0.005 * k) for k in range(4)]
    return small + big


def test_learn_names_results_fails_the_excluded_and_writes_events(agent: PhaseMappingAgent) -> None:
    writer = Writer()
    phases = CampaignPhases(agent, writer)
    good = small_and_big()
    flat = result(flat_curve(1), 0.05)
    nans = result(nan_curve(2), 0.055)
    failed = result(None, 0.06, ok=False, label=None)
    no_curve = result(None, 0.07)
    given = [*good, flat, nans, failed, no_curve]
    out = phases.learn(given)
    assert [o.run_uid for o in out] == [obs.run_uid for _, obs in given]
    by_uid = {o.run_uid: o for o in out}
    names = [by_uid[obs.run_uid].label for _, obs in good]
    assert names == ["sphere"] * 4 + ["sphere-2"] * 4  # named after the agreeing morphology
    for _, obs in good:
        o = by_uid[obs.run_uid]
        assert o.ok
        assert o.label_probabilities == {o.label: 1.0}
    # nothing above the background: a label of its own, never one of the phases
    nothing = by_uid[flat[1].run_uid]
    assert nothing.ok
    assert nothing.label == NO_CONTRAST
    assert nothing.label_probabilities == {NO_CONTRAST: 1.0}
    left_out = by_uid[nans[1].run_uid]
    assert left_out.status is AnalysisStatus.FAILED
    assert left_out.label is None
    assert "non_finite" in str(left_out.failure_reason)
    assert by_uid[failed[1].run_uid] is failed[1]  # failed before phase finding: passed on unchanged
    missing = by_uid[no_curve[1].run_uid]
    assert missing.status is AnalysisStatus.FAILED
    assert "no curve" in str(missing.failure_reason)
    # one write: both phases' first appearance, numbered, with the state to resume from
    ((events, state),) = writer.calls
    assert [(e["seq"], e["kind"], e["after"]) for e in events] == [
        (1, "new", ["sphere"]),
        (2, "new", ["sphere-2"]),
    ]
    assert sorted(state["names"]) == ["sphere", "sphere-2"]
    assert state["n_events"] == 2
    assert flat[1].run_uid not in state["labels"]
    assert nans[1].run_uid not in state["labels"]
    # the agent models the good ones and the flat one, never the failed ones
    agent.tell(out)
    modelled = sorted(o.run_uid for o in agent.observations)
    assert modelled == sorted(obs.run_uid for _, obs in [*good, flat])
    assert agent.labels == [NO_CONTRAST, "sphere", "sphere-2"]
    # the same results again: nothing new, nothing written, the same names
    again = phases.learn(good)
    assert [o.label for o in again] == names
    assert len(writer.calls) == 1


def test_a_merge_is_written_and_the_agent_is_re_told(agent: PhaseMappingAgent) -> None:
    writer = Writer()
    phases = CampaignPhases(agent, writer)
    first = small_and_big()
    agent.tell(phases.learn(first))
    assert agent.labels == ["sphere", "sphere-2"]
    agent.suggest(SANS)  # the classifier is fitted on two phases
    # spheres of every size in between: one phase whose size grows with SDS
    middle = [result(sphere_curve(30 + 6 * k, seed=20 + k), 0.03 + 0.01 * k) for k in range(9)]
    out = phases.learn(middle)
    assert {o.label for o in out} == {"sphere"}
    # the earlier runs were re-told under the surviving name before the new ones arrive
    assert {o.label for o in agent.observations} == {"sphere"}
    assert agent.labels == ["sphere"]
    merges = [e for e in writer.events if e["kind"] == "merge"]
    assert len(merges) == 1
    (merge,) = merges
    assert merge["before"] == ["sphere-2"]
    assert merge["after"] == ["sphere"]
    assert set(merge["runs"]) == {obs.run_uid for _, obs in first[4:]}
    assert set(merge["runs"].values()) == {"sphere-2"}
    assert [e["seq"] for e in writer.events] == list(range(1, len(writer.events) + 1))
    assert writer.calls[-1][1]["n_events"] == len(writer.events)
    agent.tell(out)
    assert agent.suggest(SANS)

    # a resumed campaign keeps its names and goes on numbering where it stopped
    resumed_writer = Writer()
    resumed = CampaignPhases(None, resumed_writer)
    resumed.restore(writer.calls[-1][1])
    names = [o.label for o in resumed.learn([*first, *middle])]
    assert set(names) == {"sphere"}
    assert resumed_writer.calls == []
    later = [result(lamellar_curve(seed=40 + k), 0.14, label="lamellar") for k in range(3)]
    assert {o.label for o in resumed.learn(later)} == {"lamellar"}
    ((event,),) = [events for events, _ in resumed_writer.calls]
    assert (event["seq"], event["kind"], event["after"]) == (len(writer.events) + 1, "new", ["lamellar"])
    assert "sphere-2" in resumed_writer.calls[-1][1]["names"]  # a retired name stays taken
