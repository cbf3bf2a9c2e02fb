"""Phase identity from the curves (`tandem.analysis.phases`): descriptors, refusals, the zoo, names.

Curves come from sasmodels through the twin's `intensity` (descriptor tests, the property test)
and from the independent 1-D curve source (`tandem.sim.curve_source`, the zoo end to end).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.analysis.curves import Curve
from tandem.analysis.phases import (
    CurveRefusedError,
    Exclusion,
    PhaseBook,
    PhaseFinder,
    PhaseFindingError,
    PhaseInput,
    PhaseNames,
    describe,
    distances_to,
    grouping,
)
from tandem.analysis.phases.grouping import GroupingSettings
from tandem.analysis.phases.probes import match_phases, shared_sites
from tandem.campaign.metrics import match_labels
from tandem.sim.curve_source import simulate_curve
from tandem.sim.scattering import intensity
from tandem.sim.truth import TruthPoint
from tandem.sim.zoo import ZOO, ZooSystem, zoo_system
from tandem.stations import Probe

SPHERE = TruthPoint(
    "sphere",
    "sphere",
    {
        "radius": 40.0,
        "radius_pd": 0.1,
        "radius_pd_n": 35,
        "sld": 0.4,
        "sld_solvent": 6.4,
        "scale": 0.02,
        "background": 0.0,
    },
)
CYLINDER = TruthPoint(
    "cylinder",
    "cylinder",
    {"radius": 20.0, "length": 300.0, "sld": 0.4, "sld_solvent": 6.4, "scale": 0.02, "background": 0.0},
)
LAMELLAR = TruthPoint(
    "lamellar",
    "lamellar_stack_paracrystal",
    {
        "thickness": 30.0,
        "d_spacing": 120.0,
        "sigma_d": 0.05,
        "Nlayers": 20,
        "sld": 0.4,
        "sld_solvent": 6.4,
        "scale": 0.1,
        "background": 0.0,
    },
)
STRUCTURES = {"sphere": SPHERE, "cylinder": CYLINDER, "lamellar": LAMELLAR}


def resized(point: TruthPoint, factor: float) -> TruthPoint:
    """`point` with every length multiplied by `factor`."""
    lengths = {"radius", "length", "thickness", "d_spacing"}
    pars = {k: v * factor if k in lengths else v for k, v in point.parameters.items()}
    return TruthPoint(point.phase, point.model, pars)


def measured(
    point: TruthPoint,
    *,
    seed: int,
    q_min: float = 0.004,
    q_max: float = 0.5,
    n: int = 200,
    scale: float = 1.0,
    background: float = 0.0,
    dq_relative: float | None = None,
    relative_error: float = 0.01,
) -> Curve:
    """A sasmodels curve with Gaussian noise of `relative_error` (and a small absolute floor)."""
    rng = np.random.default_rng(seed)
    q = np.geomspace(q_min, q_max, n)
    dq = None if dq_relative is None else dq_relative * q
    i = scale * intensity(point, q, dq) + background
    sigma = relative_error * i + 1e-4 * scale
    return Curve(q, i + rng.normal(0.0, sigma), sigma, np.zeros_like(q) if dq is None else dq)


def run(
    uid: str,
    curve: Curve,
    x: float = 0.1,
    y: float = 0.1,
    *,
    probe: str = "neutron",
    morphology: str | None = None,
) -> PhaseInput:
    """A run at composition A = x, B = y (mass fractions)."""
    return PhaseInput(uid, probe, {"A": x, "B": y}, curve, morphology)


def same_partition(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Whether two labellings of the same runs agree up to renaming."""
    if set(a) != set(b):
        return False
    forward: dict[str, str] = {}
    backward: dict[str, str] = {}
    for uid in a:
        if forward.setdefault(a[uid], b[uid]) != b[uid] or backward.setdefault(b[uid], a[uid]) != a[uid]:
            return False
    return True


# -- descriptors -----------------------------------------------------------------------------------


