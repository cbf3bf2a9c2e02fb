"""Phase labels: a run is named by the structure its curve shows, the same at both probes, and names
never move as runs arrive."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tandem.analysis.curves import Curve
from tandem.analysis.labels import (
    InvalidLabelSettingsError,
    LabelInput,
    LabelSettings,
    assign_labels,
    morphology,
    shape_distance,
    structure_chi2,
)
from tandem.observations import NO_CONTRAST

CurveMaker = Callable[..., Curve]


def _phase_curve(make_curve: CurveMaker, phase: str, x: float, *, neutron: bool = False) -> Curve:
    """A curve of `phase` whose parameters drift smoothly with x in [0, 1], as inside a real phase.

    `neutron`: the same structure with the contrast a neutron sees in D2O (core and shell both below
    the solvent) and the SANS q range, instead of the X-ray contrast (a dense shell around a light core).
    """
    # SLDs (1e-6/Å²) of SDS micelles in water: tails, heads, solvent
    core, shell, solvent = (-0.4, 3.8, 6.3) if neutron else (7.8, 12.5, 9.5)
    q = {"q_min": 0.01, "q_max": 0.14} if neutron else {"q_min": 0.01, "q_max": 0.5}
    if phase == "sphere":
        return make_curve(
            "core_shell_sphere",
            {
                "radius": 16 + 2 * x,
                "thickness": 6.5,
                "radius_pd": 0.1,
                "radius_pd_n": 25,
                "sld_core": core,
                "sld_shell": shell,
                "sld_solvent": solvent,
                "scale": 0.01 + 0.02 * x,
                "background": 0.01,
            },
            **q,
        )
    if phase == "cylinder":
        return make_curve(
            "core_shell_cylinder",
            {
                "radius": 16 + 2 * x,
                "thickness": 6.5,
                "length": 1500 + 1000 * x,
                "sld_core": core,
                "sld_shell": shell,
                "sld_solvent": solvent,
                "scale": 0.02,
                "background": 0.01,
            },
            **q,
        )
    if phase == "lamellar":
        return make_curve(
            "lamellar_stack_paracrystal",
            {
                "thickness": 30,
                "d_spacing": 180 + 30 * x,
                "sigma_d": 0.05,
                "Nlayers": 20,
                "sld": 0,
                "sld_solvent": 9,
                "scale": 0.1,
                "background": 0.01,
            },
            **q,
        )
    return make_curve(
        "polymer_excl_volume",
        {"rg": 40 + 20 * x, "porod_exp": 1.7, "scale": 0.5 + x, "background": 0.01},
        **q,
    )


def _flat(rng: np.random.Generator, level: float = 0.015, relative_error: float = 0.02) -> Curve:
    q = np.geomspace(0.01, 0.5, 150)
    sigma = np.full_like(q, relative_error * level)
    return Curve(q, level + rng.normal(0.0, sigma), sigma, 0.015 * q)


def _campaign(make_curve: CurveMaker, n: int, seed: int = 0) -> tuple[list[LabelInput], dict[str, str]]:
    rng = np.random.default_rng(seed)
    phases = ["sphere", "cylinder", "lamellar", "polymer"]
    items, truth = [], {}
    for i in range(n):
        phase = phases[i % 4]
        uid = f"run-{i}"
        comp = {"surfactant": 0.01 * i, "salt": 0.0}  # distinct compositions
        items.append(LabelInput(uid, "xray", comp, _phase_curve(make_curve, phase, float(rng.uniform()))))
        truth[uid] = phase
    return items, truth


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


def test_each_structure_is_named_by_its_morphology(make_curve: CurveMaker) -> None:
    items, truth = _campaign(make_curve, 8)
    result = assign_labels(items)
    assert dict(result.labels) == truth
    assert result.n_phases == 4
    for uid, probs in result.probabilities.items():
        assert sum(probs.values()) == pytest.approx(1.0)
        assert max(probs, key=lambda k: probs[k]) == result.labels[uid]
        assert result.morphologies[uid].model == truth[uid]


@pytest.mark.parametrize("phase", ["sphere", "cylinder", "polymer"])
def test_one_structure_has_one_label_at_both_probes(make_curve: CurveMaker, phase: str) -> None:
    """Contrast differs between X-rays and neutrons (a micelle's shell is dense to X-rays and not to
    neutrons; the q ranges differ too) and so does the curve's shape: the label does not."""
    xray = _phase_curve(make_curve, phase, 0.5)
    neutron = _phase_curve(make_curve, phase, 0.5, neutron=True)
    comp = {"surfactant": 0.05}
    result = assign_labels([LabelInput("x", "xray", comp, xray), LabelInput("n", "neutron", comp, neutron)])
    assert result.labels == {"x": phase, "n": phase}
    assert result.sites == {"x": 0, "n": 0}
    assert (result.sites_both_probes, result.agreement) == (1, 1)


