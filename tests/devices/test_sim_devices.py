"""The simulated backend: the station's devices behave like the hardware and spend station time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from tandem.campaign.stations import build_station
from tandem.devices.detector import DetectorState
from tandem.devices.limits import TemperatureOutOfRangeError, UnknownConfigurationError
from tandem.devices.shutter import InvalidShutterPositionError
from tandem.devices.signals import DeviceFault
from tandem.devices.station import OphydStationDevices, StationConfig, StationConfigError
from tandem.sim.instruments import instrument_for
from tandem.sim.station_devices import SimStationDriver
from tandem.sim.station_model import Exposure, TwinStationModel
from tandem.stations import SANS, SAXS, Probe

SimFactory = Callable[..., tuple[OphydStationDevices, SimStationDriver]]
SDS = {"H2O": 0.95, "SDS": 0.05}


@pytest.mark.parametrize("name", [SAXS, SANS])
def test_limits_and_geometry_come_from_the_station(sim_station: SimFactory, name: str) -> None:
    station, _ = sim_station(name)
    instrument = instrument_for(name)
    limits = station.limits
    assert limits.exposure_s == instrument.exposure_limits_s
    assert limits.temperature_c == instrument.temperature_limits_c
    assert limits.configurations == tuple(instrument.configurations)
    assert station.detector.geometry() == instrument.configuration().geometry
    assert station.configuration.readback.get() == instrument.default_configuration


def test_a_configuration_move_changes_the_geometry_and_takes_station_time(sim_station: SimFactory) -> None:
    station, driver = sim_station(SANS)
    station.configuration.set("long").wait(10)
    long = instrument_for(SANS).configurations["long"].geometry
    assert station.detector.geometry() == long
    assert station.configuration.distance_mm.get() == long.distance_mm
    assert driver.clock.busy_s("configure") == instrument_for(SANS).time_costs.configuration_change_s
    station.configuration.set("long").wait(10)  # already there: no move, no time
    assert driver.clock.busy_s("configure") == instrument_for(SANS).time_costs.configuration_change_s


def test_an_unknown_configuration_is_refused_without_moving(sim_station: SimFactory) -> None:
    station, driver = sim_station(SAXS)
    with pytest.raises(UnknownConfigurationError, match="short, long"):
        station.configuration.set("medium")
    assert driver.clock.timeline == ()


def test_the_shutter_readback_follows_the_command_after_its_travel_time(sim_station: SimFactory) -> None:
    station, driver = sim_station(SANS)
    assert not station.shutter.is_open
    station.shutter.set("open").wait(10)
    assert station.shutter.is_open
    station.shutter.set("close").wait(10)
    assert not station.shutter.is_open
    assert driver.clock.busy_s("shutter") == 2 * instrument_for(SANS).time_costs.shutter_s
    with pytest.raises(InvalidShutterPositionError, match="'open' or 'close'"):
        station.shutter.set("ajar")


def test_temperature_ramps_at_the_controller_rate(sim_station: SimFactory) -> None:
    station, driver = sim_station(SAXS)
    readings: list[float] = []
    station.temperature.readback.subscribe(lambda value, **_: readings.append(value), run=False)
    status = station.temperature.set(45.0)
    status.wait(10)
    assert abs(readings[-1] - 45.0) <= station.temperature.tolerance_c.get()
    driver.close()  # let the controller settle
    costs = instrument_for(SAXS).time_costs
    assert readings[-1] == 45.0
    assert readings == sorted(readings)
    assert len(readings) > 2
    assert driver.clock.busy_s("temperature") == pytest.approx(costs.temperature_change_s(25.0, 45.0))


@pytest.mark.parametrize("target", [95.0, -10.0, float("nan")])
def test_a_temperature_beyond_the_controller_range_is_refused_without_moving(
    sim_station: SimFactory, target: float
) -> None:
    station, driver = sim_station(SAXS)
    with pytest.raises(TemperatureOutOfRangeError, match=r"\[5, 90\] °C"):
        station.temperature.set(target)
    assert station.temperature.setpoint.get() == 25.0
    assert driver.clock.timeline == ()


@pytest.mark.parametrize("name", [SAXS, SANS])
def test_a_trigger_delivers_one_frame_of_the_sample_with_its_monitor_counts(
    sim_station: SimFactory, name: str
) -> None:
    station, driver = sim_station(name)
    station.sample.set({"uid": "s", "mass_fractions": SDS if name == SAXS else {"D2O": 0.95, "SDS": 0.05}})
    station.shutter.set("open").wait(10)
    station.detector.exposure_time.put(2.0)
    before = driver.clock.now_s
    station.detector.trigger().wait(30)
    frame = station.detector.image.get()
    assert frame.shape == station.detector.geometry().shape
    assert frame.dtype == np.int32
    assert frame.sum() > 0
    assert station.detector.array_counter.get() == 1
    assert station.monitor.count_time_s.get() == 2.0
    assert 0 < station.monitor.transmitted_counts.get() < station.monitor.incident_counts.get()
    assert driver.clock.now_s - before == pytest.approx(2.0 + instrument_for(name).time_costs.readout_s)
    desc = station.detector.describe()[f"{name}_detector_image"]
    assert desc["shape"] == list(frame.shape)
    assert desc["dtype_numpy"] == "<i4"


def test_the_sample_changes_the_frame_and_a_closed_shutter_gives_nothing(sim_station: SimFactory) -> None:
    station, _ = sim_station(SANS)
    det = station.detector
    det.exposure_time.put(10.0)

    def total() -> int:
        det.trigger().wait(30)
        return int(det.image.get().sum())

    dark = total()
    station.shutter.set("open").wait(10)
    empty = total()
    station.sample.set({"uid": "s", "mass_fractions": {"D2O": 0.95, "PPG": 0.05}})
    sample = total()
    assert station.monitor.incident_counts.get() > 0
    assert dark < 0.05 * empty  # only the detector's dark counts
    assert sample > 2 * empty > 0  # hydrogenous polymer in D2O scatters strongly


class _BrokenModel(TwinStationModel):
    def expose(self, *args: Any, **kwargs: Any) -> Exposure:
        raise RuntimeError("detector overheated")


def test_a_detector_fault_fails_the_trigger_at_once_with_the_reason(sim_station: SimFactory) -> None:
    station, driver = sim_station(SAXS)
    driver.model = _BrokenModel(instrument_for(SAXS), driver.model.truth)  # type: ignore[attr-defined]
    status = station.detector.trigger()
    with pytest.raises(DeviceFault, match="detector overheated"):
        status.wait(30)
    assert station.detector.detector_state.get() == DetectorState.ERROR


def test_build_station_from_configuration() -> None:
    config = StationConfig(name=SANS, probe=Probe.NEUTRON, sim={"seed": 3, "temperature_c": 30.0})
    station = build_station(config)
    try:
        assert station.probe is Probe.NEUTRON
        assert station.temperature.readback.get() == 30.0
        assert dict(station.children()).keys() == {
            "detector",
            "shutter",
            "monitor",
            "configuration",
            "temperature",
            "sample",
        }
    finally:
        station.backend.close()


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"name": "saxs", "probe": "xray", "backend": "epics"}, "PV prefix"),
        ({"name": "saxs", "probe": "gamma"}, "probe"),
        ({"name": "saxs", "probe": "xray", "backend": "tango"}, "backend"),
        ({"name": "saxs", "probe": "xray", "exposure": 1}, "exposure"),
    ],
)
def test_bad_station_configurations_are_refused(config: Mapping[str, Any], match: str) -> None:
    with pytest.raises((StationConfigError, ValueError), match=match):
        build_station(StationConfig(**config))