def test_descriptor_ignores_scale_background_grid_and_smearing_but_not_shape() -> None:
    reference = describe(measured(SPHERE, seed=0))
    same = {
        "another noise draw": measured(SPHERE, seed=1),
        "x10 scale": measured(SPHERE, seed=2, scale=10.0),
        "flat background": measured(SPHERE, seed=3, background=0.01),
        "another grid and range": measured(SPHERE, seed=4, q_min=0.003, q_max=0.3, n=90),
        "smeared (dq = 5 % of q)": measured(SPHERE, seed=5, dq_relative=0.05),
    }
    same_d = dict(zip(same, distances_to(reference, [describe(c) for c in same.values()]), strict=True))
    to_cylinder, to_lamellar = distances_to(
        reference, [describe(measured(CYLINDER, seed=6)), describe(measured(LAMELLAR, seed=7))]
    )
    bigger = float(distances_to(reference, [describe(measured(resized(SPHERE, 1.5), seed=8))])[0])
    # measured: same 0.04-0.33 (the background costs most), sphere-cylinder 1.0, sphere-lamellar 2.7,
    # sphere-sphere 1.5x 0.36
    different = min(to_cylinder, to_lamellar)
    for what, d in same_d.items():
        assert d < 0.5 * different, f"{what}: distance {d:.3f}, a different shape is {different:.3f}"
    assert bigger < 0.5 * different
    assert max(same_d.values()) < bigger + 0.1  # a size change is further than any nuisance but the bg
    # cylinder and lamellae are no nearer to each other than to the sphere
    cyl_lam = distances_to(describe(measured(CYLINDER, seed=9)), [describe(measured(LAMELLAR, seed=10))])
    assert cyl_lam[0] > 2.0 * max(same_d.values())


def test_descriptor_of_a_scaled_curve_is_the_same_slopes() -> None:
    curve = measured(CYLINDER, seed=11)
    scaled = Curve(curve.q_inv_a, 37.0 * curve.intensity_per_cm, 37.0 * curve.sigma_per_cm, curve.dq_inv_a)
    a, b = describe(curve), describe(scaled)
    np.testing.assert_allclose(a.slopes, b.slopes, rtol=1e-6, atol=1e-6)
    assert np.isnan(a.slopes).sum() == np.isnan(b.slopes).sum()


@pytest.mark.xfail(
    strict=True,
    reason="a flat background 100x the structure at q_max, over a top third with form-factor "
    "oscillations: the B + A q^-p fit takes the background 13 % low and the rest becomes flat "
    "'structure' at high q; measured distance 0.64 to the same sphere vs 0.90 to a cylinder",
)
def test_a_large_background_over_form_factor_oscillations_is_still_told_apart() -> None:
    reference = describe(measured(SPHERE, seed=0))
    with_bg = describe(measured(SPHERE, seed=3, background=0.1))
    to_cylinder = distances_to(with_bg, [describe(measured(CYLINDER, seed=6))])[0]
    assert distances_to(reference, [with_bg])[0] < 0.5 * to_cylinder


def _bad_curves() -> dict[str, tuple[Exclusion, Curve]]:
    rng = np.random.default_rng(5)
    q = np.geomspace(0.004, 0.5, 100)
    good = measured(SPHERE, seed=20, n=100)
    nan_i = good.intensity_per_cm.copy()
    nan_i[::3] = np.nan
    negative = -1.0 + rng.normal(0.0, 0.01, q.size)
    q5 = np.geomspace(0.004, 0.5, 5)
    q_narrow = np.geomspace(0.05, 0.1, 50)
    flat = 0.1 + rng.normal(0.0, 0.001, q.size)
    return {
        "nan": (Exclusion.NON_FINITE, Curve(q, nan_i, good.sigma_per_cm, good.dq_inv_a)),
        "negative": (
            Exclusion.NEGATIVE_INTENSITY,
            Curve(q, negative, np.full(q.size, 0.01), np.zeros(q.size)),
        ),
        "five_points": (
            Exclusion.TOO_FEW_POINTS,
            Curve(q5, intensity(SPHERE, q5), 0.01 * intensity(SPHERE, q5), np.zeros(5)),
        ),
        "narrow": (
            Exclusion.NARROW_Q_RANGE,
            Curve(q_narrow, intensity(SPHERE, q_narrow), 0.01 * intensity(SPHERE, q_narrow), np.zeros(50)),
        ),
        "flat": (Exclusion.FLAT, Curve(q, flat, np.full(q.size, 0.001), np.zeros(q.size))),
    }


