"""The SAXS-or-SANS agent: where it sends samples, what it predicts, and restoring it."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.agents.errors import AgentError
from tandem.agents.information_per_second import StationCost
from tandem.agents.multi_probe import MultiProbeAgent
from tandem.agents.multi_probe_model import MultiProbeSettings
from tandem.agents.region import FeasibleRegion
from tandem.sim.instruments import instrument_for
from tandem.sim.system_phases import NEUTRON_ONLY_BOUNDARY
from tandem.sim.systems import phases_of
from tandem.stations import SANS, SAXS, Probe
from tandem.suggestions import Suggestion

from .conftest import accuracy, grid, observe


def fractions_of(region: FeasibleRegion, suggestion: Suggestion) -> np.ndarray:
    return region.vector({n: suggestion.target.mass_fraction(n) for n in region.names})


def station_cost(station: str, exposures_s: tuple[float, ...], reference_s: float) -> StationCost:
    """The agent's cost model from the twin's instrument (what a campaign wires up)."""
    instrument = instrument_for(station)
    t = instrument.time_costs
    return StationCost(
        station,
        instrument.probe,
        overhead_s=t.sample_load_s + t.transmission_s + t.readout_s + 2 * t.shutter_s,
        exposures_s=exposures_s,
        reference_exposure_s=reference_s,
    )


COSTS = [station_cost(SAXS, (1.0, 5.0, 20.0), 2.0), station_cost(SANS, (120.0, 300.0, 900.0), 300.0)]
FAST = MultiProbeSettings(num_restarts=3, raw_samples=64, maxiter=40)


def boundary_points(points: np.ndarray, per_axis: int, phases: tuple[str, ...]) -> np.ndarray:
    """Grid points next to a grid neighbour of a different phase, both among `phases`."""
    labels = phases_of(points).reshape((per_axis,) * 3)
    mask = np.zeros(labels.shape, dtype=bool)
    for axis in range(3):
        a, m = np.swapaxes(labels, 0, axis), np.swapaxes(mask, 0, axis)
        differs = (a[:-1] != a[1:]) & np.isin(a[:-1], phases) & np.isin(a[1:], phases)
        m[:-1] |= differs
        m[1:] |= differs
    return points[mask.reshape(-1)]


@pytest.fixture(scope="module")
def screened() -> MultiProbeAgent:
    """A campaign after SAXS has screened the region (120 samples) and SANS has seen a few (12)."""
    from .conftest import default_region

    region = default_region()
    agent = MultiProbeAgent(region, COSTS, seed=0, settings=FAST)
    x = region.from_unit(region.sobol(132, seed=5).numpy())
    agent.tell([observe(p, Probe.XRAY) for p in x[:120]] + [observe(p, Probe.NEUTRON) for p in x[120:]])
    assert agent.unlooked_labels() == {}  # SANS has measured where SAXS reports each of its labels
    return agent


def test_sans_first_looks_at_every_label_only_saxs_has_reported(region: FeasibleRegion) -> None:
    agent = MultiProbeAgent(region, COSTS, seed=3, settings=FAST)
    x = region.from_unit(region.sobol(40, seed=11).numpy())
    agent.tell([observe(p, Probe.XRAY) for p in x])
    xray_labels = set(agent.labels)
    assert "polymer (x-ray blind)" in xray_labels
    assert set(agent.unlooked_labels()) == xray_labels
    # the task correlation of a label one probe alone has reported is not identified: until the other
    # probe has looked there it is fixed at the prior correlation, with equal variances
    hp = agent.gp.model().hyperparameters
    assert hp.task_covariance is not None
    b = hp.task_covariance
    np.testing.assert_allclose(b[:, 1, 1], b[:, 0, 0])
    np.testing.assert_allclose(b[:, 0, 1], agent.settings.unseen_task_correlation * b[:, 0, 0])
    assert 0.0 < agent.settings.unseen_task_correlation < 1.0
    # one SANS look per X-ray label, each deep inside the label it looks at, batched without repeats
    picks = agent.suggest(None, n=len(xray_labels) + 1)
    looks = [rec.acquisition["chosen_extras"].get("looks_at") for rec in agent.records]
    assert [s.station for s in picks[:-1]] == [SANS] * len(xray_labels)
    assert set(looks[:-1]) == xray_labels
    assert looks[-1] is None  # then the information-per-second choice takes over
    assert agent.records[-1].acquisition["name"] == "bald_gain_per_second"
    for s, label in zip(picks[:-1], looks[:-1], strict=False):
        assert s.scan.exposure_s == 300.0  # the exposure nearest the reference exposure
        fractions = np.array([[s.target.mass_fraction(n) for n in region.names]])
        truth = phases_of(fractions)[0]
        seen_by_xray = "polymer (x-ray blind)" if truth in NEUTRON_ONLY_BOUNDARY else truth
        assert seen_by_xray == label
    # what SANS reports there makes the correlations of the shared labels identifiable and fitted
    agent.tell([observe(fractions_of(region, s), Probe.NEUTRON) for s in picks[:-1]])
    assert agent.unlooked_labels() == {}
    hp = agent.gp.model().hyperparameters
    assert hp.task_covariance is not None
    corr = dict(zip(agent.labels, hp.task_covariance[:, 0, 1], strict=True))
    assert corr["polymer (x-ray blind)"] == 0.0  # SANS looked there and reported other labels: independent
    assert corr["spherical_micelles"] > 0.0


def test_sans_goes_to_the_neutron_only_boundary_and_saxs_keeps_the_rest(screened: MultiProbeAgent) -> None:
    points = grid(screened.region, 12)
    neutron_only = boundary_points(points, 12, NEUTRON_ONLY_BOUNDARY)
    xray_visible = boundary_points(points, 12, ("spherical_micelles", "elongated_micelles", "lamellar"))
    assert len(neutron_only) > 30
    assert len(xray_visible) > 30
    to_sans_there = np.mean(np.array(screened.preferred_station(neutron_only)) == SANS)
    to_saxs_elsewhere = np.mean(np.array(screened.preferred_station(xray_visible)) == SAXS)
    assert to_sans_there > 0.5
    assert to_saxs_elsewhere > 0.5
    # the task correlation it learned is why: the polymer phases' latents barely correlate across probes
    hp = screened.gp.hyperparameters
    assert hp is not None
    assert hp.task_covariance is not None
    corr = {
        label: b[0, 1] / np.sqrt(b[0, 0] * b[1, 1] + 1e-12)
        for label, b in zip(screened.labels, hp.task_covariance, strict=True)
    }
    assert corr["spherical_micelles"] > 0.8
    assert abs(corr["polymer_clusters"]) < 0.5


def test_free_choice_of_station_and_exposure_is_recorded(screened: MultiProbeAgent) -> None:
    (s,) = screened.suggest(None)
    record = screened.records[-1]
    assert s.station in (SAXS, SANS)
    assert s.scan.exposure_s in screened.costs[s.station].exposures_s
    assert record.acquisition["name"] == "bald_gain_per_second"
    assert set(record.model["best_value_per_station"]) == {SAXS, SANS}
    extras = record.acquisition["chosen_extras"]
    assert extras["cost_s"] == pytest.approx(screened.costs[s.station].cost_s(s.scan.exposure_s))
    # asked for SANS it picks where SANS is worth most per second: the polymer region
    (on_sans,) = screened.suggest(SANS)
    x = np.array([[on_sans.target.mass_fraction(n) for n in screened.region.names]])
    assert phases_of(x)[0] in NEUTRON_ONLY_BOUNDARY
    assert on_sans.target.mass_fraction("D2O") > 0.5  # the SANS lab's own solvent


def test_neutron_map_is_predicted_where_only_saxs_measured(screened: MultiProbeAgent) -> None:
    points = grid(screened.region, 10)
    neutron_view = accuracy(screened.predict(points).most_likely(), points)
    assert neutron_view > 0.6
    xray_view = screened.predict(points, probe=Probe.XRAY).most_likely()
    truth = phases_of(points)
    blind = np.isin(truth, NEUTRON_ONLY_BOUNDARY)
    # X-rays call the polymer phases by their merged label; the neutron map names them
    assert np.mean([p == "polymer (x-ray blind)" for p in np.array(xray_view)[blind]]) > 0.7
    # and never uses the merged label: SANS looked where SAXS reported it and saw other phases
    assert screened.labels_not_reported_by(Probe.NEUTRON) == {"polymer (x-ray blind)"}
    # and the X-ray map, conversely, never names the phases only neutrons tell apart
    assert screened.labels_not_reported_by(Probe.XRAY) == {"polymer_clusters", "polymer_solution"}
    blind_column = screened.labels.index("polymer (x-ray blind)")
    neutron = screened.predict(points)
    assert np.all(neutron.probabilities[:, blind_column] == 0.0)
    np.testing.assert_allclose(neutron.probabilities.sum(-1), 1.0)


def test_restore_from_state(screened: MultiProbeAgent, region: FeasibleRegion) -> None:
    state = screened.state()
    again = MultiProbeAgent.from_state(state, region, observations=screened.observations)
    assert again.costs == screened.costs
    assert again.labels == screened.labels
    assert again.seen_by == screened.seen_by
    points = grid(region, 4)
    np.testing.assert_allclose(
        again.predict(points).probabilities, screened.predict(points).probabilities, atol=1e-8
    )


def test_bad_cost_models() -> None:
    with pytest.raises(AgentError, match="exposures"):
        StationCost(SAXS, Probe.XRAY, 30.0, (), 1.0)
    with pytest.raises(AgentError, match="overhead"):
        StationCost(SAXS, Probe.XRAY, -1.0, (1.0,), 1.0)
    from .conftest import default_region

    with pytest.raises(AgentError, match="at least one station"):
        MultiProbeAgent(default_region(), [])
