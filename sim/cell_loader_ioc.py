"""A caproto IOC that behaves like the cell loader's pump, valves and liquid sensor.

The hardware it imitates: a syringe pump draws from the port a selector valve
chooses (sample, rinse, air, waste). From `sample` or `rinse` liquid travels
down a transfer line of `Line:Volume-RB` µL before it reaches the measurement
cell, where a liquid sensor trips. From `waste` or `air` the pump empties the
cell. A nitrogen line (`Gas:Go`, valve on `air`) blows the cell dry. A transfer
takes volume / flow rate of hardware time; `Sim:TimeScale` real seconds pass per
hardware second (0: no waiting), so tests run fast and a demo runs at any pace.

Commands complete like a motor record: a put to `Pump:Go` or `Gas:Go` with
put-completion returns when the move is over, and `Busy-RB` is 1 meanwhile.
Faults to inject: `Sim:SampleLineDry` / `Sim:RinseLineDry` (the pump runs, no
liquid ever arrives, the sensor never trips).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

VALVE_POSITIONS = ("sample", "rinse", "air", "waste")
#: A move is simulated in this many steps at most, so readbacks and the sensor update during it.
_STEPS_PER_MOVE = 40


class HardwareFault(Exception):  # noqa: N818 - what the "hardware" reports; CA turns it into a put error
    pass


class CellLoaderIOC(PVGroup):
    """Pump, selector valve, gas line and liquid sensor of a sample cell loader."""

    # Command handlers come first: pvproperty(put=...) needs them defined (the decorator form
    # re-binds names, which type checkers reject).
    async def _put_time_scale(self, instance: Any, value: float) -> float:
        if not (math.isfinite(value) and value >= 0):
            raise HardwareFault(f"time scale must be >= 0, got {value!r}")
        return value

    async def _startup(self, instance: Any, async_lib: Any) -> None:
        await instance.write(self._initial["time_scale"])
        await self.line_volume.write(self._initial["line"])
        await self.cell_capacity.write(self._initial["capacity"])

    async def _put_pump_stop(self, instance: Any, value: int) -> int:
        if value:
            self._stop_requested.set()
        return 0

    async def _put_pump_go(self, instance: Any, value: int) -> int:
        if not value:
            return 0
        if self.busy.value:
            raise HardwareFault("busy: a move is already running")
        volume_ul = float(self.pump_volume_sp.value)
        flow = float(self.pump_flow_sp.value)
        if not (math.isfinite(volume_ul) and volume_ul > 0 and math.isfinite(flow) and flow > 0):
            raise HardwareFault(f"bad move: volume {volume_ul} uL at {flow} uL/s")
        await self._move(str(self.valve.value), volume_ul, flow)
        return 0

    async def _put_gas_go(self, instance: Any, value: int) -> int:
        if not value:
            return 0
        if self.busy.value:
            raise HardwareFault("busy: a move is already running")
        if self.valve.value != "air":
            raise HardwareFault(f"gas needs the valve on 'air', it is on {self.valve.value!r}")
        duration_s = float(self.gas_duration_sp.value)
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise HardwareFault(f"bad gas duration {duration_s} s")
        await self._begin("drying")
        try:
            # Gas blows whatever is left in the cell out within the first tenth of the time.
            start_volume = float(self.cell_volume.value)
            for i in range(1, _STEPS_PER_MOVE + 1):
                if self._stop_requested.is_set():
                    break
                await self._sleep(duration_s / _STEPS_PER_MOVE)
                left = max(0.0, start_volume * (1 - 10 * i / _STEPS_PER_MOVE))
                await self._set_cell(left)
        finally:
            await self._end()
        return 0

    valve = pvproperty(
        name="Valve:Sel",
        value="waste",
        dtype=ChannelType.ENUM,
        enum_strings=VALVE_POSITIONS,
        doc="selector valve port the pump draws from",
    )
    pump_volume_sp = pvproperty(name="Pump:Volume-SP", value=0.0, units="uL", doc="volume of the next move")
    pump_flow_sp = pvproperty(name="Pump:FlowRate-SP", value=20.0, units="uL/s")
    pump_go = pvproperty(
        put=_put_pump_go, name="Pump:Go", value=0, doc="1: start a move; put-completion when it ends"
    )
    pump_stop = pvproperty(put=_put_pump_stop, name="Pump:Stop", value=0, doc="1: stop the running move")
    pump_volume_rb = pvproperty(
        name="Pump:Volume-RB", value=0.0, units="uL", read_only=True, doc="volume moved so far"
    )
    gas_duration_sp = pvproperty(name="Gas:Duration-SP", value=0.0, units="s")
    gas_go = pvproperty(
        put=_put_gas_go, name="Gas:Go", value=0, doc="1: blow gas for Gas:Duration-SP; valve must be on air"
    )
    sensor = pvproperty(name="Sensor:Liquid-RB", value=0, read_only=True, doc="1: liquid in the cell")
    busy = pvproperty(name="Busy-RB", value=0, read_only=True)
    cell_volume = pvproperty(name="Cell:Volume-RB", value=0.0, units="uL", read_only=True)
    cell_capacity = pvproperty(name="Cell:Capacity-RB", value=300.0, units="uL", read_only=True)
    line_volume = pvproperty(name="Line:Volume-RB", value=60.0, units="uL", read_only=True)
    state = pvproperty(name="State-RB", value="idle", read_only=True, max_length=200, report_as_string=True)
    time_scale = pvproperty(
        put=_put_time_scale,
        startup=_startup,
        name="Sim:TimeScale",
        value=1.0,
        doc="real s per hardware s; 0 = no waiting",
    )
    sample_line_dry = pvproperty(name="Sim:SampleLineDry", value=0, doc="fault: the sample line is empty")
    rinse_line_dry = pvproperty(name="Sim:RinseLineDry", value=0, doc="fault: the rinse reservoir is empty")

    def __init__(
        self,
        *args: Any,
        time_scale: float = 1.0,
        line_volume_ul: float = 60.0,
        cell_capacity_ul: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for label, value in (("line_volume_ul", line_volume_ul), ("cell_capacity_ul", cell_capacity_ul)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{label} must be a positive number of µL, got {value!r}")
        if not (math.isfinite(time_scale) and time_scale >= 0):
            raise ValueError(f"time_scale must be >= 0 (0 = no waiting), got {time_scale!r}")
        self._initial = {"time_scale": time_scale, "line": line_volume_ul, "capacity": cell_capacity_ul}
        self._stop_requested = asyncio.Event()

    async def _move(self, port: str, volume_ul: float, flow_ul_per_s: float) -> None:
        await self.pump_volume_rb.write(0.0)
        await self._begin(f"pumping {volume_ul:g} uL from {port}")
        step_ul = volume_ul / _STEPS_PER_MOVE
        try:
            for i in range(1, _STEPS_PER_MOVE + 1):
                if self._stop_requested.is_set():
                    break
                await self._sleep(step_ul / flow_ul_per_s)
                await self.pump_volume_rb.write(i * step_ul)
                await self._advance(port, moved_before_ul=(i - 1) * step_ul, step_ul=step_ul)
        finally:
            await self._end()

    async def _advance(self, port: str, moved_before_ul: float, step_ul: float) -> None:
        cell = float(self.cell_volume.value)
        if port in ("waste", "air"):
            await self._set_cell(max(0.0, cell - step_ul))
            return
        dry = self.sample_line_dry.value if port == "sample" else self.rinse_line_dry.value
        if dry:
            return  # the pump draws air: nothing ever arrives
        # Each move starts with an empty line (the previous slug was chased into the cell by
        # air): the first Line:Volume-RB µL fill the line, the rest arrives in the cell, and
        # what exceeds the cell's capacity overflows to waste.
        line = float(self.line_volume.value)
        arrived = max(0.0, moved_before_ul + step_ul - max(line, moved_before_ul))
        await self._set_cell(min(float(self.cell_capacity.value), cell + arrived))

    async def _set_cell(self, volume_ul: float) -> None:
        await self.cell_volume.write(volume_ul)
        wet = 1 if volume_ul > 0 else 0
        if self.sensor.value != wet:
            await self.sensor.write(wet)

    async def _begin(self, what: str) -> None:
        self._stop_requested.clear()
        await self.busy.write(1)
        await self.state.write(what)

    async def _end(self) -> None:
        await self.state.write("stopped" if self._stop_requested.is_set() else "idle")
        self._stop_requested.clear()
        await self.busy.write(0)

    async def _sleep(self, hardware_s: float) -> None:
        """Let `hardware_s` of hardware time pass; a stop request cuts it short."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), hardware_s * float(self.time_scale.value))