@pytest.mark.parametrize("which", ["nan", "negative", "five_points", "narrow", "flat"])
def test_describe_refuses_bad_curves_with_their_reason(which: str) -> None:
    reason, curve = _bad_curves()[which]
    with pytest.raises(CurveRefusedError) as info:
        describe(curve)
    assert info.value.reason is reason
    assert reason.value in str(info.value)


def test_phase_finder_leaves_bad_runs_out_with_their_reason() -> None:
    good = [
        run(f"good-{k}", measured(resized(SPHERE, 1.0 + 0.05 * k), seed=30 + k), 0.1 + 0.01 * k, 0.1)
        for k in range(6)
    ]
    bad = {name: run(f"bad-{name}", curve) for name, (_, curve) in _bad_curves().items()}
    expected = {f"bad-{name}": reason for name, (reason, _) in _bad_curves().items()}
    # a power law far above every other curve's q range: it can be described, compared with nothing
    q_far = np.geomspace(2.0, 9.5, 80)
    far = Curve(q_far, 1e-2 * q_far**-4, 1e-4 * q_far**-4, np.zeros(q_far.size))
    assert describe(far).n_bins >= 5
    inputs = [*good, *bad.values(), run("far", far), run("muon", good[0].curve, probe="muon")]
    expected |= {"far": Exclusion.NO_OVERLAP, "muon": Exclusion.UNKNOWN_PROBE}
    finder = PhaseFinder()
    finding = finder.add(inputs[:4])
    finding = finder.add(inputs[4:])
    assert {uid: reason for uid, (reason, _) in finding.excluded.items()} == expected
    for uid in expected:
        assert uid not in finding.labels
        assert uid not in finding.probe_labels
        assert finding.excluded[uid][1]  # a message saying what was wrong
        assert all(uid not in event.runs for event in finder.events)
    assert set(finding.labels) == {r.run_uid for r in good}
    assert finding.n_phases == 1
    # more runs later: the bad ones stay out
    later = finder.add([run("good-late", measured(SPHERE, seed=40), 0.2, 0.1)])
    assert set(expected) <= set(later.excluded)
    assert not set(expected) & set(later.labels)


def test_a_run_given_twice_is_an_error_and_restore_comes_first() -> None:
    finder = PhaseFinder()
    item = run("r", measured(SPHERE, seed=41))
    finder.add([item])
    with pytest.raises(PhaseFindingError, match="already"):
        finder.add([item])
    with pytest.raises(PhaseFindingError, match="before"):
        finder.restore(finder.state())


@pytest.mark.xfail(
    strict=True,
    reason="spheres whose radius grows 25 -> 110 A along SDS (one phase, 4.4x: beyond the 2.2x size "
    "shift) and three tight cylinders: the smallest spheres (shape distance 0.8 to the cylinders, 1.4 "
    "to the largest spheres) are split off into the cylinders' phase; a group of three has its "
    "3rd-nearest neighbour outside it, so its self-tuned scale sits at the cap (measured 2026-12-03)",
)
def test_a_small_tight_phase_next_to_a_long_size_series_keeps_to_itself() -> None:
    spheres = [
        run(f"s{k}", measured(resized(SPHERE, r / 40.0), seed=200 + k, n=120), sds, 0.02)
        for k, (r, sds) in enumerate(
            [(25 + 2 * k, 0.01 + 0.005 * k) for k in range(4)]
            + [(80 + 4 * k, 0.12 + 0.005 * k) for k in range(4)]
            + [(30 + 6 * k, 0.03 + 0.01 * k) for k in range(9)]
        )
    ]
    cylinders = [run(f"c{k}", measured(CYLINDER, seed=220 + k, n=120), 0.14, 0.02) for k in range(3)]
    finding = PhaseFinder().add([*spheres, *cylinders])
    cylinder_phase = finding.labels["c0"]
    assert [uid for uid, name in finding.labels.items() if name == cylinder_phase] == ["c0", "c1", "c2"]


# -- the zoo, end to end ---------------------------------------------------------------------------

