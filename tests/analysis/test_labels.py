"""Phase labels: the number of phases is found, names stay put, SANS splits what SAXS merges."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from tandem.analysis.curves import Curve
from tandem.analysis.labels import LabelInput, assign_labels, shape_distance

CurveMaker = Callable[..., Curve]


def _phase_curve(make_curve: CurveMaker, phase: str, x: float) -> Curve:
    """A curve of `phase` whose parameters drift smoothly with x in [0, 1], as inside a real phase."""
    if phase == "sphere":
        return make_curve(
            "sphere",
            {
                "radius": 30 + 8 * x,
                "radius_pd": 0.12,
                "radius_pd_n": 25,
                "sld": 0,
                "sld_solvent": 9,
                "scale": 0.01 + 0.02 * x,
                "background": 0.01,
            },
        )
    if phase == "cylinder":
        return make_curve(
            "cylinder",
            {
                "radius": 18 + 3 * x,
                "length": 400 + 200 * x,
                "sld": 0,
                "sld_solvent": 9,
                "scale": 0.02,
                "background": 0.01,
            },
        )
    if phase == "lamellar":
        return make_curve(
            "lamellar_stack_paracrystal",
            {
                "thickness": 30,
                "d_spacing": 110 + 15 * x,
                "sigma_d": 0.05,
                "Nlayers": 20,
                "sld": 0,
                "sld_solvent": 9,
                "scale": 0.1,
                "background": 0.01,
            },
        )
    return make_curve(
        "polymer_excl_volume", {"rg": 70 + 20 * x, "porod_exp": 1.7, "scale": 0.5 + x, "background": 0.01}
    )


def _campaign(make_curve: CurveMaker, n: int, seed: int = 0) -> tuple[list[LabelInput], dict[str, str]]:
    rng = np.random.default_rng(seed)
    phases = ["sphere", "cylinder", "lamellar", "polymer"]
    items, truth = [], {}
    for i in range(n):
        phase = phases[i % 4]
        x = float(rng.uniform())
        uid = f"run-{i}"
        comp = {"surfactant": 0.01 * i, "salt": 0.0}  # distinct compositions
        items.append(LabelInput(uid, "xray", comp, _phase_curve(make_curve, phase, x)))
        truth[uid] = phase
    return items, truth


def _pure(labels: dict[str, str], truth: dict[str, str]) -> bool:
    """Each label holds one true phase and each true phase one label."""
    pairs = {(labels[u], truth[u]) for u in truth}
    return len(pairs) == len({p for p, _ in pairs}) == len({t for _, t in pairs})


def test_shape_distance_ignores_scale_and_sees_shape(make_curve: CurveMaker) -> None:
    a = make_curve(
        "sphere",
        {"radius": 40, "scale": 0.01, "sld": 0, "sld_solvent": 9, "background": 0},
        relative_error=0.001,
    )
    b = make_curve(
        "sphere",
        {"radius": 40, "scale": 0.05, "sld": 0, "sld_solvent": 9, "background": 0},
        relative_error=0.001,
    )
    c = make_curve("polymer_excl_volume", {"rg": 80, "porod_exp": 1.7}, relative_error=0.001)
    assert shape_distance(a, b) < 0.1
    assert shape_distance(a, c) > 1.0
    far = make_curve("sphere", {"radius": 40}, q_min=0.6, q_max=1.0)
    assert np.isnan(shape_distance(a, far))


def test_four_phases_are_found(make_curve: CurveMaker) -> None:
    items, truth = _campaign(make_curve, 32)
    result = assign_labels(items)
    assert result.n_phases == 4
    assert _pure(dict(result.labels), truth)
    assert set(result.labels.values()) == {"phase-1", "phase-2", "phase-3", "phase-4"}
    for uid, probs in result.probabilities.items():
        assert sum(probs.values()) == pytest.approx(1.0)
        assert max(probs, key=lambda k: probs[k]) == result.labels[uid]


def test_one_phase_is_one_label(make_curve: CurveMaker) -> None:
    items = [
        LabelInput(f"r{i}", "xray", {"s": 0.01 * i}, _phase_curve(make_curve, "sphere", i / 10))
        for i in range(10)
    ]
    assert assign_labels(items).n_phases == 1
    assert assign_labels(items[:1]).labels == {"r0": "phase-1"}
    assert assign_labels([]).n_phases == 0


def test_labels_are_stable_as_data_arrives(make_curve: CurveMaker) -> None:
    items, truth = _campaign(make_curve, 40)
    earlier = assign_labels(items[:39])
    later = assign_labels(items, previous=earlier.labels)
    assert {u: later.labels[u] for u in earlier.labels} == dict(earlier.labels)
    # the newcomer joins the phase of its own kind
    same_kind = [u for u in earlier.labels if truth[u] == truth["run-39"]]
    assert later.labels["run-39"] == earlier.labels[same_kind[0]]


def test_a_new_phase_gets_a_new_name_and_renames_nothing(make_curve: CurveMaker) -> None:
    items, truth = _campaign(make_curve, 24)
    without_polymer = [it for it in items if truth[it.run_uid] != "polymer"]
    first = assign_labels(without_polymer)
    assert first.n_phases == 3
    second = assign_labels(items, previous=first.labels)
    assert second.n_phases == 4
    assert {u: second.labels[u] for u in first.labels} == dict(first.labels)
    polymer_labels = {second.labels[u] for u in truth if truth[u] == "polymer"}
    assert polymer_labels == {"phase-4"}


def test_neutron_only_difference_splits_a_xray_cluster(make_curve: CurveMaker) -> None:
    """Twelve compositions look alike to X-rays; SANS sees two kinds (a component matched for X-rays)."""
    items = []
    for i in range(12):
        comp = {"polymer": 0.01 * i}
        x = i / 12
        xray = make_curve(
            "sphere",
            {"radius": 35 + 2 * x, "radius_pd": 0.12, "radius_pd_n": 25, "sld": 0, "sld_solvent": 9},
            q_min=0.006,
            q_max=0.5,
        )
        if i < 6:
            neutron = make_curve(
                "sphere", {"radius": 35 + 2 * x, "radius_pd": 0.12, "radius_pd_n": 25}, q_min=0.003, q_max=0.3
            )
        else:
            neutron = make_curve("polymer_excl_volume", {"rg": 60, "porod_exp": 1.8}, q_min=0.003, q_max=0.3)
        items.append(LabelInput(f"x{i}", "xray", comp, xray))
        items.append(LabelInput(f"n{i}", "neutron", comp, neutron))
    saxs_only = assign_labels([it for it in items if it.probe == "xray"])
    assert saxs_only.n_phases == 1
    combined = assign_labels(items)
    assert combined.n_phases == 2
    for i in range(12):
        # both stations' runs of one composition carry one label
        assert combined.labels[f"x{i}"] == combined.labels[f"n{i}"]
    assert len({combined.labels[f"x{i}"] for i in range(6)}) == 1
    assert combined.labels["x0"] != combined.labels["x11"]
    assert Counter(combined.labels.values()).most_common(1)[0][1] == 12


def test_a_run_may_appear_once(make_curve: CurveMaker) -> None:
    items, _ = _campaign(make_curve, 2)
    with pytest.raises(ValueError, match="once"):
        assign_labels([items[0], items[0]])
