"""The sample request: built once from a suggestion, JSON all the way, refused early when it cannot run."""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

import pytest

from tandem.components import Component, Components, Role
from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.plans.sample import sample_plan
from tandem.sample_request import (
    InvalidSampleRequestError,
    SampleRequest,
    SampleSettings,
    cell_load_volume_ul,
)
from tandem.stations import SANS, SAXS, UnknownStationError, device_names
from tandem.suggestions import ScanParameters, Suggestion

WATER = Component("H2O", "H2O", density_g_per_ml=1.0)
HEAVY_WATER = Component("D2O", "D2O", density_g_per_ml=1.107)
SDS = Component("SDS", "C12H25NaO4S", density_g_per_ml=1.01, role=Role.SOLUTE)
SALT = Component("NaCl", "NaCl", density_g_per_ml=2.165, role=Role.SOLUTE)

STATIONS = {
    SAXS: SampleSettings(balance="H2O", sample_volume_ul=300.0),
    SANS: SampleSettings(balance="D2O", sample_volume_ul=600.0),
}


def suggestion(station: str = SAXS, solvent: Component = WATER) -> Suggestion:
    target = Composition.from_mass_fractions(
        Components([SDS, SALT, solvent]), {"SDS": 0.05, "NaCl": 0.0}, balance=solvent.name
    )
    return Suggestion(
        station=station,
        target=target,
        scan=ScanParameters(2.0, "short", temperature_c=25.0, n_frames=3),
        agent="test",
        decision_uid="d-1",
    )


def request(**changes: Any) -> SampleRequest:
    values: dict[str, Any] = {
        "sample_uid": "s-1",
        "campaign_id": "c-1",
        "station": SAXS,
        "target": {"SDS": 0.05},
        "balance": "H2O",
        "scan": ScanParameters(1.0),
        "total_volume_ul": 300.0,
        **changes,
    }
    return SampleRequest(**values)


def test_a_suggestion_becomes_a_request_with_its_stations_balance_and_volume() -> None:
    made = SampleRequest.from_suggestion(
        suggestion(SANS, HEAVY_WATER), STATIONS, sample_uid="s-9", campaign_id="c"
    )
    assert made.station == SANS
    assert made.decision_uid == "d-1"
    assert made.sample_uid == "s-9"
    # every suggested component but the balance, zeros included: the plan is told what was asked
    assert dict(made.target) == pytest.approx({"SDS": 0.05, "NaCl": 0.0})
    assert made.balance == "D2O"
    assert made.total_volume_ul == 600.0
    assert made.load_volume_ul is None  # the station fills its cell
    assert made.measure_empty_cell


def test_plan_kwargs_are_json_and_name_every_argument_of_the_sample_plan_but_its_devices() -> None:
    kwargs = SampleRequest.from_suggestion(
        suggestion(), STATIONS, sample_uid="s-1", campaign_id="c"
    ).to_plan_kwargs()
    assert json.loads(json.dumps(kwargs)) == kwargs  # what the queue server is handed
    assert kwargs == {
        "target": pytest.approx({"SDS": 0.05, "NaCl": 0.0}),
        "exposure_s": 2.0,
        "configuration": "short",
        "temperature_c": 25.0,
        "n_frames": 3,
        "balance": "H2O",
        "campaign_id": "c",
        "decision_uid": "d-1",
        "sample_uid": "s-1",
        "total_volume_ul": 300.0,
        "load_volume_ul": None,
        "measure_empty_cell": True,
    }
    parameters = inspect.signature(sample_plan).parameters
    assert set(kwargs) <= set(parameters)
    assert list(parameters)[:3] == ["station", "liquid_handler", "cell_loader"]


@pytest.mark.parametrize("load_volume_ul", [None, 120.0])
def test_a_request_round_trips_through_json(load_volume_ul: float | None) -> None:
    original = request(decision_uid="d-7", load_volume_ul=load_volume_ul, measure_empty_cell=False)
    again = SampleRequest.from_dict(json.loads(json.dumps(original.to_dict())))
    assert again == original
    assert again.to_plan_kwargs() == original.to_plan_kwargs()


def test_the_load_volume_rule_is_half_the_sample_at_most_what_the_cell_holds() -> None:
    assert cell_load_volume_ul(300.0, 300.0) == 150.0
    assert cell_load_volume_ul(600.0, 300.0) == 300.0
    assert cell_load_volume_ul(1000.0, 300.0) == 300.0  # more would overflow to waste
    assert cell_load_volume_ul(100.0, 80.0) == 50.0
    with pytest.raises(InvalidSampleRequestError, match="cell capacity"):
        cell_load_volume_ul(300.0, 0.0)
    with pytest.raises(InvalidSampleRequestError, match="sample volume"):
        cell_load_volume_ul(-1.0, 300.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"total_volume_ul": 0.0}, "total_volume_ul"),
        ({"total_volume_ul": -300.0}, "total_volume_ul"),
        ({"total_volume_ul": math.nan}, "total_volume_ul"),
        ({"load_volume_ul": 0.0}, "load_volume_ul"),
        ({"load_volume_ul": -5.0}, "load_volume_ul"),
        ({"load_volume_ul": 301.0}, "at most total_volume_ul"),
        ({"target": {}}, "non-empty mapping"),
        ({"target": {"SDS": 1.5}}, r"\[0, 1\]"),
        ({"target": {"SDS": 0.7, "NaCl": 0.6}}, "sum to 1.3"),
        ({"sample_uid": ""}, "sample_uid"),
        ({"station": ""}, "station"),
        ({"measure_empty_cell": "yes"}, "true or false"),
    ],
)
def test_a_request_no_station_could_run_is_refused_when_built(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSampleRequestError, match=message) as info:
        request(**changes)
    assert isinstance(info.value, TandemError)
    assert isinstance(info.value, ValueError)


def test_a_suggestion_for_an_unknown_station_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownStationError, match=r"'xrd'.*sans, saxs") as info:
        SampleRequest.from_suggestion(suggestion("xrd"), STATIONS, sample_uid="s", campaign_id="c")
    assert isinstance(info.value, TandemError)


def test_a_pure_solvent_suggestion_has_nothing_to_mix() -> None:
    pure = Suggestion(SAXS, Composition.pure(WATER), ScanParameters(1.0), agent="test")
    with pytest.raises(InvalidSampleRequestError, match="non-empty"):
        SampleRequest.from_suggestion(pure, STATIONS, sample_uid="s", campaign_id="c")


def test_a_malformed_record_is_a_typed_error() -> None:
    record = request().to_dict()
    del record["balance"]
    with pytest.raises(InvalidSampleRequestError, match="'balance'"):
        SampleRequest.from_dict(record)
    with pytest.raises(InvalidSampleRequestError, match="not a sample request"):
        SampleRequest.from_dict({**request().to_dict(), "scan": "fast"})


def test_a_request_cannot_be_changed() -> None:
    made = request()
    with pytest.raises(TypeError):
        made.target["SDS"] = 0.5  # type: ignore[index]


def test_a_stations_devices_have_one_spelling() -> None:
    assert device_names(SAXS) == ("saxs", "saxs_liquid_handler", "saxs_cell_loader")
    assert device_names(SANS).cell_loader == "sans_cell_loader"
