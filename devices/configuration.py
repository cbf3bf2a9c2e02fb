"""The detector configuration: named set-ups that fix the q-range (distance, wavelength).

Changing configuration moves the detector carriage (and, at SANS, the velocity
selector and collimation); it takes time, and `set` finishes when the readback
names the new configuration.
"""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd.status import Status

from tandem.devices.limits import UnknownConfigurationError
from tandem.devices.signals import SoftSignal, wait_until


class DetectorConfiguration(Device):
    setpoint = Cpt(SoftSignal, value="", kind="omitted")
    readback = Cpt(SoftSignal, value="", kind="hinted")
    moving = Cpt(SoftSignal, value=0, kind="omitted")
    distance_mm = Cpt(SoftSignal, value=1000.0, kind="normal")
    wavelength_a = Cpt(SoftSignal, value=1.0, kind="normal")

    def __init__(self, *args: Any, move_timeout_s: float = 600.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.move_timeout_s = move_timeout_s

    @property
    def names(self) -> tuple[str, ...]:
        """The configurations this station knows (the setpoint's enum states)."""
        return tuple(self.setpoint.enum_strs or ())

    def set(self, value: str) -> Status:
        names = self.names
        if value not in names:
            raise UnknownConfigurationError(
                f"{self.name}: no detector configuration {value!r}; known configurations: "
                f"{', '.join(names) or '(none)'}"
            )
        status = wait_until(
            self.readback,
            lambda reading: reading == value,
            timeout_s=self.move_timeout_s,
            what=f"{self.name}: move to configuration {value!r}",
        )
        self.setpoint.put(value)
        return status


class EpicsDetectorConfiguration(DetectorConfiguration):
    setpoint = Cpt(EpicsSignal, "Config", string=True, kind="omitted")
    readback = Cpt(EpicsSignalRO, "Config_RBV", string=True, kind="hinted")
    moving = Cpt(EpicsSignalRO, "Moving_RBV", kind="omitted")
    distance_mm = Cpt(EpicsSignalRO, "Distance_RBV", kind="normal")
    wavelength_a = Cpt(EpicsSignalRO, "Wavelength_RBV", kind="normal")
