"""The seams in `tandem.protocols`: the concrete devices keep them, and plans refuse what does not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bluesky import RunEngine

from tandem.devices.configuration import EpicsDetectorConfiguration
from tandem.devices.detector import EpicsAreaDetector
from tandem.devices.monitor import EpicsTransmissionMonitor
from tandem.devices.sample import EpicsSampleInfo
from tandem.devices.shutter import EpicsShutter
from tandem.devices.station import OphydStationDevices
from tandem.devices.temperature import EpicsTemperatureController
from tandem.plans import device_check
from tandem.plans.device_check import WrongDeviceError
from tandem.plans.measurement import measure_sample
from tandem.plans.preparation import prepare_sample, rinse_cell
from tandem.plans.sample import sample_plan
from tandem.protocols import (
    CellLoaderDevice,
    LiquidHandlerBackend,
    LiquidHandlerDevice,
    Relabelling,
    StationDevices,
)
from tandem.protocols import LiquidHandlerBackend as ReExportedBackend
from tandem.robots.cell_loader import CellLoader
from tandem.robots.deck import Deck
from tandem.robots.liquid_handler import LiquidHandler
from tandem.sim.clock import StationClock
from tandem.sim.liquid_handler import SimulatedLiquidHandler
from tandem.sim.station_devices import SimStationDriver
from tandem.stations import SAXS, Probe

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def twin_lh(saxs_deck: Deck, twin_robot: Callable[..., SimulatedLiquidHandler]) -> LiquidHandler:
    backend = twin_robot(saxs_deck, StationClock("saxs"), seed=1)
    return LiquidHandler(backend, saxs_deck, name="saxs_liquid_handler")


@pytest.fixture
def unconnected_cell_loader(ca_env: object) -> Iterator[CellLoader]:
    """The EPICS cell loader, built against PVs nobody serves: the Protocol check reads none."""
    device = CellLoader("TST:PROTOCOLS:CL:", name="saxs_cell_loader")
    yield device
    device.destroy()


@pytest.fixture
def unconnected_epics_station(ca_env: object) -> Iterator[OphydStationDevices]:
    """`build_epics_station`'s devices, unconnected (the factory itself waits for the IOC)."""
    p = "TST:PROTOCOLS:SAXS:"
    station = OphydStationDevices(
        name=SAXS,
        probe=Probe.XRAY,
        detector=EpicsAreaDetector(p + "det:", name="saxs_detector"),
        shutter=EpicsShutter(p + "shutter:", name="saxs_shutter"),
        monitor=EpicsTransmissionMonitor(p + "mon:", name="saxs_monitor"),
        configuration=EpicsDetectorConfiguration(p + "cfg:", name="saxs_configuration"),
        temperature=EpicsTemperatureController(p + "temp:", name="saxs_temperature"),
        sample=EpicsSampleInfo(p + "sample:", name="saxs_sample"),
    )
    yield station
    for _, device in station.children():
        device.destroy()


# -- the concrete classes keep the seams ----------------------------------------------------------


def test_the_liquid_handler_and_its_twin_backend_keep_their_protocols(twin_lh: LiquidHandler) -> None:
    assert isinstance(twin_lh, LiquidHandlerDevice)
    assert isinstance(twin_lh.backend, LiquidHandlerBackend)
    assert device_check.liquid_handler(twin_lh) is twin_lh
    assert ReExportedBackend is LiquidHandlerBackend  # the old import keeps working


def test_the_epics_cell_loader_keeps_its_protocol(unconnected_cell_loader: CellLoader) -> None:
    assert isinstance(unconnected_cell_loader, CellLoaderDevice)
    assert device_check.cell_loader(unconnected_cell_loader) is unconnected_cell_loader


def test_the_twin_station_keeps_its_protocol(
    sim_station: Callable[..., tuple[OphydStationDevices, SimStationDriver]],
) -> None:
    station, _ = sim_station(SAXS)
    assert isinstance(station, StationDevices)
    assert device_check.station(station) is station


def test_the_epics_station_keeps_its_protocol(unconnected_epics_station: OphydStationDevices) -> None:
    assert isinstance(unconnected_epics_station, StationDevices)
    assert device_check.station(unconnected_epics_station) is unconnected_epics_station


def test_the_phase_mapping_agent_is_relabelling_and_the_old_import_works() -> None:
    from tandem.agents.phase_mapping import PhaseMappingAgent
    from tandem.protocols import Relabelling as OldRelabelling

    assert OldRelabelling is Relabelling
    assert hasattr(PhaseMappingAgent, "relabel")


def test_the_members_a_check_looks_for() -> None:
    assert device_check.protocol_members(CellLoaderDevice) == (
        "cell_capacity",
        "describe",
        "name",
        "read",
        "set",
    )
    assert set(device_check.protocol_members(LiquidHandlerDevice)) == {
        "deck",
        "describe",
        "name",
        "read",
        "realized",
        "set",
    }
    assert set(device_check.protocol_members(StationDevices)) == {
        "name",
        "probe",
        "detector",
        "shutter",
        "monitor",
        "configuration",
        "temperature",
        "sample",
        "children",
        "check",
    }


# -- a wrong device is refused, by name, before anything moves -----------------------------------


def test_a_liquid_handler_given_as_cell_loader_is_refused_naming_what_it_lacks(
    twin_lh: LiquidHandler,
) -> None:
    RE = RunEngine({})
    docs: list[Any] = []
    RE.subscribe(lambda name, doc: docs.append(name))
    with pytest.raises(
        WrongDeviceError, match=r"cell_loader must be a CellLoaderDevice .*has no cell_capacity$"
    ):
        RE(rinse_cell(twin_lh))  # type: ignore[arg-type]
    assert docs == []


def test_a_device_name_string_is_refused_as_liquid_handler() -> None:
    with pytest.raises(
        WrongDeviceError, match=r"liquid_handler must be a LiquidHandlerDevice .*got str"
    ) as info:
        list(prepare_sample("saxs_liquid_handler", {"sds": 0.02}, 100.0, balance="water"))  # type: ignore[arg-type]
    assert "deck" in str(info.value)
    assert "realized" in str(info.value)
    assert isinstance(info.value, TypeError)


def test_a_station_that_lacks_devices_is_refused_by_the_measurement_and_sample_plans(
    twin_lh: LiquidHandler, unconnected_cell_loader: CellLoader
) -> None:
    class HalfStation:
        name = "saxs"
        probe = Probe.XRAY

        def check(self, scan: object) -> None: ...

    with pytest.raises(
        WrongDeviceError, match=r"station must be a StationDevices .*has no children, configuration"
    ):
        list(measure_sample(HalfStation(), 1.0))  # type: ignore[arg-type]
    with pytest.raises(WrongDeviceError, match=r"station must be a StationDevices"):
        list(sample_plan(HalfStation(), twin_lh, unconnected_cell_loader, {"sds": 0.02}, 1.0))  # type: ignore[arg-type]
