"""The simulated backend of the station devices: the same ophyd devices, driven by the twin.

The devices of `tandem.devices` declare soft signals; `SimStationDriver`
subscribes to their setpoints and answers like the hardware would, on one
worker thread per station (one set of hardware, one timeline): an exposure
spends its time on the station's `StationClock` and publishes a frame computed
from the ground truth, the shutter's readback follows after its travel time, the
temperature ramps, the detector carriage moves. The EPICS IOC in
`tandem.sim.beamline_ioc` behaves the same way through the same `StationModel`
(`tandem.sim.station_model`, whose names are importable from here too).

What is in the cell is written to the station's `sample` device (JSON mass
fractions, empty = the empty cell) by the sample plan, as a beamline records
its sample; the twin reads it to know what it is looking at.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from tandem.devices.configuration import DetectorConfiguration
from tandem.devices.detector import AreaDetector, DetectorState
from tandem.devices.monitor import TransmissionMonitor
from tandem.devices.sample import SampleInfo
from tandem.devices.shutter import Shutter
from tandem.devices.station import OphydStationDevices, StationConfig
from tandem.devices.temperature import TemperatureController
from tandem.sim.clock import StationClock
from tandem.sim.station_model import (
    StationModel,
    station_model,
)
from tandem.stations import Probe

logger = logging.getLogger(__name__)

#: Temperature ramps publish a readback at least every this many station seconds.
RAMP_STEP_S = 5.0

__all__ = [
    "RAMP_STEP_S",
    "SimStationDriver",
    "build_sim_station",
    "parse_composition",
    "simulated_station",
]


class SimStationDriver:
    """Makes a station of soft devices behave like hardware. Keep it referenced while the station is used."""

    def __init__(
        self,
        station: OphydStationDevices,
        model: StationModel,
        clock: StationClock,
        *,
        rng: np.random.Generator | None = None,
        temperature_c: float = 25.0,
    ) -> None:
        self.station = station
        self.model = model
        self.clock = clock
        self.rng = rng if rng is not None else np.random.default_rng()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sim-{station.name}")
        self._ramp_generation = 0
        self._lock = threading.Lock()
        self._configure(temperature_c)
        self._wire()

    # -- set-up -------------------------------------------------------------------------------

    def _configure(self, temperature_c: float) -> None:
        s, m = self.station, self.model
        s.detector.exposure_time.set_limits(*m.exposure_range_s)
        s.temperature.setpoint.set_limits(*m.temperature_range_c)
        names = tuple(m.configurations)
        s.configuration.setpoint.set_enum_strs(names)
        s.configuration.readback.set_enum_strs(names)
        for signal in (s.temperature.setpoint, s.temperature.readback):
            signal.put(temperature_c)
        s.temperature.ramp_rate_c_per_min.put(m.temperature_rate_c_per_min)
        self._apply_configuration(m.default_configuration)

    def _wire(self) -> None:
        s = self.station
        s.detector.acquire.subscribe(self._on_acquire, run=False)
        s.shutter.setpoint.subscribe(self._on_shutter, run=False)
        s.configuration.setpoint.subscribe(self._on_configuration, run=False)
        s.temperature.setpoint.subscribe(self._on_temperature, run=False)

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _submit(self, action: Callable[[], None], what: str) -> Future[None]:
        def run() -> None:
            try:
                action()
            except Exception:
                logger.exception("%s: %s failed", self.station.name, what)
                raise

        return self._worker.submit(run)

    # -- reactions to puts --------------------------------------------------------------------

    def _on_acquire(self, *, value: Any, **_: Any) -> None:
        if value:
            self._submit(self._expose, "exposure")

    def _expose(self) -> None:
        det = self.station.detector
        det.detector_state.put(int(DetectorState.ACQUIRE))
        try:
            exposure_s = float(det.exposure_time.get())
            self.clock.spend(exposure_s + self.model.readout_time_s, "expose")
            exposure = self.model.expose(
                str(self.station.configuration.readback.get()),
                parse_composition(str(self.station.sample.composition.get())),
                exposure_s,
                shutter_open=bool(self.station.shutter.is_open),
                rng=self.rng,
                temperature_c=float(self.station.temperature.readback.get()),
            )
        except Exception as exc:
            det.status_message.put(f"exposure failed: {exc}")
            det.detector_state.put(int(DetectorState.ERROR))
            raise
        mon = self.station.monitor
        det.image.put(np.asarray(exposure.frame, dtype=np.int32))
        mon.incident_counts.put(float(exposure.incident_counts))
        mon.transmitted_counts.put(float(exposure.transmitted_counts))
        mon.count_time_s.put(exposure_s)
        det.status_message.put("idle")
        det.acquire.put(0)
        det.array_counter.put(int(det.array_counter.get()) + 1)
        det.detector_state.put(int(DetectorState.IDLE))

    def _on_shutter(self, *, value: Any, **_: Any) -> None:
        def move() -> None:
            self.clock.spend(self.model.shutter_time_s, "shutter")
            self.station.shutter.readback.put(int(value))

        self._submit(move, "shutter")

    def _on_configuration(self, *, value: Any, **_: Any) -> None:
        name = str(value)

        def move() -> None:
            cfg = self.station.configuration
            cfg.moving.put(1)
            try:
                move_s = self.model.move_time_s(str(cfg.readback.get()), name)
                if move_s > 0:
                    self.clock.spend(move_s, "configure")
                self._apply_configuration(name)
            finally:
                cfg.moving.put(0)

        self._submit(move, f"move to {name!r}")

    def _apply_configuration(self, name: str) -> None:
        g = self.model.configurations[name]
        det, cfg = self.station.detector, self.station.configuration
        for attr, value in g.to_dict().items():
            getattr(det, attr).put(value)
        cfg.distance_mm.put(g.distance_mm)
        cfg.wavelength_a.put(g.wavelength_a)
        cfg.readback.put(name)

    def _on_temperature(self, *, value: Any, **_: Any) -> None:
        with self._lock:
            self._ramp_generation += 1
            generation = self._ramp_generation
        target = float(value)

        def ramp() -> None:
            temp = self.station.temperature
            while generation == self._ramp_generation:
                current = float(temp.readback.get())
                remaining = target - current
                if remaining == 0:
                    return
                rate_c_per_s = float(temp.ramp_rate_c_per_min.get()) / 60.0
                last = abs(remaining) <= rate_c_per_s * RAMP_STEP_S
                step_s = abs(remaining) / rate_c_per_s if last else RAMP_STEP_S
                if last:  # the sample equilibrates before the controller reports the setpoint reached
                    step_s += self.model.temperature_settle_s
                self.clock.spend(step_s, "temperature")
                temp.readback.put(
                    target if last else current + math.copysign(rate_c_per_s * step_s, remaining)
                )

        self._submit(ramp, f"ramp to {target:g} °C")


def parse_composition(text: str) -> dict[str, float] | None:
    """The cell contents a sample-composition string describes (None: the empty cell)."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the composition must be JSON mass fractions, got {text!r} ({exc})") from None
    if not isinstance(data, Mapping) or not all(
        isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in data.values()
    ):
        raise ValueError(f"the composition must map component names to mass fractions >= 0, got {text!r}")
    return {str(k): float(v) for k, v in data.items()}


