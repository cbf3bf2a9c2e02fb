"""The EPICS backend against the twin's beamline IOC, over Channel Access on loopback."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import numpy as np
import pytest
from fixtures_stations import EpicsStation

from tandem.devices.limits import TemperatureOutOfRangeError, UnknownConfigurationError
from tandem.devices.signals import DeviceTimeoutError
from tandem.sim.instruments import instrument_for
from tandem.stations import SANS, SAXS

pytestmark = pytest.mark.slow
EpicsFactory = Callable[..., EpicsStation]


@pytest.mark.parametrize("name", [SAXS, SANS])
def test_the_ioc_serves_the_station_limits_and_geometry(epics_station: EpicsFactory, name: str) -> None:
    station = epics_station(name).station
    instrument = instrument_for(name)
    assert station.limits.exposure_s == instrument.exposure_limits_s
    assert station.limits.temperature_c == instrument.temperature_limits_c
    assert station.limits.configurations == tuple(instrument.configurations)
    assert station.detector.geometry() == instrument.configuration().geometry


def test_devices_behave_like_the_hardware(epics_station: EpicsFactory) -> None:
    station = epics_station(SANS, time_scale=0.001).station
    station.configuration.set("short").wait(30)
    assert station.detector.geometry() == instrument_for(SANS).configurations["short"].geometry
    assert station.configuration.moving.get() == 0

    readings: list[float] = []
    station.temperature.readback.subscribe(lambda value, **_: readings.append(value), run=False)
    station.temperature.set(31.0).wait(60)
    assert abs(station.temperature.readback.get() - 31.0) <= station.temperature.tolerance_c.get()
    assert len(readings) > 1  # it ramped through intermediate readbacks

    station.shutter.set("open").wait(30)
    assert station.shutter.is_open
    station.sample.set({"uid": "s1", "mass_fractions": {"D2O": 0.95, "PPG": 0.05}})
    station.detector.exposure_time.set(5.0).wait(10)
    station.detector.trigger().wait(60)
    frame = station.detector.image.get()
    assert frame.shape == (128, 128)
    assert frame.sum() > 0
    assert station.monitor.count_time_s.get() == 5.0
    assert 0 < station.monitor.transmitted_counts.get() < station.monitor.incident_counts.get()


def test_a_full_saxs_frame_crosses_channel_access_intact(epics_station: EpicsFactory) -> None:
    """1043 x 981 int32 is 4 MB: within pyepics' default EPICS_CA_MAX_ARRAY_BYTES of 16 MB."""
    station = epics_station(SAXS, time_scale=0).station
    station.shutter.set("open").wait(30)
    station.detector.trigger().wait(60)
    frame = station.detector.image.get()
    assert frame.shape == (1043, 981)
    assert frame.dtype == np.int32
    assert frame[:10].sum() > 0  # the first rows arrived, not only a truncated head
    assert frame[-10:].sum() > 0


def test_out_of_range_moves_are_refused_before_any_put(epics_station: EpicsFactory) -> None:
    station = epics_station(SAXS).station
    with pytest.raises(TemperatureOutOfRangeError):
        station.temperature.set(120.0)
    with pytest.raises(UnknownConfigurationError, match="short, long"):
        station.configuration.set("middle")
    assert station.temperature.setpoint.get() == 25.0


def test_a_killed_ioc_fails_the_exposure_with_a_timeout(epics_station: EpicsFactory) -> None:
    """The frame never comes: the trigger fails after exposure + readout timeout, it does not hang."""
    running = epics_station(SANS, time_scale=1.0, readout_timeout_s=2.0)
    station = running.station
    station.detector.exposure_time.set(1.0).wait(10)
    status = station.detector.trigger()
    os.kill(running.ioc.pid, signal.SIGKILL)
    with pytest.raises(DeviceTimeoutError, match="no answer within 3 s"):
        status.wait(30)


def test_the_empty_cell_clears_the_sample_record(epics_station: EpicsFactory) -> None:
    """After a rinse the IOC holds no sample: the twin must not see the last sample in an empty cell."""
    station = epics_station(SAXS, time_scale=0).station
    station.sample.set({"uid": "s1", "mass_fractions": {"H2O": 0.95, "SDS": 0.05}})
    assert station.sample.uid.get() == "s1"
    station.sample.set(None)
    # read from the IOC, not the monitor's cache: what the twin's detector will see
    assert station.sample.uid.get(use_monitor=False) == ""
    assert station.sample.composition.get(use_monitor=False) == ""
