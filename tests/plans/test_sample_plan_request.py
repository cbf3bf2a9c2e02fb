"""A sample request's arguments run the sample plan as they are; the station fills its cell by its rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import epics
import pytest
from bluesky import RunEngine
from fixtures_deck import closed_after_the_test

from tandem.campaign.bundled import DEMO_FOLDER
from tandem.devices.station import OphydStationDevices
from tandem.plans.sample import sample_plan
from tandem.robots.cell_loader import CellLoader
from tandem.robots.deck_file import load_deck_file
from tandem.robots.liquid_handler import LiquidHandler
from tandem.sample_request import SampleRequest, cell_load_volume_ul
from tandem.sim.clock import StationClock
from tandem.sim.ioc import RunningIOC
from tandem.sim.liquid_handler import SimulatedLiquidHandler
from tandem.sim.station_devices import SimStationDriver
from tandem.stations import SAXS
from tandem.suggestions import ScanParameters

pytestmark = pytest.mark.slow


@pytest.fixture
def loader(cell_loader_ioc: RunningIOC) -> CellLoader:
    for suffix, value in (("Sim:SampleLineDry", 0), ("Sim:RinseLineDry", 0), ("Sim:TimeScale", 0.001)):
        epics.caput(cell_loader_ioc.pv(suffix), value, wait=True, timeout=10)
    device = CellLoader(cell_loader_ioc.prefix, name="cell_loader")
    device.wait_for_connection(timeout=10)
    return device


@pytest.mark.parametrize(
    ("total_volume_ul", "load_volume_ul", "loaded_ul"),
    [
        (300.0, None, 150.0),  # half the sample
        (800.0, None, 300.0),  # the twin's cell holds 300 µL
        (300.0, 100.0, 100.0),  # a request may say how much
    ],
)
def test_the_requests_arguments_run_and_the_cell_is_filled_by_the_stations_rule(
    sim_station: Callable[..., tuple[OphydStationDevices, SimStationDriver]],
    loader: CellLoader,
    total_volume_ul: float,
    load_volume_ul: float | None,
    loaded_ul: float,
) -> None:
    station, _ = sim_station(SAXS)
    deck = load_deck_file(DEMO_FOLDER / "saxs_deck.yaml")
    robot = SimulatedLiquidHandler(deck, StationClock(SAXS), seed=3)
    closed_after_the_test(robot)
    lh = LiquidHandler(robot, deck, name="saxs_lh")
    request = SampleRequest(
        sample_uid="s-1",
        campaign_id="c-1",
        station=SAXS,
        target={"SDS": 0.05, "NaCl": 0.01},
        balance="H2O",
        scan=ScanParameters(1.0, "short"),
        total_volume_ul=total_volume_ul,
        decision_uid="d-1",
        load_volume_ul=load_volume_ul,
    )
    docs: list[tuple[str, dict[str, Any]]] = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(sample_plan(station, lh, loader, **request.to_plan_kwargs(), dry_s=1.0))
    start = next(d for n, d in docs if n == "start" and d["plan_name"] == "sample_plan")
    stop = next(d for n, d in docs if n == "stop" and d["run_start"] == start["uid"])
    assert stop["exit_status"] == "success", stop["reason"]
    assert start["sample_uid"] == "s-1"
    assert start["decision_uid"] == "d-1"
    assert start["load_volume_ul"] == loaded_ul
    if load_volume_ul is None:
        assert loaded_ul == cell_load_volume_ul(total_volume_ul, float(loader.cell_capacity.get()))
