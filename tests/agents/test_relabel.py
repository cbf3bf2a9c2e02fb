"""Agents re-told earlier results under new phase names (phase finding merged, split or moved them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tandem.agents.information_per_second import StationCost
from tandem.agents.multi_probe import MultiProbeAgent
from tandem.agents.multi_probe_model import MultiProbeSettings
from tandem.agents.phase_mapping import PhaseMappingAgent, PhaseMappingSettings, relabelled
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.protocols import Relabelling
from tandem.stations import SANS, SAXS, Probe

from .conftest import grid, observe

FAST = PhaseMappingSettings(n_initial=2, num_restarts=2, raw_samples=32, maxiter=20)
FAST_MULTI = MultiProbeSettings(n_initial=2, num_restarts=2, raw_samples=32, maxiter=20)
COSTS = [
    StationCost(SAXS, Probe.XRAY, overhead_s=30.0, exposures_s=(1.0, 10.0), reference_exposure_s=2.0),
    StationCost(
        SANS, Probe.NEUTRON, overhead_s=120.0, exposures_s=(120.0, 300.0), reference_exposure_s=300.0
    ),
]

#: three labelled corners of the default region (SDS, PPG, NaCl mass fractions), two runs each
POINTS = {
    "a": [[0.01, 0.01, 0.01], [0.02, 0.01, 0.01]],
    "b": [[0.13, 0.01, 0.01], [0.14, 0.02, 0.01]],
    "c": [[0.07, 0.08, 0.03], [0.08, 0.09, 0.03]],
}


def labelled(probe: Probe = Probe.NEUTRON, names: dict[str, str] | None = None) -> list[Observation]:
    """Two runs per label of `POINTS` (renamed by `names`), seen by `probe`."""
    names = names or {}
    return [observe(x, probe, label=names.get(label, label)) for label, xs in POINTS.items() for x in xs]


def uids_of(observations: list[Observation], label: str) -> list[str]:
    return [o.run_uid for o in observations if o.label == label]


def count_calls(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> list[int]:
    """Count calls of `obj.name` (still calling it)."""
    calls: list[int] = []
    original: Callable[..., Any] = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


def test_relabelled_counts_what_changed() -> None:
    obs = labelled()
    a, b = uids_of(obs, "a"), uids_of(obs, "b")
    out, changed = relabelled(obs, {a[0]: "a", b[0]: "a", "not-a-run": "z"})
    assert changed == 1
    assert [o.label for o in out] == ["a", "a", "a", "b", "c", "c"]
    assert out[2].label_probabilities == {"a": 1.0}
    assert out[0] is obs[0]  # untouched observations are the same objects
    # a soft label with the same top name is re-told as certain
    soft = [replace(observe([0.01, 0.01, 0.01], label="a"), label_probabilities={"a": 0.6, "b": 0.4})]
    again, n = relabelled(soft, {soft[0].run_uid: "a"})
    assert n == 1
    assert again[0].label_probabilities == {"a": 1.0}


@pytest.fixture
def mapper(region: FeasibleRegion) -> PhaseMappingAgent:
    agent = PhaseMappingAgent(region, seed=0, settings=FAST)
    assert isinstance(agent, Relabelling)
    agent.tell(labelled())
    agent.suggest(SANS)  # the classifier is fitted on a, b, c
    assert agent.labels == ["a", "b", "c"]
    return agent


def test_phase_mapping_merge_removes_a_label(mapper: PhaseMappingAgent, region: FeasibleRegion) -> None:
    c = uids_of(mapper.observations, "c")
    assert mapper.relabel(dict.fromkeys(c, "b")) == 2
    assert mapper.labels == ["a", "b"]
    assert [o.label for o in mapper.observations] == ["a", "a", "b", "b", "b", "b"]
    prediction = mapper.predict(grid(region, 3))
    assert prediction.labels == ("a", "b")
    assert prediction.probabilities is not None
    assert prediction.probabilities.shape == (27, 2)
    np.testing.assert_allclose(prediction.probabilities.sum(-1), 1.0)
    assert set(prediction.most_likely()) <= {"a", "b"}
    (suggestion,) = mapper.suggest(SANS)
    assert suggestion.station == SANS


def test_phase_mapping_split_adds_a_label(mapper: PhaseMappingAgent, region: FeasibleRegion) -> None:
    a = uids_of(mapper.observations, "a")
    assert mapper.relabel({a[1]: "a-2"}) == 1
    assert mapper.labels == ["a", "a-2", "b", "c"]
    prediction = mapper.predict(grid(region, 3))
    assert prediction.labels == ("a", "a-2", "b", "c")
    assert mapper.suggest(SANS)


def test_phase_mapping_unchanged_names_refit_nothing(
    mapper: PhaseMappingAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    observations = mapper.observations
    calls = count_calls(monkeypatch, mapper.gp, "replace_outputs")
    same = {o.run_uid: str(o.label) for o in observations}
    assert mapper.relabel(same) == 0
    assert mapper.relabel({}) == 0
    assert mapper.relabel({"someone-elses-run": "z"}) == 0
    assert calls == []
    assert mapper.observations is observations
    assert mapper.labels == ["a", "b", "c"]
    # a real change does go to the model
    assert mapper.relabel({observations[0].run_uid: "b"}) == 1
    assert calls == [1]


def test_phase_mapping_state_round_trips_after_relabel(
    mapper: PhaseMappingAgent, region: FeasibleRegion
) -> None:
    mapper.relabel(dict.fromkeys(uids_of(mapper.observations, "c"), "a"))
    mapper.suggest(SANS)  # refitted under the new names
    restored = PhaseMappingAgent.from_state(mapper.state(), region, observations=mapper.observations)
    assert restored.labels == mapper.labels == ["a", "b"]
    assert [o.label for o in restored.observations] == [o.label for o in mapper.observations]
    points = grid(region, 3)
    np.testing.assert_allclose(
        restored.predict(points).probabilities, mapper.predict(points).probabilities, atol=1e-6
    )
    assert restored.suggest(SANS)


@pytest.fixture
def linked(region: FeasibleRegion) -> MultiProbeAgent:
    """Neutrons report a, b, c; X-rays report the same corners as x (a, b) and c."""
    agent = MultiProbeAgent(region, COSTS, seed=0, settings=FAST_MULTI)
    assert isinstance(agent, Relabelling)
    agent.tell(labelled(Probe.NEUTRON) + labelled(Probe.XRAY, {"a": "x", "b": "x"}))
    assert agent.labels == ["a", "b", "c", "x"]
    assert agent.seen_by["x"] == {Probe.XRAY}
    assert agent.seen_by["a"] == {Probe.NEUTRON}
    return agent


def test_multi_probe_relabel_rebuilds_labels_and_seen_by(
    linked: MultiProbeAgent, region: FeasibleRegion
) -> None:
    xray = [o for o in linked.observations if o.probe is Probe.XRAY]
    # phase finding matched the X-ray phases to the neutron ones: x was a merge of a and b
    renamed = {o.run_uid: ("a" if k < 2 else "b") for k, o in enumerate(xray) if o.label == "x"}
    assert linked.relabel(renamed) == 4
    assert linked.labels == ["a", "b", "c"]
    assert "x" not in linked.seen_by
    assert linked.seen_by == {label: {Probe.XRAY, Probe.NEUTRON} for label in ("a", "b", "c")}
    points = grid(region, 3)
    for probe in (Probe.NEUTRON, Probe.XRAY):
        prediction = linked.predict(points, probe)
        assert prediction.labels == ("a", "b", "c")
        np.testing.assert_allclose(prediction.probabilities.sum(-1), 1.0)  # type: ignore[union-attr]
    assert linked.suggest(None)


def test_multi_probe_split_adds_a_label_one_probe_reported(linked: MultiProbeAgent) -> None:
    neutron_c = [o.run_uid for o in linked.observations if o.probe is Probe.NEUTRON and o.label == "c"]
    assert linked.relabel({neutron_c[1]: "c-2"}) == 1
    assert linked.labels == ["a", "b", "c", "c-2", "x"]
    assert linked.seen_by["c-2"] == {Probe.NEUTRON}
    assert linked.seen_by["c"] == {Probe.NEUTRON, Probe.XRAY}
    assert linked.suggest(None)


def test_multi_probe_unchanged_names_refit_nothing(
    linked: MultiProbeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_calls(monkeypatch, linked.gp, "replace_outputs")
    seen_by = {k: set(v) for k, v in linked.seen_by.items()}
    assert linked.relabel({o.run_uid: str(o.label) for o in linked.observations}) == 0
    assert calls == []
    assert linked.seen_by == seen_by
    assert linked.labels == ["a", "b", "c", "x"]


def test_multi_probe_state_round_trips_after_relabel(linked: MultiProbeAgent, region: FeasibleRegion) -> None:
    xray_x = [o.run_uid for o in linked.observations if o.probe is Probe.XRAY and o.label == "x"]
    linked.relabel(dict.fromkeys(xray_x, "a"))
    linked.suggest(None)
    again = MultiProbeAgent.from_state(linked.state(), region, observations=linked.observations)
    assert again.labels == linked.labels == ["a", "b", "c"]
    assert again.seen_by == linked.seen_by
    points = grid(region, 3)
    np.testing.assert_allclose(
        again.predict(points).probabilities, linked.predict(points).probabilities, atol=1e-6
    )
    assert again.suggest(None)
