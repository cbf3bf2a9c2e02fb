"""The measurement plans on their own: transmission, empty cell, sample, each one run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bluesky import RunEngine

from tandem.devices.limits import ExposureOutOfRangeError, UnknownConfigurationError
from tandem.devices.station import OphydStationDevices
from tandem.plans.measurement import (
    TRANSMISSION_FRACTION,
    measure_empty_cell,
    measure_sample,
    measure_transmission,
)
from tandem.sim.instruments import instrument_for
from tandem.sim.station_devices import SimStationDriver
from tandem.stations import SANS, SAXS
from tandem.suggestions import InvalidScanError

SimFactory = Callable[..., tuple[OphydStationDevices, SimStationDriver]]
Docs = list[tuple[str, dict[str, Any]]]


def run(plan: Any) -> Docs:
    docs: Docs = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(plan)
    return docs


def events(docs: Docs) -> dict[str, list[dict[str, Any]]]:
    names = {d["uid"]: d["name"] for n, d in docs if n == "descriptor"}
    out: dict[str, list[dict[str, Any]]] = {}
    for n, d in docs:
        if n == "event":
            out.setdefault(names[d["descriptor"]], []).append(d["data"])
    return out


@pytest.mark.parametrize("name", [SAXS, SANS])
def test_measure_sample_records_transmission_then_frames_with_geometry(
    sim_station: SimFactory, name: str
) -> None:
    station, _ = sim_station(name)
    station.sample.set({"uid": "s", "mass_fractions": {"SDS": 0.05}})
    docs = run(measure_sample(station, 10.0, configuration="short", temperature_c=20.0, n_frames=3))
    start = docs[0][1]
    assert start["plan_name"] == "measure_sample"
    assert start["scan"] == {
        "exposure_s": 10.0,
        "configuration": "short",
        "temperature_c": 20.0,
        "n_frames": 3,
    }
    assert start["geometry"] == instrument_for(name).configurations["short"].geometry.to_dict()
    by_stream = events(docs)
    assert len(by_stream["transmission"]) == 1
    assert len(by_stream["primary"]) == 3
    assert by_stream["transmission"][0][f"{name}_monitor_count_time_s"] == max(
        10.0 * TRANSMISSION_FRACTION, instrument_for(name).exposure_limits_s[0]
    )
    assert [e[f"{name}_detector_array_counter"] for e in by_stream["primary"]] == [2, 3, 4]
    assert all(e[f"{name}_monitor_count_time_s"] == 10.0 for e in by_stream["primary"])
    assert docs[-1][1]["exit_status"] == "success"
    assert not station.shutter.is_open  # closed after the beam was needed
    descriptor = next(d for n, d in docs if n == "descriptor" and d["name"] == "primary")
    config = descriptor["configuration"][f"{name}_detector"]["data"]
    assert config[f"{name}_detector_distance_mm"] == start["geometry"]["distance_mm"]
    assert config[f"{name}_detector_exposure_time"] == 10.0


def test_measure_empty_cell_and_transmission_are_runs_of_their_own(sim_station: SimFactory) -> None:
    station, _ = sim_station(SANS)
    empty = run(measure_empty_cell(station, 5.0, n_frames=2))
    assert list(events(empty)) == ["empty_cell"]
    assert empty[0][1]["scan"]["configuration"] == instrument_for(SANS).default_configuration
    transmission = run(measure_transmission(station, 2.0))
    assert list(events(transmission)) == ["transmission"]
    assert station.detector.exposure_time.get() == 2.0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exposure_s": -1.0}, InvalidScanError),
        ({"exposure_s": 0.5}, ExposureOutOfRangeError),  # SANS counts at least 1 s
        ({"exposure_s": 5.0, "configuration": "short-ish"}, UnknownConfigurationError),
        ({"exposure_s": 5.0, "n_frames": 0}, InvalidScanError),
    ],
)
def test_bad_scans_are_refused_before_any_document_or_motion(
    sim_station: SimFactory, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    station, driver = sim_station(SANS)
    docs: Docs = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    exposure_s = kwargs.pop("exposure_s")
    with pytest.raises(error):
        RE(measure_sample(station, exposure_s, **kwargs))
    assert docs == []
    assert driver.clock.timeline == ()
