"""The beam shutter: a command and a readback that follows it after a while."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd.status import Status

from tandem.devices.signals import SoftSignal, wait_until
from tandem.errors import TandemError


class ShutterPosition(IntEnum):
    CLOSED = 0
    OPEN = 1


class InvalidShutterPositionError(TandemError, ValueError):
    """A shutter position other than open or closed."""


class Shutter(Device):
    """`set("open")` / `set("close")` finish when the readback says so.

    `move_timeout_s` bounds how long the readback may lag before the shutter is
    considered stuck or gone.
    """

    setpoint = Cpt(SoftSignal, value=int(ShutterPosition.CLOSED), kind="omitted")
    readback = Cpt(SoftSignal, value=int(ShutterPosition.CLOSED), kind="normal")

    _WORDS: ClassVar[dict[str, ShutterPosition]] = {
        "open": ShutterPosition.OPEN,
        "close": ShutterPosition.CLOSED,
        "closed": ShutterPosition.CLOSED,
    }

    def __init__(self, *args: Any, move_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.move_timeout_s = move_timeout_s

    @classmethod
    def position(cls, value: str | int) -> ShutterPosition:
        if isinstance(value, str):
            try:
                return cls._WORDS[value.lower()]
            except KeyError:
                pass
        elif value in (0, 1):
            return ShutterPosition(int(value))
        raise InvalidShutterPositionError(f"a shutter is set to 'open' or 'close' (1 or 0), got {value!r}")

    @property
    def is_open(self) -> bool:
        return int(self.readback.get()) == ShutterPosition.OPEN

    def set(self, value: str | int) -> Status:
        target = self.position(value)
        status = wait_until(
            self.readback,
            lambda reading: int(reading) == target,
            timeout_s=self.move_timeout_s,
            what=f"{self.name}: {target.name.lower()}",
        )
        self.setpoint.put(int(target))
        return status


class EpicsShutter(Shutter):
    setpoint = Cpt(EpicsSignal, "Cmd", kind="omitted")
    readback = Cpt(EpicsSignalRO, "Status_RBV", kind="normal")
