"""The composite sample plan: prepare → load → measure → rinse, on both stations and both backends."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import epics
import numpy as np
import pytest
from bluesky import RunEngine
from fixtures_deck import closed_after_the_test
from fixtures_stations import EpicsStation

from tandem.campaign.bundled import DEMO_FOLDER
from tandem.catalog import Catalog
from tandem.devices.limits import (
    ExposureOutOfRangeError,
    TemperatureOutOfRangeError,
    UnknownConfigurationError,
)
from tandem.devices.signals import DeviceTimeoutError
from tandem.devices.station import OphydStationDevices
from tandem.plans.sample import sample_plan
from tandem.robots.cell_loader import CellLoader
from tandem.robots.deck_file import load_deck_file
from tandem.robots.liquid_handler import LiquidHandler
from tandem.run_documents import ExitStatus
from tandem.run_writer import subscribe_tiled_writer
from tandem.sim.clock import StationClock
from tandem.sim.instruments import instrument_for
from tandem.sim.ioc import RunningIOC
from tandem.sim.liquid_handler import SimulatedLiquidHandler
from tandem.sim.station_devices import SimStationDriver
from tandem.stations import SANS, SAXS

pytestmark = pytest.mark.slow
DECKS = DEMO_FOLDER
TARGET = {SAXS: ({"SDS": 0.05, "NaCl": 0.01}, "H2O"), SANS: ({"SDS": 0.05, "PPG": 0.02}, "D2O")}
Docs = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def loader(cell_loader_ioc: RunningIOC) -> CellLoader:
    for suffix, value in (("Sim:SampleLineDry", 0), ("Sim:RinseLineDry", 0), ("Sim:TimeScale", 0.001)):
        epics.caput(cell_loader_ioc.pv(suffix), value, wait=True, timeout=10)
    device = CellLoader(cell_loader_ioc.prefix, name="cell_loader")
    device.wait_for_connection(timeout=10)
    return device


def lab(name: str) -> tuple[LiquidHandler, StationClock]:
    deck = load_deck_file(DECKS / f"{name}_deck.yaml")
    clock = StationClock(name)
    robot = SimulatedLiquidHandler(deck, clock, seed=3)
    closed_after_the_test(robot)
    return LiquidHandler(robot, deck, name=f"{name}_lh"), clock


def run(
    station: OphydStationDevices, lh: LiquidHandler, loader: CellLoader, **kwargs: Any
) -> tuple[Docs, Any]:
    docs: Docs = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    target, balance = TARGET[station.name]
    plan = sample_plan(
        station,
        lh,
        loader,
        target,
        kwargs.pop("exposure_s", 2.0),
        balance=balance,
        campaign_id="c-1",
        decision_uid="d-1",
        dry_s=1.0,
        **kwargs,
    )
    try:
        RE(plan)
    except Exception as exc:
        return docs, exc
    return docs, None


def streams(docs: Docs) -> dict[str, list[dict[str, Any]]]:
    names = {d["uid"]: d["name"] for n, d in docs if n == "descriptor"}
    out: dict[str, list[dict[str, Any]]] = {}
    for n, d in docs:
        if n == "event":
            out.setdefault(names[d["descriptor"]], []).append(d)
    return out


def check_sample_run(docs: Docs, station: OphydStationDevices) -> None:
    start = next(d for n, d in docs if n == "start")
    stop = next(d for n, d in docs if n == "stop")
    assert stop["exit_status"] == "success", stop["reason"]
    assert start["campaign_id"] == "c-1"
    assert start["decision_uid"] == "d-1"
    assert start["station"] == station.name
    assert start["probe"] == station.probe.value
    assert start["sample_uid"] == start["sample"]["sample_uid"]
    target = start["target"]["mass_fraction"]
    realized = start["realized"]["mass_fraction"]
    assert target.keys() == realized.keys()
    assert realized != target  # the robot's pipetting errors are on record
    assert start["scan"] == {"exposure_s": 2.0, "configuration": "long", "temperature_c": 30.0, "n_frames": 2}
    geometry = instrument_for(station.name).configurations["long"].geometry
    assert start["geometry"] == geometry.to_dict()
    by_stream = streams(docs)
    assert {k: len(v) for k, v in by_stream.items()} == {
        "preparation": 1,
        "empty_cell": 2,
        "load": 1,
        "transmission": 1,
        "primary": 2,
        "rinse": 1,
    }
    image = f"{station.name}_detector_image"
    empty = np.asarray(by_stream["empty_cell"][0]["data"][image])
    frame = np.asarray(by_stream["primary"][0]["data"][image])
    assert frame.shape == empty.shape == geometry.shape
    assert frame.sum() > empty.sum() > 0  # the sample scatters on top of the cell
    transmission = by_stream["transmission"][0]["data"]
    assert transmission[f"{station.name}_monitor_transmitted_counts"] > 0


@pytest.mark.parametrize("name", [SAXS, SANS])
def test_one_sample_per_station_on_the_twin(
    sim_station: Callable[..., tuple[OphydStationDevices, SimStationDriver]], loader: CellLoader, name: str
) -> None:
    station, driver = sim_station(name)
    lh, lab_clock = lab(name)
    docs, error = run(station, lh, loader, configuration="long", temperature_c=30.0, n_frames=2)
    assert error is None
    check_sample_run(docs, station)
    assert station.sample.composition.get() == ""  # rinsed: the cell is empty again
    assert driver.clock.busy_s("expose") > 4 * 2.0  # station time was spent on the exposures
    assert lab_clock.now_s > 0  # and on the pipetting


@pytest.mark.parametrize("name", [SAXS, SANS])
def test_the_same_plan_on_the_epics_backend(
    epics_station: Callable[..., EpicsStation], loader: CellLoader, name: str
) -> None:
    station = epics_station(name, time_scale=0.0).station
    lh, _ = lab(name)
    docs, error = run(station, lh, loader, configuration="long", temperature_c=30.0, n_frames=2)
    assert error is None
    check_sample_run(docs, station)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exposure_s": 1e6}, ExposureOutOfRangeError),
        ({"temperature_c": 150.0}, TemperatureOutOfRangeError),
        ({"configuration": "ultra-long"}, UnknownConfigurationError),
    ],
)
def test_limits_are_refused_before_the_run_starts(
    sim_station: Callable[..., tuple[OphydStationDevices, SimStationDriver]],
    loader: CellLoader,
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    station, driver = sim_station(SANS)
    lh, lab_clock = lab(SANS)
    docs, raised = run(station, lh, loader, **kwargs)
    assert isinstance(raised, error)
    assert docs == []  # no document
    assert driver.clock.timeline == ()  # no station motion
    assert lab_clock.timeline == ()  # no pipetting
    assert station.shutter.setpoint.get() == 0


def test_a_killed_ioc_fails_the_run_with_a_timeout_and_the_cell_is_rinsed(
    epics_station: Callable[..., EpicsStation], loader: CellLoader
) -> None:
    running = epics_station(SANS, time_scale=0.0, readout_timeout_s=2.0, move_timeout_s=5.0)
    lh, _ = lab(SANS)
    docs: Docs = []

    def kill_after_first_sample_frame(name: str, doc: dict[str, Any]) -> None:
        docs.append((name, doc))
        if name == "event" and "primary" in streams(docs):
            os.kill(running.ioc.pid, signal.SIGKILL)

    RE = RunEngine({})
    RE.subscribe(kill_after_first_sample_frame)
    target, balance = TARGET[SANS]
    with pytest.raises(DeviceTimeoutError, match="'sans'"):
        RE(sample_plan(running.station, lh, loader, target, 1.0, balance=balance, n_frames=3, dry_s=1.0))
    stop = next(d for n, d in docs if n == "stop")
    assert stop["exit_status"] == "fail"
    assert "sans" in stop["reason"]
    assert len(streams(docs)["primary"]) == 1
    assert len(streams(docs)["rinse"]) == 1  # the loader still rinsed the cell


# -- acceptance: the run lands in Tiled -----------------------------------------------------------


@pytest.mark.parametrize("name", [SAXS, SANS])
def test_the_sample_run_reads_back_from_tiled(
    sim_station: Callable[..., tuple[OphydStationDevices, SimStationDriver]],
    loader: CellLoader,
    tiled_client: Any,
    unique_campaign_id: str,
    name: str,
) -> None:
    station, _ = sim_station(name)
    lh, _ = lab(name)
    RE = RunEngine({})
    subscribe_tiled_writer(RE, tiled_client)
    target, balance = TARGET[name]
    uid = RE(
        sample_plan(
            station,
            lh,
            loader,
            target,
            2.0,
            balance=balance,
            configuration="long",
            temperature_c=30.0,
            n_frames=2,
            campaign_id=unique_campaign_id,
            decision_uid="d-42",
            dry_s=1.0,
        )
    )[0]
    catalog = Catalog(tiled_client)
    (run_,) = catalog.runs(campaign_id=unique_campaign_id, station=name)
    assert run_.uid == uid
    assert run_.succeeded
    assert run_.decision_uid == "d-42"
    assert run_.sample_uid == run_.start["sample"]["sample_uid"]
    assert run_.realized is not None
    assert run_.realized["mass_fraction"].keys() == run_.target["mass_fraction"].keys()  # type: ignore[index]
    assert run_.scan.to_dict() == {
        "exposure_s": 2.0,
        "configuration": "long",
        "temperature_c": 30.0,
        "n_frames": 2,
    }
    geometry = instrument_for(name).configurations["long"].geometry
    assert run_.geometry == geometry
    frames = run_.frames("primary")
    empty = run_.frames("empty_cell")
    assert frames.shape == (2, *geometry.shape)
    assert empty.shape == (2, *geometry.shape)
    assert frames.sum() > empty.sum() > 0
    incident = run_.read(f"{name}_monitor_incident_counts", stream="transmission")
    assert incident.shape == (1,)
    assert incident[0] > 0


def test_a_failed_run_is_recorded_in_tiled_as_failed(
    epics_station: Callable[..., EpicsStation],
    loader: CellLoader,
    tiled_client: Any,
    unique_campaign_id: str,
) -> None:
    running = epics_station(SANS, time_scale=0.0, readout_timeout_s=2.0, move_timeout_s=5.0)
    lh, _ = lab(SANS)
    RE = RunEngine({})
    subscribe_tiled_writer(RE, tiled_client)

    def kill_on_first_frame(name: str, doc: dict[str, Any]) -> None:
        if name == "descriptor" and doc["name"] == "primary":
            os.kill(running.ioc.pid, signal.SIGKILL)

    RE.subscribe(kill_on_first_frame)
    target, balance = TARGET[SANS]
    with pytest.raises(DeviceTimeoutError):
        RE(
            sample_plan(
                running.station,
                lh,
                loader,
                target,
                1.0,
                balance=balance,
                n_frames=2,
                campaign_id=unique_campaign_id,
                dry_s=1.0,
            )
        )
    (run_,) = Catalog(tiled_client).runs(campaign_id=unique_campaign_id)
    assert run_.exit_status == ExitStatus.FAIL
    assert "stopped answering" in run_.reason or "no answer" in run_.reason
    assert run_.realized is not None  # the sample's record survives the failure
