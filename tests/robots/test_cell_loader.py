"""The cell loader over Channel Access to its caproto IOC on loopback."""

from __future__ import annotations

import math
from collections.abc import Iterator

import epics
import pytest

from tandem.robots.cell_loader import (
    CellLoader,
    CellLoaderBusyError,
    CellLoaderStoppedError,
    CellLoaderTimeoutError,
    Dry,
    InvalidCellLoaderRequestError,
    LiquidNotDetectedError,
    Load,
    Rinse,
)
from tandem.sim.ioc import RunningIOC

pytestmark = pytest.mark.timeout(60)


def put(ioc: RunningIOC, suffix: str, value: object) -> None:
    epics.caput(ioc.pv(suffix), value, wait=True, timeout=10)


def get(ioc: RunningIOC, suffix: str) -> object:
    return epics.caget(ioc.pv(suffix), timeout=10, use_monitor=False)


@pytest.fixture
def loader(cell_loader_ioc: RunningIOC) -> Iterator[CellLoader]:
    """A connected device on a healthy, fast, empty loader."""
    put(cell_loader_ioc, "Sim:SampleLineDry", 0)
    put(cell_loader_ioc, "Sim:RinseLineDry", 0)
    put(cell_loader_ioc, "Sim:TimeScale", 0.01)
    device = CellLoader(cell_loader_ioc.prefix, name="cell_loader")
    device.wait_for_connection(timeout=10)
    if device.cell_volume.get(use_monitor=False) > 0:
        device.dry(1.0).wait(30)
    yield device
    device.destroy()


def test_load_pushes_the_volume_into_the_cell_and_trips_the_sensor(
    loader: CellLoader, cell_loader_ioc: RunningIOC
) -> None:
    loader.load(150.0, timeout_s=30).wait(40)
    assert get(cell_loader_ioc, "Sensor:Liquid-RB") == 1
    # the line's volume is pumped on top, so that the whole sample reaches the cell
    assert get(cell_loader_ioc, "Cell:Volume-RB") == pytest.approx(150.0)
    assert get(cell_loader_ioc, "Pump:Volume-RB") == pytest.approx(150.0 + 60.0)
    reading = loader.read()
    assert reading["cell_loader_liquid"]["value"] == 1
    assert reading["cell_loader_cell_volume"]["value"] == pytest.approx(150.0)


def test_dry_sample_line_fails_with_a_typed_timeout_not_a_hang(
    loader: CellLoader, cell_loader_ioc: RunningIOC
) -> None:
    put(cell_loader_ioc, "Sim:SampleLineDry", 1)
    status = loader.load(100.0, timeout_s=30)
    with pytest.raises(LiquidNotDetectedError, match="sample line is dry") as info:
        status.wait(40)
    assert isinstance(info.value, TimeoutError)
    assert not status.success
    assert get(cell_loader_ioc, "Sensor:Liquid-RB") == 0
    assert get(cell_loader_ioc, "Busy-RB") == 0


def test_operation_past_its_deadline_is_stopped_and_fails_typed(
    loader: CellLoader, cell_loader_ioc: RunningIOC
) -> None:
    # At hardware speed a 200 µL load takes over 10 s; allow a fraction of that.
    put(cell_loader_ioc, "Sim:TimeScale", 1.0)
    status = loader.load(200.0, timeout_s=0.5)
    with pytest.raises(CellLoaderTimeoutError):
        status.wait(30)
    assert get(cell_loader_ioc, "State-RB") == "stopped"
    assert get(cell_loader_ioc, "Busy-RB") == 0
    assert get(cell_loader_ioc, "Pump:Volume-RB") < 200.0 + 60.0


def test_rinse_fills_and_empties_the_cell(loader: CellLoader, cell_loader_ioc: RunningIOC) -> None:
    loader.load(100.0).wait(40)
    loader.rinse(2).wait(40)
    assert get(cell_loader_ioc, "Cell:Volume-RB") == 0
    assert get(cell_loader_ioc, "Sensor:Liquid-RB") == 0


def test_rinse_with_an_empty_reservoir_fails_typed(loader: CellLoader, cell_loader_ioc: RunningIOC) -> None:
    put(cell_loader_ioc, "Sim:RinseLineDry", 1)
    with pytest.raises(LiquidNotDetectedError, match="rinse line"):
        loader.rinse(1).wait(40)


def test_dry_blows_the_cell_empty(loader: CellLoader, cell_loader_ioc: RunningIOC) -> None:
    loader.load(100.0).wait(40)
    loader.dry(5.0).wait(40)
    assert get(cell_loader_ioc, "Cell:Volume-RB") == 0
    assert get(cell_loader_ioc, "Valve:Sel") == 2  # air


def test_commands_through_set_are_the_same_operations(
    loader: CellLoader, cell_loader_ioc: RunningIOC
) -> None:
    loader.set(Load(volume_ul=80.0)).wait(40)
    assert get(cell_loader_ioc, "Cell:Volume-RB") == pytest.approx(80.0)
    loader.set(Rinse(n_cycles=1)).wait(40)
    loader.set(Dry(duration_s=2.0)).wait(40)
    assert get(cell_loader_ioc, "Sensor:Liquid-RB") == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: d.load(-5.0), "positive number of µL"),
        (lambda d: d.load(math.nan), "positive number of µL"),
        (lambda d: d.load(10_000.0), "holds at most 300 µL"),
        (lambda d: d.load(50.0, timeout_s=0), "positive number of s"),
        (lambda d: d.rinse(0), "integer >= 1"),
        (lambda d: d.rinse(1.5), "integer >= 1"),
        (lambda d: d.dry(-1.0), "positive number of s"),
        (lambda d: d.set(42), "Load, Rinse or Dry"),
    ],
)
def test_bad_requests_fail_before_any_command(
    loader: CellLoader, cell_loader_ioc: RunningIOC, call: object, message: str
) -> None:
    put(cell_loader_ioc, "Pump:Volume-SP", 1.0)
    put(cell_loader_ioc, "Valve:Sel", "waste")
    with pytest.raises(InvalidCellLoaderRequestError, match=message):
        call(loader)  # type: ignore[operator]
    assert get(cell_loader_ioc, "Pump:Volume-SP") == 1.0
    assert get(cell_loader_ioc, "Valve:Sel") == 3  # waste: untouched


def test_second_operation_while_one_runs_is_refused(loader: CellLoader, cell_loader_ioc: RunningIOC) -> None:
    put(cell_loader_ioc, "Sim:TimeScale", 1.0)
    running = loader.load(200.0, timeout_s=30)
    try:
        with pytest.raises(CellLoaderBusyError):
            loader.rinse(1)
    finally:
        loader.stop()
    with pytest.raises(CellLoaderStoppedError):
        running.wait(30)
    assert get(cell_loader_ioc, "Busy-RB") == 0
