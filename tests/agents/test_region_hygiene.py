"""The feasible region and observation hygiene: what agents may suggest and learn from."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.agents.errors import InvalidRegionError
from tandem.agents.hygiene import Screen, needs_feature, needs_label
from tandem.agents.region import FeasibleRegion, stock_check_from
from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.observations import AnalysisStatus
from tandem.sim.system_phases import DEFAULT_COMPONENTS, H2O, SDS
from tandem.stations import Probe

from .conftest import default_region, observe


def test_unit_cube_round_trip_and_sum_cap_constraint() -> None:
    region = default_region(max_total=0.2)
    u = region.sobol(200, seed=3)
    assert u.shape == (200, 3)
    assert bool(region.inside_unit(u).all())
    fractions = region.from_unit(u)
    assert np.all(fractions.sum(1) <= 0.2 + 1e-9)
    np.testing.assert_allclose(region.to_unit(fractions).numpy(), u.numpy(), atol=1e-12)
    ((idx, coef, rhs),) = region.inequality_constraints()
    # BoTorch's form: sum(coef * u[idx]) >= rhs holds exactly for points under the cap
    lhs = (u[:, idx] * coef).sum(-1)
    assert bool((lhs >= rhs - 1e-9).all())
    # with a cap that never binds there is no constraint at all
    assert default_region(max_total=1.0).inequality_constraints() == []


def test_composition_uses_each_stations_solvent(region: FeasibleRegion) -> None:
    saxs = region.composition(np.array([0.05, 0.02, 0.01]), "saxs")
    sans = region.composition(np.array([0.05, 0.02, 0.01]), "sans")
    assert saxs.mass_fraction("H2O") == pytest.approx(0.92)
    assert sans.mass_fraction("D2O") == pytest.approx(0.92)
    assert sans.mass_fraction("H2O") == 0.0


def test_a_measured_composition_a_little_over_the_cap_is_learnt_from_not_skipped() -> None:
    # a sample targeted on the cap comes out over it about half the time (pipetting is never exact)
    strict = default_region(max_total=0.25)
    region = dataclasses.replace(strict, measured_tolerance=1e-3)
    over = {"SDS": 0.15, "PPG": 0.0707, "NaCl": 0.03}  # sums to 0.2507
    assert strict.why_outside(over) is not None
    assert region.why_outside(over) is None
    assert "max_total" in (region.why_outside({"SDS": 0.15, "PPG": 0.075, "NaCl": 0.03}) or "")
    assert "outside its bounds" in (region.why_outside({"SDS": 0.152, "PPG": 0.0, "NaCl": 0.0}) or "")
    # suggestions keep to the region itself, and the tolerance survives the records
    assert not bool(region.inside_unit(region.to_unit(np.array([[0.15, 0.0707, 0.03]])))[0])
    assert FeasibleRegion.from_dict(region.to_dict()).measured_tolerance == 1e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bounds": {"SDS": (0.1, 0.05), "PPG": (0, 0.1), "NaCl": (0, 0.05)}}, "lower < upper"),
        ({"bounds": {"SDS": (0, 0.1)}}, "exactly the components"),
        ({"max_total": 0.0}, "max_total"),
        (
            {"bounds": {"SDS": (0.5, 0.9), "PPG": (0.5, 0.9), "NaCl": (0, 0.1)}, "max_total": 0.9},
            "lower bounds",
        ),
        ({"default_solvent": SDS}, "must be a liquid"),
        ({"measured_tolerance": -1e-3}, "measured_tolerance"),
        ({"measured_tolerance": math.nan}, "measured_tolerance"),
    ],
)
def test_bad_regions_say_what_is_wrong(kwargs: dict, message: str) -> None:
    base = {
        "components": type(DEFAULT_COMPONENTS)(DEFAULT_COMPONENTS[n] for n in ("SDS", "PPG", "NaCl")),
        "bounds": {"SDS": (0, 0.15), "PPG": (0, 0.1), "NaCl": (0, 0.05)},
        "default_solvent": H2O,
    }
    with pytest.raises(InvalidRegionError, match=message) as info:
        FeasibleRegion(**{**base, **kwargs})
    assert isinstance(info.value, TandemError)
    assert isinstance(info.value, ValueError)


def test_region_round_trips_through_json_form(region: FeasibleRegion) -> None:
    again = FeasibleRegion.from_dict(region.to_dict())
    assert again == region


def test_stock_check_wraps_a_solver_that_raises() -> None:
    class InfeasibleError(Exception):
        pass

    def solve(station: str, target: Composition) -> None:
        if target.mass_fraction("SDS") > 0.1:
            raise InfeasibleError("the SDS stock is only 10 %")

    region = default_region(stock_check=stock_check_from(solve, InfeasibleError))
    assert region.why_infeasible(np.array([0.05, 0.0, 0.0]), "saxs") is None
    assert region.why_infeasible(np.array([0.12, 0.0, 0.0]), "saxs") == "the SDS stock is only 10 %"
    assert "outside its bounds" in str(region.why_infeasible(np.array([0.2, 0.0, 0.0]), "saxs"))


@given(st.lists(st.floats(min_value=-0.1, max_value=0.3) | st.just(math.nan), min_size=3, max_size=3))
@settings(max_examples=60, deadline=None)
def test_why_outside_agrees_with_bounds(values: list[float]) -> None:
    region = default_region(max_total=0.25)
    reason = region.why_outside(dict(zip(region.names, values, strict=True)))
    inside = (
        all(math.isfinite(v) for v in values)
        and all(
            lo - 1e-6 <= v <= hi + 1e-6 for v, lo, hi in zip(values, region.lower, region.upper, strict=True)
        )
        and sum(values) <= 0.25 + 1e-6
    )
    assert (reason is None) == inside


def test_screen_skips_bad_observations_with_reasons(caplog: pytest.LogCaptureFixture) -> None:
    region = default_region()
    screen = Screen(region, [needs_label, needs_feature("guinier_rg_a")])
    good = observe([0.05, 0.01, 0.01], features={"guinier_rg_a": 20.0, "peak_d_spacing_a": math.nan})
    failed = observe([0.05, 0.01, 0.01], status=AnalysisStatus.FAILED, features={"guinier_rg_a": 1.0})
    nan = observe([0.05, 0.01, 0.01], features={"guinier_rg_a": math.nan})
    outside = observe([0.05, 0.01, 0.01], features={"guinier_rg_a": 1.0})
    outside = type(outside)(**{**outside.__dict__, "composition": {"SDS": 0.5, "PPG": 0.0, "NaCl": 0.0}})
    unknown = type(good)(
        **{**good.__dict__, "sample_uid": "u", "composition": {**good.composition, "glycerol": 0.1}}
    )
    duplicate = type(good)(**{**good.__dict__, "run_uid": "again"})
    other_probe = type(good)(**{**good.__dict__, "probe": Probe.XRAY, "run_uid": "xray"})
    unlabelled = type(good)(**{**good.__dict__, "sample_uid": "new", "label": None})
    with caplog.at_level(logging.WARNING):
        accepted = screen.admit([good, failed, nan, outside, unknown, duplicate, other_probe, unlabelled])
    assert accepted == [good, other_probe]
    reasons = [s.reason for s in screen.skipped]
    assert len(reasons) == 6
    assert reasons[0].startswith("analysis failed")
    assert "guinier_rg_a" in reasons[1]
    assert "nan" in reasons[1]
    assert "outside its bounds" in reasons[2]
    assert "not modelled" in reasons[3]
    assert reasons[4].startswith("duplicate")
    assert reasons[5] == "no phase label"
    assert sum("skipping observation" in r.message for r in caplog.records) == 6


def test_sobol_rejects_negative_counts(region: FeasibleRegion) -> None:
    with pytest.raises(InvalidRegionError):
        region.sobol(-1, seed=0)
    assert region.sobol(0, seed=0).shape == (0, 3)
    assert isinstance(region.unit_bounds(), torch.Tensor)
