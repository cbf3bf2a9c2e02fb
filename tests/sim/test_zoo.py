"""The zoo of formulation systems: valid truths for both probes, maps, sizes, the special boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.errors import InvalidCompositionError, TandemError
from tandem.sim.scattering import check_truth_point, intensity
from tandem.sim.truth import load_truth
from tandem.sim.zoo import ZOO, ZooSystem, zoo_system
from tandem.sim.zoo.crossover import Crossover
from tandem.sim.zoo.polymer_surfactant import overlap
from tandem.sim.zoo.size_only import solubilisation_limit
from tandem.stations import Probe

Q_INV_A = np.geomspace(0.003, 0.5, 60)
#: points per system and probe whose curves are computed (the grid's 2,500 would be slow)
SAMPLED = 40
SYSTEMS = sorted(ZOO)
ZOO_ONLY = [name for name in SYSTEMS if name != "default"]


def _sample(system: ZooSystem, n: int, seed: int = 0) -> np.ndarray:
    grid = system.grid()
    rng = np.random.default_rng(seed)
    # every phase is represented, so rare phases are checked too
    labels = system.phases_of(grid)
    picks = [rng.choice(np.flatnonzero(labels == phase), size=3) for phase in system.phases]
    rest = rng.choice(len(grid), size=max(n - 3 * len(system.phases), 0), replace=False)
    return grid[np.concatenate([*picks, rest])]


def _composition(system: ZooSystem, row: np.ndarray) -> dict[str, float]:
    return dict(zip(system.solutes, map(float, row), strict=True))


def test_the_zoo_has_the_default_and_six_more_each_loadable_as_a_truth() -> None:
    required = {"default", "ternary", "surfactant_salt", "polymer_surfactant", "mesophases", "size_only"}
    assert required <= set(ZOO)
    assert len(ZOO) >= 7
    for name, system in ZOO.items():
        assert zoo_system(name) is system
        assert system.truth_spec == f"tandem.sim.zoo:{name}"
        assert load_truth(system.truth_spec) is system
        assert {"H2O", "D2O"} <= set(system.components)
        assert set(system.solutes) <= set(system.components)
        assert system.description
        assert system.title


def test_an_unknown_system_name_lists_the_known_ones() -> None:
    with pytest.raises(TandemError, match="ternary"):
        zoo_system("nope")


@pytest.mark.parametrize("name", SYSTEMS)
@pytest.mark.parametrize("probe", list(Probe))
def test_truth_points_are_valid_sasmodels_input_with_positive_curves(name: str, probe: Probe) -> None:
    system = ZOO[name]
    for row in _sample(system, SAMPLED):
        point = system(_composition(system, row), probe)
        check_truth_point(point)
        curve = intensity(point, Q_INV_A)
        assert np.all(np.isfinite(curve))
        # the default system has compositions with nothing that scatters (salt only, to X-rays);
        # the zoo's systems keep a trace of structure everywhere
        assert np.all(curve >= 0) if name == "default" else np.all(curve > 0)
        if probe is Probe.XRAY:
            assert point.parameters.get("background", 0.0) == 0.0
        elif name != "default":  # every zoo system has hydrogenous solutes at every composition
            assert point.parameters["background"] > 0.0


@pytest.mark.parametrize("name", SYSTEMS)
def test_phases_of_agrees_with_the_truth_on_random_points(name: str) -> None:
    system = ZOO[name]
    rng = np.random.default_rng(1)
    lo = np.array([system.bounds[s][0] for s in system.solutes])
    hi = np.array([system.bounds[s][1] for s in system.solutes])
    points = lo + (hi - lo) * rng.random((60, len(system.solutes)))
    if system.max_total is not None:
        points = points[points.sum(axis=1) <= system.max_total]
    labels = system.phases_of(points)
    for row, label in zip(points, labels, strict=True):
        for probe in Probe:
            assert system(_composition(system, row), probe).phase == label


@pytest.mark.parametrize("name", SYSTEMS)
def test_every_phase_appears_on_the_evaluation_grid(name: str) -> None:
    system = ZOO[name]
    grid = system.grid()
    expected = {"default": 12**3, "ternary": 1275}.get(name, 2500)
    assert grid.shape == (expected, len(system.solutes))
    assert set(system.phases_of(grid)) == set(system.phases)


@pytest.mark.parametrize("name", ZOO_ONLY)
def test_sizes_vary_by_at_most_twice_inside_each_phase(name: str) -> None:
    system = ZOO[name]
    grid = system.grid()
    labels = system.phases_of(grid)
    rng = np.random.default_rng(2)
    for phase in system.phases:
        rows = grid[labels == phase]
        rows = rows[rng.choice(len(rows), size=min(len(rows), 150), replace=False)]
        points = [system(_composition(system, row), Probe.NEUTRON) for row in rows]
        for parameter in system.size_parameters[phase]:
            values = np.array([p.parameters[parameter] for p in points])
            assert values.max() / values.min() <= 2.02, (phase, parameter, values.min(), values.max())


@pytest.mark.parametrize("name", SYSTEMS)
def test_bad_compositions_are_refused_with_what_is_valid(name: str) -> None:
    system = ZOO[name]
    first = system.solutes[0]
    with pytest.raises(InvalidCompositionError, match=first):
        system({"unobtainium": 0.1}, Probe.XRAY)
    with pytest.raises(InvalidCompositionError, match="solvent is implicit"):
        system({"H2O": 0.5}, Probe.XRAY)
    with pytest.raises(InvalidCompositionError, match=first):
        system({first: 2.0}, Probe.NEUTRON)
    with pytest.raises(InvalidCompositionError, match="number"):
        system({first: "a lot"}, Probe.NEUTRON)  # type: ignore[dict-item]
    with pytest.raises(InvalidCompositionError, match="probe"):
        system({}, "gamma")
    with pytest.raises(InvalidCompositionError, match="array"):
        system.phases_of(np.zeros((3, len(system.solutes) + 1)))


def test_the_ternary_caps_the_sum_of_its_fractions() -> None:
    ternary = ZOO["ternary"]
    assert ternary.ternary
    assert ternary.max_total == 1.0
    with pytest.raises(InvalidCompositionError, match="at most 1"):
        ternary({"C12E5": 0.6, "decane": 0.6}, Probe.XRAY)
    # in L2 the oil is the continuous medium
    point = ternary({"C12E5": 0.2, "decane": 0.75}, Probe.XRAY)
    assert point.phase == "L2"
    assert point.parameters["sld_solvent"] == pytest.approx(ternary.sld_of("decane", Probe.XRAY))


def test_the_neutron_only_boundary_is_invisible_to_x_rays() -> None:
    system = ZOO["polymer_surfactant"]
    xray, neutron = system.seen_as(Probe.XRAY), system.seen_as(Probe.NEUTRON)
    assert len(set(xray.values())) == 1
    assert len(set(neutron.values())) == 2
    for surfactant in (0.01, 0.05, 0.1):
        c_star = float(overlap(np.asarray(surfactant)))
        below = {"C12E8": surfactant, "PPG": c_star - 1e-3}
        above = {"C12E8": surfactant, "PPG": c_star + 1e-3}
        phases = [system(c, Probe.XRAY).phase for c in (below, above)]
        assert phases == ["micelles_coils", "micelles_network"]
        assert xray[phases[0]] == xray[phases[1]]
        assert neutron[phases[0]] != neutron[phases[1]]
        a, b = (intensity(system(c, Probe.XRAY), Q_INV_A) for c in (below, above))
        # where the curve carries signal (above 1 % of its maximum; in the form-factor minima
        # the micelles' scattering nearly vanishes and the polymer's 1e-5 contrast shows)
        signal = a > 0.01 * a.max()
        assert np.max(np.abs(a - b)[signal] / a[signal]) < 0.04
        a, b = (intensity(system(c, Probe.NEUTRON), Q_INV_A) for c in (below, above))
        assert np.max(np.abs(a - b) / a) > 1.0


def test_the_size_only_phases_differ_by_a_jump_in_size() -> None:
    system = ZOO["size_only"]
    for surfactant in (0.02, 0.05, 0.1):
        limit = float(solubilisation_limit(np.asarray(surfactant)))
        below = system({"C16E10": surfactant, "hexadecane": limit - 1e-4}, Probe.NEUTRON)
        above = system({"C16E10": surfactant, "hexadecane": limit + 1e-4}, Probe.NEUTRON)
        assert (below.phase, above.phase) == ("swollen_micelles", "droplets")
        assert below.model == above.model
        assert above.parameters["radius"] / below.parameters["radius"] > 3.5
        for same in ("thickness", "radius_pd", "sld_solvent"):
            assert above.parameters[same] == pytest.approx(below.parameters[same])
        assert above.parameters["sld_core"] == pytest.approx(below.parameters["sld_core"], abs=0.01)


def test_the_crossover_grows_smoothly_and_the_vesicle_boundary_is_sharp() -> None:
    system = ZOO["crossover"]
    assert isinstance(system, Crossover)
    sos = np.linspace(0.0, 0.02, 401)
    rows = np.column_stack([np.full_like(sos, 0.03), sos])
    labels = system.phases_of(rows)
    polar = np.array(
        [system(_composition(system, r), Probe.XRAY).parameters.get("radius_polar", np.nan) for r in rows]
    )
    micelles = labels != "vesicles"
    # across the midline the micelles' length changes by a few % per step of 5e-5: a crossover, not a jump
    steps = np.abs(np.diff(polar[micelles])) / polar[micelles][:-1]
    assert steps.max() < 0.05
    assert polar[micelles].max() / polar[micelles].min() > 3.5
    assert list(dict.fromkeys(labels)) == ["spheres", "rods", "vesicles"]


def test_the_hexagonal_plugin_model_shows_its_bragg_ratios() -> None:
    system = ZOO["mesophases"]
    grid = system.grid()
    row = grid[system.phases_of(grid) == "hexagonal"][100]
    point = system(_composition(system, row), Probe.NEUTRON)
    assert point.model.endswith("hexagonal_cylinders.py")
    q10 = 4 * np.pi / (np.sqrt(3) * point.parameters["dnn"])
    q = np.linspace(0.5 * q10, 2.2 * q10, 800)
    curve = intensity(point, q)
    peaks = q[1:-1][(curve[1:-1] > curve[:-2]) & (curve[1:-1] > curve[2:])]
    assert q[np.argmax(curve)] == pytest.approx(q10, rel=0.02)
    assert any(abs(p / q10 - np.sqrt(3)) < 0.03 for p in peaks)
