"""A caproto IOC that behaves like a station's beamline hardware, frames from the digital twin.

It serves the PVs the EPICS backend of `tandem.devices` talks to (one prefix
per station; sub-prefixes as in `tandem.devices.station.PV_SUFFIXES`) and
behaves like the hardware it stands for:

* ``det:`` — an areaDetector-like camera. A put of 1 to ``Acquire`` exposes for
  ``AcquireTime`` (times the time scale), then publishes the frame on
  ``image1:ArrayData`` (a flat int32 waveform of ``ArraySizeY_RBV`` ×
  ``ArraySizeX_RBV``), counts ``ArrayCounter_RBV`` up and returns
  ``DetectorState_RBV`` to idle; a failed exposure leaves it in the error state
  with the reason in ``StatusMessage_RBV``. The geometry PVs follow the
  detector configuration.
* ``shutter:`` — ``Cmd`` (1 open, 0 close); ``Status_RBV`` follows after the
  shutter's travel time. A closed shutter means no beam: frames and monitors
  count nothing.
* ``mon:`` — incident (``I0_RBV``) and beam-stop diode (``IT_RBV``) counts of the
  last exposure, gated by the detector.
* ``cfg:`` — named detector configurations (``Config``, an enum); moving takes
  the station's move time, ``Moving_RBV`` is 1 meanwhile.
* ``temp:`` — ``Setpoint`` (control limits are the controller's range);
  ``Temperature_RBV`` ramps toward it at ``RampRate`` °C/min.
* ``sample:`` — ``Composition``: JSON of the mass fractions of what is in the
  cell (empty string: the empty cell), written by whoever loads the cell. The
  twin needs it to know what it is looking at; real hardware only records it.
* ``sim:TimeScale`` — real seconds per hardware second (0 = no waiting).

Run one by hand::

    python -m tandem.sim.ioc tandem.sim.beamline_ioc:BeamlineIOC --prefix TANDEM:SAXS: \\
        --options '{"station": "saxs", "time_scale": 0.1}'
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import numpy as np
from caproto import ChannelType
from caproto.server import PVGroup, PvpropertyChar, SubGroup, pvproperty

from tandem.sim.station_devices import parse_composition
from tandem.sim.station_model import StationModel, station_model

logger = logging.getLogger(__name__)

#: Temperature ramps are simulated in steps of this many hardware seconds at most.
_RAMP_STEP_S = 5.0
_IDLE, _ACQUIRE, _ERROR = 0, 1, 2


class _Detector(PVGroup):
    acquire_time = pvproperty(name="AcquireTime", value=1.0, units="s", precision=3)
    acquire_time_rbv = pvproperty(name="AcquireTime_RBV", value=1.0, units="s", read_only=True)
    acquire = pvproperty(name="Acquire", value=0, doc="1: take one exposure")
    state = pvproperty(
        name="DetectorState_RBV", value=_IDLE, read_only=True, doc="0 idle, 1 acquire, 2 error"
    )
    message = pvproperty(
        name="StatusMessage_RBV", value="idle", dtype=ChannelType.CHAR, read_only=True, max_length=400
    )
    counter = pvproperty(name="ArrayCounter_RBV", value=0, read_only=True)
    # sized for the station's frame in BeamlineIOC._configure_pvs
    image = pvproperty(name="image1:ArrayData", value=[0, 0], dtype=ChannelType.LONG, read_only=True)
    size_x = pvproperty(name="ArraySizeX_RBV", value=1, read_only=True)
    size_y = pvproperty(name="ArraySizeY_RBV", value=1, read_only=True)
    pixel_size = pvproperty(name="PixelSize_RBV", value=1.0, units="mm", read_only=True, precision=4)
    beam_x = pvproperty(name="BeamX_RBV", value=0.0, units="px", read_only=True, precision=2)
    beam_y = pvproperty(name="BeamY_RBV", value=0.0, units="px", read_only=True, precision=2)
    distance = pvproperty(name="DetDist_RBV", value=1000.0, units="mm", read_only=True, precision=1)
    wavelength = pvproperty(name="Wavelength_RBV", value=1.0, units="A", read_only=True, precision=4)
    wavelength_spread = pvproperty(name="WavelengthSpread_RBV", value=1e-4, read_only=True, precision=5)
    beamstop = pvproperty(name="BeamStopRadius_RBV", value=0.0, units="mm", read_only=True, precision=2)

    @acquire_time.putter  # type: ignore[no-redef]
    async def acquire_time(self, instance: Any, value: float) -> float:
        await self.acquire_time_rbv.write(value)
        return value

    @acquire.putter  # type: ignore[no-redef]
    async def acquire(self, instance: Any, value: int) -> int:
        if value and self.state.value != _ACQUIRE:
            ioc: BeamlineIOC = self.parent
            ioc.start_exposure()
        return 0


class _Shutter(PVGroup):
    cmd = pvproperty(name="Cmd", value=0, doc="1 open, 0 close")
    status = pvproperty(name="Status_RBV", value=0, read_only=True, doc="1 open, 0 closed")

    @cmd.putter  # type: ignore[no-redef]
    async def cmd(self, instance: Any, value: int) -> int:
        ioc: BeamlineIOC = self.parent
        ioc.spawn(ioc.move_shutter(int(bool(value))))
        return int(bool(value))


class _Monitor(PVGroup):
    # doubles: a SAXS monitor counts past 2**31 (a CA long) in one exposure
    incident = pvproperty(name="I0_RBV", value=0.0, read_only=True, doc="incident monitor counts")
    transmitted = pvproperty(name="IT_RBV", value=0.0, read_only=True, doc="beam-stop diode counts")
    count_time = pvproperty(name="CountTime_RBV", value=0.0, units="s", read_only=True)


class _Configuration(PVGroup):
    config = pvproperty(name="Config", value="?", dtype=ChannelType.ENUM, enum_strings=("?",))
    config_rbv = pvproperty(
        name="Config_RBV", value="?", dtype=ChannelType.ENUM, enum_strings=("?",), read_only=True
    )
    moving = pvproperty(name="Moving_RBV", value=0, read_only=True)
    distance = pvproperty(name="Distance_RBV", value=0.0, units="mm", read_only=True)
    wavelength = pvproperty(name="Wavelength_RBV", value=0.0, units="A", read_only=True)

    @config.putter  # type: ignore[no-redef]
    async def config(self, instance: Any, value: str) -> str:
        ioc: BeamlineIOC = self.parent
        if self.moving.value:
            raise ValueError(f"the detector is moving to {self.config.value!r}; wait for it")
        ioc.spawn(ioc.move_configuration(value))
        return value


class _Temperature(PVGroup):
    setpoint = pvproperty(name="Setpoint", value=25.0, units="degC", precision=2)
    setpoint_rbv = pvproperty(name="Setpoint_RBV", value=25.0, units="degC", read_only=True, precision=2)
    readback = pvproperty(name="Temperature_RBV", value=25.0, units="degC", read_only=True, precision=2)
    ramp_rate = pvproperty(name="RampRate", value=10.0, units="degC/min")
    ramp_rate_rbv = pvproperty(name="RampRate_RBV", value=10.0, units="degC/min", read_only=True)
    tolerance = pvproperty(name="Tolerance", value=0.1, units="degC")
    tolerance_rbv = pvproperty(name="Tolerance_RBV", value=0.1, units="degC", read_only=True)

    @setpoint.putter  # type: ignore[no-redef]
    async def setpoint(self, instance: Any, value: float) -> float:
        ioc: BeamlineIOC = self.parent
        await self.setpoint_rbv.write(value)
        ioc.start_ramp(float(value))
        return value

    @ramp_rate.putter  # type: ignore[no-redef]
    async def ramp_rate(self, instance: Any, value: float) -> float:
        if not value > 0:
            raise ValueError(f"a ramp rate must be positive, got {value!r} °C/min")
        await self.ramp_rate_rbv.write(value)
        return value

    @tolerance.putter  # type: ignore[no-redef]
    async def tolerance(self, instance: Any, value: float) -> float:
        await self.tolerance_rbv.write(value)
        return value


class _ClearableChar(PvpropertyChar):
    """A char waveform that takes an empty string, as an EPICS waveform record does.

    A client clears such a PV by writing NULs (pyepics sends the whole array zeroed); caproto 1.3
    decodes them to "" and then fails converting "" to bytes, refusing the put, so the sample
    record kept the last sample's uid and composition through the empty cell that followed it.
    """

    async def write_from_dbr(self, data: Any, data_type: ChannelType, metadata: Any, **kwargs: Any) -> Any:
        raw = data[0] if isinstance(data, list) else data
        if data_type == ChannelType.CHAR and not bytes(memoryview(raw)).strip(b"\0"):
            return await self.write("", **kwargs)
        return await super().write_from_dbr(data, data_type, metadata, **kwargs)


class _Sample(PVGroup):
    # char waveforms, not DBR_STRING: a JSON composition is longer than 40 characters
    uid = pvproperty(name="Uid", value="", dtype=_ClearableChar, max_length=100)
    composition = pvproperty(
        name="Composition",
        value="",
        dtype=_ClearableChar,
        max_length=8000,
        doc="JSON mass fractions of the cell's contents; empty: the empty cell",
    )

    @composition.putter  # type: ignore[no-redef]
    async def composition(self, instance: Any, value: str) -> str:
        parse_composition(value)  # refuse what the twin could not use, at the put
        return value


class BeamlineIOC(PVGroup):
    """The beamline hardware of one station (see the module docstring for its PVs)."""

    det = SubGroup(_Detector, prefix="det:")
    shutter = SubGroup(_Shutter, prefix="shutter:")
    mon = SubGroup(_Monitor, prefix="mon:")
    cfg = SubGroup(_Configuration, prefix="cfg:")
    temp = SubGroup(_Temperature, prefix="temp:")
    sample = SubGroup(_Sample, prefix="sample:")
    time_scale = pvproperty(name="sim:TimeScale", value=1.0, doc="real s per hardware s; 0 = no waiting")

    def __init__(
        self,
        *args: Any,
        station: str = "saxs",
        truth: str | None = None,
        seed: int | None = None,
        time_scale: float = 1.0,
        temperature_c: float = 25.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not (math.isfinite(time_scale) and time_scale >= 0):
            raise ValueError(f"time_scale must be >= 0 (0 = no waiting), got {time_scale!r}")
        self.model: StationModel = station_model(station, truth=truth)
        self._rng = np.random.default_rng(seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ramp: asyncio.Task[None] | None = None
        self._initial_time_scale = time_scale
        self._initial_temperature_c = temperature_c
        self._configure_pvs()

    # -- static set-up: what the station is --------------------------------------------------

    def _configure_pvs(self) -> None:
        """Give PVs the station's shape before any client connects: frame size, configuration names.

        caproto fixes enum states and a waveform's element count at class
        definition; a station's are known only now, and clients read both once,
        when they connect, so they are set on the instances here.
        """
        names = tuple(self.model.configurations)
        for pv in (self.cfg.config, self.cfg.config_rbv):
            pv._data["enum_strings"] = names
            pv._data["value"] = self.model.default_configuration
        n_pixels = max(g.n_pixels_x * g.n_pixels_y for g in self.model.configurations.values())
        self.det.image._max_length = n_pixels
        self.det.image._data["value"] = np.zeros(n_pixels, dtype=np.int32)

    @time_scale.startup  # type: ignore[no-redef]
    async def time_scale(self, instance: Any, async_lib: Any) -> None:
        await self.time_scale.write(self._initial_time_scale)
        low, high = self.model.exposure_range_s
        for pv in (self.det.acquire_time, self.det.acquire_time_rbv):
            await pv.write_metadata(lower_ctrl_limit=low, upper_ctrl_limit=high)
        low, high = self.model.temperature_range_c
        for pv in (self.temp.setpoint, self.temp.setpoint_rbv):
            await pv.write_metadata(lower_ctrl_limit=low, upper_ctrl_limit=high)
        t = self._initial_temperature_c
        for pv in (self.temp.setpoint, self.temp.setpoint_rbv, self.temp.readback):
            await pv.write(t)
        for pv in (self.temp.ramp_rate, self.temp.ramp_rate_rbv):
            await pv.write(self.model.temperature_rate_c_per_min)
        await self._apply_configuration(self.model.default_configuration)

    @time_scale.putter  # type: ignore[no-redef]
    async def time_scale(self, instance: Any, value: float) -> float:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"time scale must be >= 0, got {value!r}")
        return value

    # -- behaviour ----------------------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hardware_sleep(self, hardware_s: float) -> None:
        await asyncio.sleep(max(0.0, hardware_s) * float(self.time_scale.value))

    def start_exposure(self) -> None:
        self.spawn(self._expose())

    async def _expose(self) -> None:
        det = self.det
        exposure_s = float(det.acquire_time.value)
        await det.state.write(_ACQUIRE)
        await det.message.write(f"acquiring {exposure_s:g} s")
        try:
            await self._hardware_sleep(exposure_s + self.model.readout_time_s)
            composition = parse_composition(self.sample.composition.value)
            shutter_open = bool(self.shutter.status.value)
            configuration = str(self.cfg.config_rbv.value)
            temperature_c = float(self.temp.readback.value)
            exposure = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: self.model.expose(
                    configuration,
                    composition,
                    exposure_s,
                    shutter_open=shutter_open,
                    rng=self._rng,
                    temperature_c=temperature_c,
                ),
            )
        except Exception as exc:
            logger.exception("exposure failed")
            await det.message.write(f"exposure failed: {exc}"[:399])
            await det.state.write(_ERROR)
            return
        flat = np.ascontiguousarray(exposure.frame, dtype=np.int32).ravel()
        flat.flags.writeable = False  # caproto then publishes it without a copy
        await det.image.write(flat)
        await self.mon.incident.write(float(exposure.incident_counts))
        await self.mon.transmitted.write(float(exposure.transmitted_counts))
        await self.mon.count_time.write(exposure_s)
        await det.counter.write(int(det.counter.value) + 1)
        await det.message.write("idle")
        await det.state.write(_IDLE)

    async def move_shutter(self, position: int) -> None:
        await self._hardware_sleep(self.model.shutter_time_s)
        await self.shutter.status.write(position)

    async def move_configuration(self, name: str) -> None:
        current = str(self.cfg.config_rbv.value)
        await self.cfg.moving.write(1)
        try:
            await self._hardware_sleep(self.model.move_time_s(current, name))
            await self._apply_configuration(name)
        finally:
            await self.cfg.moving.write(0)

    async def _apply_configuration(self, name: str) -> None:
        g = self.model.configurations[name]
        det = self.det
        await det.size_x.write(g.n_pixels_x)
        await det.size_y.write(g.n_pixels_y)
        await det.pixel_size.write(g.pixel_size_mm)
        await det.beam_x.write(g.beam_center_x_px)
        await det.beam_y.write(g.beam_center_y_px)
        await det.distance.write(g.distance_mm)
        await det.wavelength.write(g.wavelength_a)
        await det.wavelength_spread.write(g.wavelength_spread)
        await det.beamstop.write(g.beamstop_radius_mm)
        await self.cfg.distance.write(g.distance_mm)
        await self.cfg.wavelength.write(g.wavelength_a)
        await self.cfg.config_rbv.write(name)

    def start_ramp(self, target_c: float) -> None:
        if self._ramp is not None:
            self._ramp.cancel()
        self._ramp = asyncio.get_running_loop().create_task(self._ramp_to(target_c))

    async def _ramp_to(self, target_c: float) -> None:
        temp = self.temp
        while True:
            current = float(temp.readback.value)
            rate_c_per_s = float(temp.ramp_rate.value) / 60.0
            remaining = target_c - current
            if remaining == 0:
                return
            last = abs(remaining) <= rate_c_per_s * _RAMP_STEP_S
            step_s = abs(remaining) / rate_c_per_s if last else _RAMP_STEP_S
            if last:  # the sample equilibrates before the controller reports the setpoint reached
                step_s += self.model.temperature_settle_s
            await self._hardware_sleep(step_s)
            await temp.readback.write(
                target_c if last else current + math.copysign(rate_c_per_s * step_s, remaining)
            )