#: run-label accuracy (Hungarian-matched) of seeds 0, 1, 2, 40 random samples, neutrons, 1-D curve source,
#: measured on 2026-12-03 (grouping with the fifth neighbour's scale) by running the body of
#: `test_zoo_phases_end_to_end` for each system and seed and printing `accuracy`, `finding.n_phases` and
#: the truth's count. Per seed 0/1/2 (phases found / true):
#:   default             0.900 / 0.900 / 0.825   (4, 4, 4 of 5)
#:   ternary             0.725 / 0.650 / 0.775   (3, 2, 4 of 4; 3-5 flat curves left out per seed)
#:   surfactant_salt     1.0 / 1.0 / 1.0         (3 of 3)
#:   polymer_surfactant  1.0 / 1.0 / 1.0         (2 of 2)
#:   mesophases          0.775 / 0.725 / 0.950   (2, 2, 3 of 3)
#:   size_only           1.0 / 1.0 / 1.0         (2 of 2)
#:   crossover           1.0 / 0.975 / 1.0       (3 of 3)
#: Thresholds sit a little below the lowest. The ternary's seed 1 finds 2 of its 4 phases from 40 random
#: samples (L2's flat curves are left out, and L1 joins the bicontinuous phase across a smooth border):
#: its phase count may be off by 2.
ZOO_THRESHOLDS = {
    "default": 0.80,
    "ternary": 0.60,
    "surfactant_salt": 0.95,
    "polymer_surfactant": 0.95,
    "mesophases": 0.70,
    "size_only": 0.95,
    "crossover": 0.95,
}
ZOO_COUNT_TOLERANCE = {"ternary": 2}
N_ZOO_SAMPLES = 40