def simulated_station(
    name: str,
    probe: Probe,
    model: StationModel,
    *,
    clock: StationClock | None = None,
    rng: np.random.Generator | None = None,
    max_frames: int = 100,
    readout_timeout_s: float = 30.0,
    move_timeout_s: float = 600.0,
    temperature_c: float = 25.0,
) -> tuple[OphydStationDevices, SimStationDriver]:
    """A station of soft devices and the driver that makes them behave like `model`."""
    station = OphydStationDevices(
        name=name,
        probe=probe,
        detector=AreaDetector(name=f"{name}_detector", readout_timeout_s=readout_timeout_s),
        shutter=Shutter(name=f"{name}_shutter", move_timeout_s=move_timeout_s),
        monitor=TransmissionMonitor(name=f"{name}_monitor"),
        configuration=DetectorConfiguration(name=f"{name}_configuration", move_timeout_s=move_timeout_s),
        temperature=TemperatureController(name=f"{name}_temperature", settle_timeout_s=move_timeout_s),
        sample=SampleInfo(name=f"{name}_sample"),
        max_frames=max_frames,
    )
    driver = SimStationDriver(
        station, model, clock or StationClock(name), rng=rng, temperature_c=temperature_c
    )
    station.backend = driver
    return station, driver


def build_sim_station(config: StationConfig) -> OphydStationDevices:
    """`tandem.campaign.stations.build_station` for `backend: sim`.

    `config.sim` may hold `truth` (module:callable), `seed`, `time_scale` and
    `temperature_c`.
    """
    options = dict(config.sim)
    model = station_model(config.name, truth=options.get("truth"))
    clock = StationClock(config.name, time_scale=float(options.get("time_scale", 0.0)))
    station, _driver = simulated_station(
        config.name,
        config.probe,
        model,
        clock=clock,
        rng=np.random.default_rng(options.get("seed")),
        max_frames=config.max_frames,
        readout_timeout_s=config.readout_timeout_s,
        move_timeout_s=config.move_timeout_s,
        temperature_c=float(options.get("temperature_c", 25.0)),
    )
    return station