def test_a_flat_curve_shows_no_contrast(make_curve: CurveMaker, rng: np.random.Generator) -> None:
    flat = _flat(rng)
    assert structure_chi2(flat) < 3.0
    found = morphology(flat)
    assert found.label == NO_CONTRAST
    assert found.model is None
    # a weak structure on the same background is not flat
    weak = make_curve(
        "polymer_excl_volume",
        {"rg": 60, "porod_exp": 1.7, "scale": 0.01, "background": 0.015},
        relative_error=0.02,
        q_min=0.01,
    )
    assert structure_chi2(weak) > 10 * LabelSettings().flat_chi2_max
    assert morphology(weak).label == "polymer"


def test_a_long_rod_over_a_short_q_range_is_a_cylinder(make_curve: CurveMaker) -> None:
    """Over a SANS-like q range a micron-long rod shows only its q⁻¹ decay, which a mass fractal of
    dimension ~1 fits as well as a cylinder: either way the label is `cylinder`."""
    rod = make_curve(
        "core_shell_cylinder",
        {
            "radius": 17,
            "thickness": 6.5,
            "length": 2500,
            "sld_core": -0.4,
            "sld_shell": 0.5,
            "sld_solvent": 6.3,
            "scale": 0.02,
            "background": 0.05,
        },
        q_min=0.01,
        q_max=0.14,
    )
    assert morphology(rod).label == "cylinder"


def test_labels_never_move_as_data_arrives(make_curve: CurveMaker, rng: np.random.Generator) -> None:
    items, truth = _campaign(make_curve, 12)
    without_polymer = [it for it in items if truth[it.run_uid] != "polymer"]
    first = assign_labels(without_polymer)
    assert first.n_phases == 3
    flat = LabelInput("flat", "xray", {"surfactant": 0.5}, _flat(rng))
    second = assign_labels([*items, flat])
    assert {u: second.labels[u] for u in first.labels} == dict(first.labels)
    assert {second.labels[u] for u in truth if truth[u] == "polymer"} == {"polymer"}
    assert second.labels["flat"] == NO_CONTRAST
    assert second.n_phases == 5


def test_each_curve_is_screened_once(make_curve: CurveMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    import tandem.analysis.labels as labels_module

    items, _ = _campaign(make_curve, 4)
    calls: list[Curve] = []
    real = labels_module._classify

    def counting(curve: Curve, settings: LabelSettings) -> labels_module.Morphology:
        calls.append(curve)
        return real(curve, settings)

    monkeypatch.setattr(labels_module, "_classify", counting)
    for n in range(1, len(items) + 1):
        assign_labels(items[:n])
    assert len(calls) == len(items)
    # other settings are another question: asked again
    assign_labels(items[:1], settings=LabelSettings(flat_chi2_max=5.0))
    assert len(calls) == len(items) + 1


def test_runs_at_one_composition_are_one_site(make_curve: CurveMaker) -> None:
    sphere = _phase_curve(make_curve, "sphere", 0.2)
    rod = _phase_curve(make_curve, "cylinder", 0.2, neutron=True)
    items = [
        LabelInput("a", "xray", {"s": 0.100, "p": 0.02}, sphere),
        LabelInput("b", "neutron", {"s": 0.101, "p": 0.02}, rod),
        LabelInput("c", "xray", {"s": 0.200, "p": 0.02}, sphere),
    ]
    result = assign_labels(items)
    assert result.sites["a"] == result.sites["b"] != result.sites["c"]
    # both probes measured the first site and disagree there: reported, not hidden
    assert (result.sites_both_probes, result.agreement) == (1, 0)


def test_empty_and_duplicate_inputs(make_curve: CurveMaker) -> None:
    assert assign_labels([]).n_phases == 0
    items, _ = _campaign(make_curve, 1)
    with pytest.raises(ValueError, match="once"):
        assign_labels([items[0], items[0]])


@pytest.mark.parametrize(
    ("field", "value"),
    [("flat_bins", 2), ("flat_chi2_max", -1.0), ("rod_fractal_dim_max", float("nan"))],
)
def test_settings_no_labelling_could_use_are_refused(field: str, value: float) -> None:
    with pytest.raises(InvalidLabelSettingsError, match=field):
        LabelSettings(**{field: value})  # type: ignore[arg-type]