def random_inside(system: ZooSystem, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` uniform samples inside the bounds and under the system's cap (rejection)."""
    lo = np.array([system.bounds[s][0] for s in system.solutes])
    hi = np.array([system.bounds[s][1] for s in system.solutes])
    out: list[np.ndarray] = []
    while len(out) < n:
        x = lo + rng.random(lo.size) * (hi - lo)
        if system.max_total is None or x.sum() <= system.max_total:
            out.append(x)
    return np.array(out)


def test_every_zoo_system_has_a_threshold() -> None:
    assert set(ZOO_THRESHOLDS) == set(ZOO)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(ZOO_THRESHOLDS))
def test_zoo_phases_end_to_end(name: str, seed: int) -> None:
    system = zoo_system(name)
    x = random_inside(system, N_ZOO_SAMPLES, np.random.default_rng([seed, 11]))
    seen = system.seen_as(Probe.NEUTRON)
    truth = [seen[str(p)] for p in system.phases_of(x)]
    inputs = []
    for i, xi in enumerate(x):
        composition = dict(zip(system.solutes, map(float, xi), strict=True))
        curve = simulate_curve(system, composition, Probe.NEUTRON, np.random.default_rng([seed, i, 7]))
        inputs.append(PhaseInput(f"r{i}", Probe.NEUTRON.value, composition, curve))
    finding = PhaseFinder().add(inputs)
    predicted = [finding.labels.get(f"r{i}") for i in range(len(x))]
    accuracy = match_labels(predicted, truth).accuracy
    assert accuracy >= ZOO_THRESHOLDS[name], f"{name} seed {seed}: accuracy {accuracy:.3f}"
    tolerance = ZOO_COUNT_TOLERANCE.get(name, 1)
    assert abs(finding.n_phases - len(set(truth))) <= tolerance, (finding.phases, sorted(set(truth)))
    # every run has a label or a reason, never both
    assert set(finding.labels) | set(finding.excluded) == {f"r{i}" for i in range(len(x))}
    assert not set(finding.labels) & set(finding.excluded)


# -- the order of arrival does not matter (property) ------------------------------------------------

_PER_STRUCTURE = 6


def _property_runs() -> dict[str, tuple[str, PhaseInput]]:
    """Six runs of each structure, sizes varying by up to 20 %, each structure in its own region."""
    runs: dict[str, tuple[str, PhaseInput]] = {}
    for s, (name, point) in enumerate(STRUCTURES.items()):
        for k in range(_PER_STRUCTURE):
            uid = f"{name}-{k}"
            curve = measured(resized(point, 1.0 + 0.04 * k), seed=100 + 10 * s + k, n=120)
            runs[uid] = (name, run(uid, curve, 0.05 + 0.3 * s + 0.04 * k, 0.1 + 0.02 * (k % 3)))
    return runs


PROPERTY_RUNS = _property_runs()


@st.composite
def arrivals(draw: st.DrawFn) -> list[list[str]]:
    """Two or three structures' runs in a random order, in random batch sizes."""
    n_structures = draw(st.sampled_from([2, 3]))
    chosen = list(STRUCTURES)[:n_structures]
    uids = [uid for uid, (name, _) in PROPERTY_RUNS.items() if name in chosen]
    order = draw(st.permutations(uids))
    batches: list[list[str]] = []
    while order:
        size = draw(st.integers(1, 5))
        batches.append(list(order[:size]))
        order = order[size:]
    return batches


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals())
def test_renames_are_events_names_are_never_reused_and_order_does_not_matter(
    batches: list[list[str]],
) -> None:
    finder = PhaseFinder()
    before: dict[str, str] = {}
    retired: set[str] = set()
    for batch in batches:
        finding = finder.add([PROPERTY_RUNS[uid][1] for uid in batch])
        in_events = {}
        for event in finding.events:
            for uid, old in event.runs.items():
                assert uid not in in_events, f"{uid} is in two events of one update"
                in_events[uid] = old
        for uid, old in before.items():
            if finding.labels[uid] != old:
                assert in_events.get(uid, "-") == old, (uid, old, finding.labels[uid], finding.events)
        for uid in batch:  # a new run is in an event only as a run with no name before
            assert in_events.get(uid) is None
        now = set(finding.labels.values())
        assert not now & retired, f"retired names {now & retired} came back"
        retired |= set(before.values()) - now
        before = dict(finding.labels)
    all_uids = [uid for batch in batches for uid in batch]
    truth = {uid: PROPERTY_RUNS[uid][0] for uid in all_uids}
    reference = PhaseFinder().add([PROPERTY_RUNS[uid][1] for uid in sorted(all_uids)])
    assert same_partition(before, dict(reference.labels))
    assert same_partition(before, truth)


# -- names -----------------------------------------------------------------------------------------


def test_phase_book_new() -> None:
    book = PhaseBook()
    (event,) = book.update({"a": 0, "b": 0})
    assert (event.kind, event.before, event.after) == ("new", (), ("phase-1",))
    assert dict(event.runs) == {"a": None, "b": None}
    assert book.labels == {"a": "phase-1", "b": "phase-1"}
    # the same grouping renumbered: no event, no rename
    assert book.update({"a": 5, "b": 5}) == []
    assert book.labels == {"a": "phase-1", "b": "phase-1"}


def test_phase_book_split() -> None:
    book = PhaseBook()
    book.update({"a": 0, "b": 0, "c": 0, "d": 0})
    (event,) = book.update({"a": 0, "b": 0, "c": 0, "d": 1, "e": 1})
    assert event.kind == "split"
    assert event.before == ("phase-1",)
    assert event.after == ("phase-2",)
    assert dict(event.runs) == {"d": "phase-1", "e": None}
    assert book.labels == {"a": "phase-1", "b": "phase-1", "c": "phase-1", "d": "phase-2", "e": "phase-2"}
    assert book.phases == ("phase-1", "phase-2")


def test_phase_book_merge() -> None:
    book = PhaseBook()
    book.update({"a": 0, "b": 0, "c": 0, "d": 1, "e": 1})
    (event,) = book.update({"a": 0, "b": 0, "c": 0, "d": 0, "e": 0})
    assert event.kind == "merge"
    assert event.before == ("phase-2",)
    assert event.after == ("phase-1",)
    assert dict(event.runs) == {"d": "phase-2", "e": "phase-2"}
    assert set(book.labels.values()) == {"phase-1"}
    # a retired name is never given again
    (again,) = book.update({"a": 0, "b": 0, "c": 0, "d": 1, "e": 1})
    assert again.kind == "split"
    assert again.after == ("phase-3",)


def test_phase_book_move() -> None:
    book = PhaseBook()
    book.update({"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "f": 1})
    (event,) = book.update({"a": 0, "b": 0, "c": 1, "d": 1, "e": 1, "f": 1})
    assert event.kind == "move"
    assert event.before == ("phase-1",)
    assert event.after == ("phase-2",)
    assert dict(event.runs) == {"c": "phase-1"}
    assert book.labels["c"] == "phase-2"
    assert [e.kind for e in book.events] == ["new", "new", "move"]


def test_phase_book_forgets_runs_left_out() -> None:
    book = PhaseBook()
    book.update({"a": 0, "b": 0})
    assert book.update({"a": 0}) == []
    assert book.labels == {"a": "phase-1"}


def test_phase_events_round_trip() -> None:
    book = PhaseBook()
    book.update({"a": 0, "b": 0})
    (event,) = book.update({"a": 0, "b": 1})
    assert type(event).from_dict(event.to_dict()) == event


def test_phase_names_from_agreeing_morphologies() -> None:
    names = PhaseNames()
    assert names.new(["sphere", "sphere", "sphere"]) == "sphere"
    assert names.new(["sphere", "sphere", "cylinder"]) == "sphere-2"  # exactly 2/3 agree
    assert names.new(["sphere", "cylinder", "lamellar"]) == "phase-1"
    assert names.new(["cylinder", "cylinder", "sphere", "sphere"]) == "phase-2"  # 1/2 is too few
    assert names.new(["lamellar", "lamellar", None]) == "lamellar"  # a run without a fit counts against
    assert names.new(["lamellar", None, None]) == "phase-3"
    assert names.new(["unresolved", "no-contrast", None]) == "phase-4"
    assert names.new([]) == "phase-5"
    assert names.taken == {"sphere", "sphere-2", "lamellar", *(f"phase-{k}" for k in range(1, 6))}
    again = PhaseNames(sorted(names.taken))
    assert again.new(["sphere"]) == "sphere-3"
    assert again.new([None]) == "phase-6"


def test_phase_finder_names_phases_after_agreeing_morphologies() -> None:
    inputs = [
        run(
            f"s{k}",
            measured(resized(SPHERE, 1 + 0.05 * k), seed=50 + k),
            0.1 + 0.02 * k,
            0.1,
            morphology="sphere",
        )
        for k in range(5)
    ] + [
        run(
            f"l{k}", measured(resized(LAMELLAR, 1 + 0.05 * k), seed=60 + k), 0.8 + 0.02 * k, 0.1, morphology=m
        )
        for k, m in enumerate(["lamellar", "cylinder", "sphere", None, "lamellar"])
    ]
    finding = PhaseFinder().add(inputs)
    assert {finding.labels[f"s{k}"] for k in range(5)} == {"sphere"}
    assert {finding.labels[f"l{k}"] for k in range(5)} == {"phase-1"}


# -- probes ----------------------------------------------------------------------------------------


def test_shared_sites_within_the_radius_weighted_by_closeness() -> None:
    reference = {"n1": np.array([0.1, 0.2]), "n2": np.array([0.3, 0.2])}
    other = {"x1": np.array([0.1, 0.2]), "x2": np.array([0.3, 0.25]), "x3": np.array([0.9, 0.9])}
    sites = {(r, o): w for r, o, w in shared_sites(reference, other, 0.1)}
    assert set(sites) == {("n1", "x1"), ("n2", "x2")}
    assert sites[("n1", "x1")] == pytest.approx(1.0)  # the same composition weighs 1
    assert sites[("n2", "x2")] == pytest.approx(0.5)  # half the radius away: half
    assert shared_sites({}, other, 1.0) == []
    assert shared_sites(reference, other, 0.0) == []


def _sites(pairs: list[tuple[str, str]]) -> list[tuple[str, str, float]]:
    return [(r, o, 1.0) for r, o in pairs]


def test_match_phases_one_to_one() -> None:
    ref = {"n1": "A", "n2": "A", "n3": "B", "n4": "B"}
    other = {"x1": "p", "x2": "p", "x3": "q", "x4": "q"}
    sites = _sites([("n1", "x1"), ("n2", "x2"), ("n3", "x3"), ("n4", "x4")])
    assert match_phases(ref, other, sites) == {"p": "A", "q": "B"}


def test_a_phase_spanning_two_reference_phases_stays_unmatched() -> None:
    ref = {"n1": "A", "n2": "A", "n3": "B", "n4": "B", "n5": "C"}
    other = {"x1": "p", "x2": "p", "x3": "p", "x4": "p", "x5": "q"}
    sites = _sites([("n1", "x1"), ("n2", "x2"), ("n3", "x3"), ("n4", "x4"), ("n5", "x5")])
    assert match_phases(ref, other, sites) == {"q": "C"}


def test_a_reference_phase_that_two_phases_share_matches_neither() -> None:
    ref = {"n1": "A", "n2": "A", "n3": "A", "n4": "A"}
    other = {"x1": "p", "x2": "p", "x3": "q", "x4": "q"}
    sites = _sites([("n1", "x1"), ("n2", "x2"), ("n3", "x3"), ("n4", "x4")])
    assert match_phases(ref, other, sites) == {}


def test_no_shared_site_no_match() -> None:
    assert match_phases({"n1": "A"}, {"x1": "p"}, []) == {}
    # sites whose runs have no phase (left out) say nothing, nor do sites too far to weigh enough
    assert match_phases({"n1": "A"}, {"x1": "p"}, [("n1", "x9", 1.0), ("n9", "x1", 1.0)]) == {}
    assert match_phases({"n1": "A"}, {"x1": "p"}, [("n1", "x1", 0.1)]) == {}


def test_two_probes_matched_through_shared_sites_in_the_finder() -> None:
    inputs = []
    for k in range(5):
        inputs.append(
            run(f"n-s{k}", measured(resized(SPHERE, 1 + 0.04 * k), seed=70 + k), 0.1 + 0.02 * k, 0.1)
        )
        inputs.append(
            run(f"n-l{k}", measured(resized(LAMELLAR, 1 + 0.04 * k), seed=80 + k), 0.7 + 0.02 * k, 0.1)
        )
    # X-rays see the same structures with other contrast (scale) and noise, at three of the sites
    for k in range(3):
        xs = measured(resized(SPHERE, 1 + 0.04 * k), seed=90 + k, scale=3.0)
        xl = measured(resized(LAMELLAR, 1 + 0.04 * k), seed=95 + k, scale=0.3)
        inputs.append(run(f"x-s{k}", xs, 0.1 + 0.02 * k, 0.1, probe="xray"))
        inputs.append(run(f"x-l{k}", xl, 0.7 + 0.02 * k, 0.1, probe="xray"))
    finding = PhaseFinder().add(inputs)
    assert finding.n_phases == 2
    for k in range(3):
        assert finding.labels[f"x-s{k}"] == finding.labels["n-s0"]
        assert finding.labels[f"x-l{k}"] == finding.labels["n-l0"]
        assert finding.probe_labels[f"x-s{k}"] != finding.probe_labels["n-s0"]  # its own probe's name
    assert set(finding.matched.values()) == {finding.labels["n-s0"], finding.labels["n-l0"]}


# -- state -----------------------------------------------------------------------------------------


def test_state_and_restore_keep_names_across_a_rebuild() -> None:
    uids = [uid for uid, (name, _) in PROPERTY_RUNS.items() if name != "cylinder"]
    first = PhaseFinder()
    first.add([PROPERTY_RUNS[uid][1] for uid in uids[:4]])  # spheres only: one phase
    finding = first.add([PROPERTY_RUNS[uid][1] for uid in uids[4:]])
    state = first.state()
    # a rebuilt finder that never saw any run would name the first phase "phase-1"
    rebuilt = PhaseFinder()
    rebuilt.restore(state)
    again = rebuilt.add([PROPERTY_RUNS[uid][1] for uid in reversed(uids)])
    assert dict(again.labels) == dict(finding.labels)
    assert again.events == ()  # nothing renamed, nothing new: the runs had their names
    # names are never reused after a restart
    more = rebuilt.add(
        [PROPERTY_RUNS[uid][1] for uid, (name, _) in PROPERTY_RUNS.items() if name == "cylinder"]
    )
    new_names = set(more.labels.values()) - set(finding.labels.values())
    assert new_names
    assert not new_names & set(state["names"])


def test_restore_rejects_a_malformed_state() -> None:
    with pytest.raises(PhaseFindingError, match="list of names"):
        PhaseFinder().restore({"names": "sphere", "probe_labels": {}, "labels": {}})


# -- continuity: a border is judged by how fast curves change there ---------------------------------


def _one_axis_groups(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twenty runs along one axis, a descriptor `profile` each, split at the middle by the caller."""
    x = np.linspace(0.0, 1.0, profile.size)
    distances = np.abs(profile[:, None] - profile[None, :])
    labels = (x >= 0.5).astype(np.int64)
    return x[:, None], distances, labels


def test_a_border_without_a_jump_is_joined() -> None:
    x = np.linspace(0.0, 1.0, 20)
    coordinates, distances, labels = _one_axis_groups(2.0 * x)
    relative = distances / 0.5
    joined = grouping._join_smooth_borders(labels, distances, relative, coordinates, GroupingSettings())
    assert len(set(joined.tolist())) == 1
