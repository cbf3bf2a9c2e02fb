"""A station: its devices, its name and probe, its limits; and the factory that builds one.

`OphydStationDevices` is what plans take: it keeps `tandem.protocols.StationDevices`, the seam
the plans annotate and check (the EPICS devices and the twin's soft ones alike).
It exposes `children()` as ophyd-async devices do,
so bluesky-queueserver lists it as a device and a queued plan names it by its
namespace name (`"saxs"`), its sub-devices as `saxs.detector` and so on.

`build_epics_station(config)` builds the EPICS backend. The simulated backend
lives in the digital twin (`tandem.sim.station_devices.build_sim_station`); the
choice between them is wiring, made above every part (`tandem.campaign.stations`),
so no real code path depends on the twin, not even by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tandem.devices.configuration import DetectorConfiguration, EpicsDetectorConfiguration
from tandem.devices.detector import AreaDetector, EpicsAreaDetector
from tandem.devices.limits import StationLimits
from tandem.devices.monitor import EpicsTransmissionMonitor, TransmissionMonitor
from tandem.devices.sample import EpicsSampleInfo, SampleInfo
from tandem.devices.shutter import EpicsShutter, Shutter
from tandem.devices.signals import DeviceTimeoutError
from tandem.devices.temperature import EpicsTemperatureController, TemperatureController
from tandem.errors import TandemError
from tandem.stations import Probe
from tandem.suggestions import ScanParameters

#: PV sub-prefixes of the devices under a station's prefix; the beamline IOC serves the same.
PV_SUFFIXES = {
    "detector": "det:",
    "shutter": "shutter:",
    "monitor": "mon:",
    "configuration": "cfg:",
    "temperature": "temp:",
    "sample": "sample:",
}


class StationConfigError(TandemError, ValueError):
    """A station configuration that cannot be built."""


class StationConfig(BaseModel):
    """How to build one station. `sim` holds the twin's options (read by the simulated backend)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    probe: Probe
    backend: Literal["epics", "sim"] = "sim"
    #: PV prefix of the station, for example "TANDEM:SAXS:" (EPICS backend only)
    prefix: str = ""
    max_frames: int = Field(default=100, ge=1)
    connection_timeout_s: float = Field(default=5.0, gt=0)
    #: how long after the nominal exposure a frame may take to arrive
    readout_timeout_s: float = Field(default=30.0, gt=0)
    move_timeout_s: float = Field(default=600.0, gt=0)
    sim: dict[str, Any] = Field(default_factory=dict)


@dataclass
class OphydStationDevices:
    """The devices of one station (`tandem.protocols.StationDevices`). Not a value: it holds live devices."""

    name: str
    probe: Probe
    detector: AreaDetector
    shutter: Shutter
    monitor: TransmissionMonitor
    configuration: DetectorConfiguration
    temperature: TemperatureController
    sample: SampleInfo
    max_frames: int = 100
    #: what drives simulated devices (kept alive with the station); None on EPICS
    backend: Any = None

    def children(self) -> Iterator[tuple[str, Any]]:
        for attr in PV_SUFFIXES:
            yield attr, getattr(self, attr)

    @property
    def limits(self) -> StationLimits:
        """What the station accepts now, as its devices report it."""
        return StationLimits(
            station=self.name,
            exposure_s=self.detector.exposure_range_s,
            temperature_c=self.temperature.range_c,
            configurations=self.configuration.names,
            max_frames=self.max_frames,
        )

    def check(self, scan: ScanParameters) -> None:
        """Refuse `scan` with a `ScanLimitError` if the station cannot run it. Moves nothing."""
        self.limits.check(scan)

    def wait_for_connection(self, timeout_s: float = 5.0) -> None:
        for attr, device in self.children():
            try:
                device.wait_for_connection(timeout=timeout_s)
            except TimeoutError as exc:
                raise DeviceTimeoutError(
                    f"station {self.name!r}: {attr} did not connect within {timeout_s:g} s ({exc})"
                ) from exc


def build_epics_station(config: StationConfig) -> OphydStationDevices:
    """The station's devices over Channel Access, connected (or a `DeviceTimeoutError`)."""
    if not config.prefix:
        raise StationConfigError(f"station {config.name!r}: the EPICS backend needs a PV prefix")
    p = config.prefix
    station = OphydStationDevices(
        name=config.name,
        probe=config.probe,
        detector=EpicsAreaDetector(
            p + PV_SUFFIXES["detector"],
            name=f"{config.name}_detector",
            readout_timeout_s=config.readout_timeout_s,
        ),
        shutter=EpicsShutter(
            p + PV_SUFFIXES["shutter"], name=f"{config.name}_shutter", move_timeout_s=config.move_timeout_s
        ),
        monitor=EpicsTransmissionMonitor(p + PV_SUFFIXES["monitor"], name=f"{config.name}_monitor"),
        configuration=EpicsDetectorConfiguration(
            p + PV_SUFFIXES["configuration"],
            name=f"{config.name}_configuration",
            move_timeout_s=config.move_timeout_s,
        ),
        temperature=EpicsTemperatureController(
            p + PV_SUFFIXES["temperature"],
            name=f"{config.name}_temperature",
            settle_timeout_s=config.move_timeout_s,
        ),
        sample=EpicsSampleInfo(p + PV_SUFFIXES["sample"], name=f"{config.name}_sample"),
        max_frames=config.max_frames,
    )
    station.wait_for_connection(config.connection_timeout_s)
    return station
