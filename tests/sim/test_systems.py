"""The default formulation system: phases, continuity, contrast, the pluggable truth, bad input."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.errors import InvalidCompositionError, TandemError
from tandem.sim.system_phases import (
    DEFAULT_BOUNDS,
    DEFAULT_COMPONENTS,
    NEUTRON_ONLY_BOUNDARY,
    PHASE_MODELS,
    SOLUTE_NAMES,
)
from tandem.sim.systems import DEFAULT_SYSTEM, default_system, phase_labels, phase_of, phases_of
from tandem.sim.truth import TruthError, TruthPoint, load_truth
from tandem.stations import Probe


def _grid(n: int = 16) -> np.ndarray:
    axes = [np.linspace(*DEFAULT_BOUNDS[name], n) for name in SOLUTE_NAMES]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def test_every_phase_occupies_a_real_share_of_the_explored_space() -> None:
    labels = phases_of(_grid())
    shares = {phase: float(np.mean(labels == phase)) for phase in phase_labels()}
    assert len(phase_labels()) >= 4
    for phase, share in shares.items():
        assert share > 0.05, f"{phase} covers only {share:.1%} of the explored space"


def test_vectorised_phases_agree_with_the_per_point_truth() -> None:
    grid = _grid(7)
    labels = phases_of(grid)
    for row, label in zip(grid, labels, strict=True):
        composition = dict(zip(SOLUTE_NAMES, row.tolist(), strict=True))
        for probe in Probe:
            point = default_system(composition, probe)
            assert point.phase == label == phase_of(composition)
            assert point.model == PHASE_MODELS[point.phase]


def test_boundaries_are_curves_not_boxes() -> None:
    # the salt at which micelles turn into rods falls as SDS rises
    def rod_onset(sds: float) -> float:
        salts = np.linspace(0.0, 0.05, 501)
        labels = phases_of(np.column_stack([np.full_like(salts, sds), np.zeros_like(salts), salts]))
        return float(salts[np.argmax(labels == "elongated_micelles")])

    onsets = [rod_onset(s) for s in (0.02, 0.05, 0.08)]
    assert onsets[0] > onsets[1] > onsets[2]

    # and the cloud curve of the polymer moves with SDS and with salt
    def cloud(sds: float, salt: float) -> float:
        ppg = np.linspace(0.0, 0.1, 1001)
        labels = phases_of(np.column_stack([np.full_like(ppg, sds), ppg, np.full_like(ppg, salt)]))
        return float(ppg[np.argmax(labels == "polymer_clusters")])

    assert cloud(0.0, 0.0) < cloud(0.02, 0.0)
    assert cloud(0.0, 0.04) < cloud(0.0, 0.0)


@pytest.mark.parametrize(
    ("phase", "start", "direction"),
    [
        ("spherical_micelles", (0.02, 0.0, 0.0), (0.05, 0.01, 0.005)),
        ("elongated_micelles", (0.05, 0.0, 0.03), (0.03, 0.01, 0.01)),
        ("lamellar", (0.14, 0.0, 0.02), (0.01, 0.01, 0.01)),
        ("polymer_solution", (0.0, 0.01, 0.0), (0.002, 0.04, 0.004)),
        ("polymer_clusters", (0.0, 0.07, 0.01), (0.004, 0.03, 0.01)),
    ],
)
def test_parameters_vary_smoothly_inside_a_phase(
    phase: str, start: tuple[float, float, float], direction: tuple[float, float, float]
) -> None:
    t = np.linspace(0.0, 1.0, 301)
    path = np.asarray(start) + t[:, None] * np.asarray(direction)
    for probe in Probe:
        points = [default_system(dict(zip(SOLUTE_NAMES, row.tolist(), strict=True)), probe) for row in path]
        assert {point.phase for point in points} == {phase}, "the test path must stay inside the phase"
        assert {point.model for point in points} == {PHASE_MODELS[phase]}
        for key in points[0].parameters:
            if key == "Nlayers":  # an integer count of layers, by nature a staircase
                continue
            values = np.array([point.parameters[key] for point in points])
            steps = np.abs(np.diff(values))
            span = np.max(np.abs(values)) + 1e-300
            # 300 steps along a straight path: a continuous parameter moves a little per step
            assert np.max(steps) < 0.03 * span, f"{phase}/{probe}: {key} jumps"


def test_contrast_comes_from_first_principles_and_makes_the_polymer_xray_invisible() -> None:
    xray, neutron = DEFAULT_SYSTEM.contrast(Probe.XRAY), DEFAULT_SYSTEM.contrast(Probe.NEUTRON)
    assert xray.solvent == pytest.approx(DEFAULT_COMPONENTS["H2O"].xray_sld(12.0))
    assert neutron.solvent == pytest.approx(DEFAULT_COMPONENTS["D2O"].neutron_sld(6.0))
    assert xray.solvent == pytest.approx(9.42, abs=0.05)
    assert neutron.solvent == pytest.approx(6.35, abs=0.05)
    # PPG matches water's electron density to better than 0.5 %; to neutrons in D2O it differs by ~6
    assert abs(xray.ppg - xray.solvent) < 0.005 * xray.solvent
    assert abs(neutron.ppg - neutron.solvent) > 5.0
    # hydrocarbon tails have less electron density than water, the sulfate heads more
    assert xray.tail < xray.solvent < xray.head


def test_neutron_only_boundary_is_where_the_xray_contrast_vanishes() -> None:
    below = {"SDS": 0.002, "PPG": 0.052, "NaCl": 0.005}
    above = {"SDS": 0.002, "PPG": 0.064, "NaCl": 0.005}
    assert (phase_of(below), phase_of(above)) == NEUTRON_ONLY_BOUNDARY
    for composition in (below, above):
        ratio = default_system(composition, Probe.NEUTRON).parameters["scale"] / max(
            default_system(composition, Probe.XRAY).parameters["scale"], 1e-300
        )
        assert ratio > 1e3


def test_same_composition_looks_different_to_xrays_and_neutrons() -> None:
    composition = {"SDS": 0.05, "PPG": 0.01, "NaCl": 0.005}
    x, n = default_system(composition, "xray"), default_system(composition, "neutron")
    assert x.phase == n.phase == "spherical_micelles"
    assert x.parameters["sld_solvent"] != n.parameters["sld_solvent"]
    assert x.parameters["sld_core"] < x.parameters["sld_solvent"]
    assert n.parameters["sld_core"] < 0 < n.parameters["sld_solvent"]
    assert x.parameters["background"] == 0.0 < n.parameters["background"]


@settings(max_examples=60, deadline=None)
@given(
    s=st.floats(*DEFAULT_BOUNDS["SDS"]),
    p=st.floats(*DEFAULT_BOUNDS["PPG"]),
    c=st.floats(*DEFAULT_BOUNDS["NaCl"]),
    probe=st.sampled_from(list(Probe)),
)
def test_any_composition_in_bounds_gives_a_sane_truth(s: float, p: float, c: float, probe: Probe) -> None:
    point = default_system({"SDS": s, "PPG": p, "NaCl": c}, probe)
    assert isinstance(point, TruthPoint)
    assert point.phase in phase_labels()
    assert all(math.isfinite(v) for v in point.parameters.values())
    assert point.parameters["scale"] >= 0.0
    assert point.parameters["background"] >= 0.0
    for length in ("radius", "thickness", "length", "d_spacing", "rg", "cutoff_length"):
        if length in point.parameters:
            assert point.parameters[length] > 0


def test_missing_components_count_as_zero() -> None:
    assert default_system({"SDS": 0.03}, "xray") == default_system(
        {"SDS": 0.03, "PPG": 0.0, "NaCl": 0.0}, "xray"
    )


@pytest.mark.parametrize(
    ("composition", "message"),
    [
        ({"SDS": -0.01}, "must lie in"),
        ({"SDS": 0.5}, "must lie in"),
        ({"SDS": float("nan")}, "must lie in"),
        ({"PPG": "lots"}, "must be a number"),
        ({"glycerol": 0.1}, "unknown component"),
        ({"H2O": 0.9}, "the solvent is implicit"),
    ],
)
def test_bad_compositions_are_refused_with_a_typed_error(
    composition: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidCompositionError, match=message) as info:
        default_system(composition, "xray")  # type: ignore[arg-type]
    assert isinstance(info.value, TandemError)
    assert isinstance(info.value, ValueError)


def test_bad_probe_and_bad_arrays_are_refused() -> None:
    with pytest.raises(InvalidCompositionError, match="probe must be one of"):
        default_system({"SDS": 0.01}, "muon")
    with pytest.raises(InvalidCompositionError, match="array"):
        phases_of(np.zeros((4, 2)))


def test_the_default_system_loads_by_name() -> None:
    truth = load_truth("tandem.sim.systems:default_system")
    assert truth({"SDS": 0.03}, Probe.NEUTRON) == default_system({"SDS": 0.03}, Probe.NEUTRON)


def test_a_custom_truth_named_as_module_callable_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_twin_truth.py").write_text(
        textwrap.dedent(
            """
            from tandem.sim.truth import TruthPoint

            def spheres(composition, probe):
                radius = 20.0 + 1000.0 * composition.get("SDS", 0.0)
                return TruthPoint("big_spheres", "sphere", {"radius": radius, "scale": 0.01,
                                  "sld": 1.0, "sld_solvent": 6.0 if probe == "neutron" else 9.4})
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    truth = load_truth("my_twin_truth:spheres")
    point = truth({"SDS": 0.05}, Probe.NEUTRON)
    assert point == TruthPoint(
        "big_spheres", "sphere", {"radius": 70.0, "scale": 0.01, "sld": 1.0, "sld_solvent": 6.0}
    )
    monkeypatch.delitem(sys.modules, "my_twin_truth")


@pytest.mark.parametrize(
    "spec", ["no_colon", "tandem.sim.systems:no_such_thing", "no.such.module:f", "tandem.sim.systems:PHASES"]
)
def test_bad_truth_names_are_refused(spec: str) -> None:
    with pytest.raises(TruthError):
        load_truth(spec)
