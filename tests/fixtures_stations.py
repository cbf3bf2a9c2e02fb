"""Fixtures for station devices: simulated stations on the twin, and EPICS stations on a beamline IOC.

`sim_station("saxs")` builds a station on the simulated backend with a fresh
station clock (time scale 0) and a seeded generator; `epics_station("sans")`
starts the twin's beamline IOC for that station in a subprocess (on the
session's loopback CA ports, 100x faster than the hardware) and connects the
EPICS backend to it. Every IOC is stopped when its test ends, also on failure.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from tandem.campaign.stations import build_station
from tandem.devices.station import OphydStationDevices, StationConfig
from tandem.sim.clock import StationClock
from tandem.sim.ioc import RunningIOC
from tandem.sim.station_devices import SimStationDriver, simulated_station
from tandem.sim.station_model import station_model
from tandem.stations import SANS, SAXS, Probe

PROBES = {SAXS: Probe.XRAY, SANS: Probe.NEUTRON}
_prefixes = itertools.count(1)


@pytest.fixture
def sim_station() -> Iterator[Callable[..., tuple[OphydStationDevices, SimStationDriver]]]:
    """Factory: `sim_station(name, **options)` → (station, driver) on the twin; drivers closed after."""
    drivers: list[SimStationDriver] = []

    def make(
        name: str = SAXS, *, seed: int = 1, **options: object
    ) -> tuple[OphydStationDevices, SimStationDriver]:
        station, driver = simulated_station(
            name,
            PROBES[name],
            station_model(name),
            clock=StationClock(name),
            rng=np.random.default_rng(seed),
            **options,  # type: ignore[arg-type]
        )
        drivers.append(driver)
        return station, driver

    yield make
    for driver in drivers:
        driver.close()


@dataclass
class EpicsStation:
    station: OphydStationDevices
    ioc: RunningIOC


@pytest.fixture
def epics_station(ioc_factory: object) -> Iterator[Callable[..., EpicsStation]]:
    """Factory: `epics_station(name, time_scale=0.01, **config)` → station connected to a fresh IOC."""
    with contextlib.ExitStack() as stack:

        def make(
            name: str = SAXS, *, time_scale: float = 0.01, seed: int = 1, **config: object
        ) -> EpicsStation:
            prefix = f"TST:BL{next(_prefixes)}:{name.upper()}:"
            ioc = stack.enter_context(
                ioc_factory.serve(  # type: ignore[attr-defined]
                    "tandem.sim.beamline_ioc:BeamlineIOC",
                    prefix=prefix,
                    options={"station": name, "time_scale": time_scale, "seed": seed},
                )
            )
            station = build_station(
                StationConfig(name=name, probe=PROBES[name], backend="epics", prefix=prefix, **config)  # type: ignore[arg-type]
            )
            return EpicsStation(station, ioc)

        yield make
