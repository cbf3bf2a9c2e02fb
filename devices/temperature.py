"""The sample-environment temperature controller: a setpoint, a readback that ramps toward it."""

from __future__ import annotations

import math
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignalRO
from ophyd.areadetector.base import EpicsSignalWithRBV
from ophyd.status import Status

from tandem.devices.limits import TemperatureOutOfRangeError
from tandem.devices.signals import SoftSignal, wait_until


class TemperatureController(Device):
    """`set(t_c)` finishes when the readback is within `tolerance_c` of the setpoint.

    The timeout allows the ramp at the controller's rate twice over plus
    `settle_timeout_s`, so a controller that stops answering fails the move
    instead of hanging it.
    """

    setpoint = Cpt(SoftSignal, value=25.0, kind="config")
    readback = Cpt(SoftSignal, value=25.0, kind="hinted")
    ramp_rate_c_per_min = Cpt(SoftSignal, value=10.0, kind="config")
    tolerance_c = Cpt(SoftSignal, value=0.1, kind="config")

    def __init__(self, *args: Any, settle_timeout_s: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settle_timeout_s = settle_timeout_s

    @property
    def range_c(self) -> tuple[float, float]:
        low, high = self.setpoint.limits
        return (float(low), float(high))

    def set(self, value: float) -> Status:
        target = float(value)
        low, high = self.range_c
        if not (math.isfinite(target) and low <= target <= high):
            raise TemperatureOutOfRangeError(
                f"{self.name}: {value!r} °C is outside the controller's range [{low:g}, {high:g}] °C"
            )
        tolerance = float(self.tolerance_c.get())
        rate = float(self.ramp_rate_c_per_min.get())
        ramp_s = abs(target - float(self.readback.get())) / rate * 60.0 if rate > 0 else 0.0
        status = wait_until(
            self.readback,
            lambda reading: abs(float(reading) - target) <= tolerance,
            timeout_s=2 * ramp_s + self.settle_timeout_s,
            what=f"{self.name}: reach {target:g} °C",
        )
        self.setpoint.put(target)
        return status


class EpicsTemperatureController(TemperatureController):
    setpoint = Cpt(EpicsSignalWithRBV, "Setpoint", kind="config")
    readback = Cpt(EpicsSignalRO, "Temperature_RBV", kind="hinted")
    ramp_rate_c_per_min = Cpt(EpicsSignalWithRBV, "RampRate", kind="config")
    tolerance_c = Cpt(EpicsSignalWithRBV, "Tolerance", kind="config")
