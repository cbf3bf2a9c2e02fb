"""The one check the plans make of the devices they are given: does it keep the seam's Protocol?

The queue server hands a plan whatever object a device name resolves to, and a
person at the IPython prompt may pass anything; a plan refuses a device that
lacks what it will call with a `WrongDeviceError` naming the parameter, the
Protocol (`tandem.protocols`) and the members missing, before anything moves.
It checks the Protocol, not a concrete class: the EPICS devices, the twin's and
any other that keeps the Protocol pass.
"""

from __future__ import annotations

from typing import Any, Protocol

from tandem.errors import TandemError
from tandem.protocols import CellLoaderDevice, LiquidHandlerDevice, StationDevices
from tandem.robots.deck import Deck


class WrongDeviceError(TandemError, TypeError):
    """A plan was given a device of the wrong kind (the queue server passes devices by name)."""


def protocol_members(protocol: type) -> tuple[str, ...]:
    """The public members a runtime check of `protocol` looks for, sorted."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if base in (object, Protocol) or not getattr(base, "_is_protocol", False):
            continue
        names.update(vars(base))
        names.update(getattr(base, "__annotations__", {}))
    return tuple(sorted(n for n in names if not n.startswith("_")))


def require(device: object, protocol: type, parameter: str) -> Any:
    """`device` if it keeps `protocol` (a runtime-checkable Protocol), else a `WrongDeviceError`."""
    if isinstance(device, protocol):
        return device
    missing = [name for name in protocol_members(protocol) if not hasattr(device, name)]
    lacks = f"it has no {', '.join(missing)}" if missing else "it does not keep it"
    raise WrongDeviceError(
        f"{parameter} must be a {protocol.__name__} (tandem.protocols), "
        f"got {type(device).__name__} {device!r:.80}: {lacks}"
    )


def liquid_handler(device: object) -> LiquidHandlerDevice[Deck]:
    result: LiquidHandlerDevice[Deck] = require(device, LiquidHandlerDevice, "liquid_handler")
    return result


def cell_loader(device: object) -> CellLoaderDevice:
    result: CellLoaderDevice = require(device, CellLoaderDevice, "cell_loader")
    return result


def station(device: object) -> StationDevices:
    result: StationDevices = require(device, StationDevices, "station")
    return result


__all__ = ["WrongDeviceError", "cell_loader", "liquid_handler", "protocol_members", "require", "station"]
