"""PyLabRobot's robots by name: what a station profile names, made with its keyword arguments.

`BACKENDS` lists the PyLabRobot backends tandem can drive, each with the kind of
deck it needs (`tandem.robots.pylabrobot_deck_kinds`). `make_plr_backend` makes one from
a name and options, checking both before anything connects: an unknown name, an
option the backend's constructor does not take, or a package the backend needs
that is missing is a typed error naming what would be valid.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tandem.errors import TandemError
from tandem.robots.pylabrobot_deck_kinds import DeckKind


class UnknownRobotBackendError(TandemError, ValueError):
    """A robot backend name that tandem does not know."""


class RobotBackendConfigError(TandemError, ValueError):
    """A known robot backend that cannot be made: options it does not take, or its package is missing."""


@dataclass(frozen=True)
class BackendEntry:
    """A PyLabRobot backend tandem can drive: where its class lives and the deck it needs."""

    module: str
    class_name: str
    deck_kind: DeckKind
    description: str
    install: str = ""  # what to install when its import or construction fails for a missing package


# what a robot on USB needs besides the robot; PyLabRobot says so itself when `setup` cannot find it
_USB = "install pylabrobot's usb extra: pyusb and libusb-package"

#: robot backends by the name a station profile gives
BACKENDS: Mapping[str, BackendEntry] = {
    "chatterbox": BackendEntry(
        "pylabrobot.liquid_handling.backends.chatterbox",
        "LiquidHandlerChatterboxBackend",
        "generic",
        "PyLabRobot's software-only robot (num_channels=8)",
    ),
    "opentrons_ot2": BackendEntry(
        "pylabrobot.liquid_handling.backends.opentrons_backend",
        "OpentronsOT2Backend",
        "ot2",
        "an Opentrons OT-2 over its HTTP API (host=..., port=31950)",
        install="install tandem[ot2]: opentrons-http-api-client 0.2.1",
    ),
    "opentrons_ot2_chatterbox": BackendEntry(
        "pylabrobot.liquid_handling.backends.opentrons_chatterbox",
        "OpentronsOT2ChatterboxBackend",
        "ot2",
        "the OT-2 backend's own logic with its HTTP calls recorded, not sent "
        "(left_pipette_name=..., right_pipette_name=...)",
    ),
    "hamilton_star": BackendEntry(
        "pylabrobot.liquid_handling.backends.hamilton.STAR_backend",
        "STARBackend",
        "hamilton_star",
        "a Hamilton STAR over USB, labware on Hamilton carriers (device_address=..., serial_number=...); "
        "runs only with the robot connected",
        install=_USB,
    ),
    "hamilton_starlet": BackendEntry(
        "pylabrobot.liquid_handling.backends.hamilton.STAR_backend",
        "STARBackend",
        "hamilton_starlet",
        "a Hamilton STARlet (the STAR backend on the 32-rail deck); runs only with the robot connected",
        install=_USB,
    ),
    "hamilton_star_chatterbox": BackendEntry(
        "pylabrobot.liquid_handling.backends.hamilton.STAR_chatterbox",
        "STARChatterboxBackend",
        "hamilton_star",
        "PyLabRobot's software STAR: the STAR backend's firmware logic on a STAR deck, its commands "
        "logged, not sent (num_channels=8)",
    ),
    "hamilton_vantage": BackendEntry(
        "pylabrobot.liquid_handling.backends.hamilton.vantage_backend",
        "VantageBackend",
        "hamilton_vantage",
        "a Hamilton Vantage 1.3 m over USB (device_address=..., serial_number=...); PyLabRobot has no "
        "software Vantage, so it runs only with the robot connected",
        install=_USB,
    ),
    "tecan_evo": BackendEntry(
        "pylabrobot.liquid_handling.backends.tecan.EVO_backend",
        "EVOBackend",
        "tecan_evo150",
        "a Tecan EVO 150 over USB (diti_count=...), Tecan plates and tips only; PyLabRobot has no "
        "software EVO, so it runs only with the robot connected",
        install=_USB,
    ),
}


def make_plr_backend(name: str, options: Mapping[str, Any] | None = None) -> tuple[Any, DeckKind]:
    """The PyLabRobot backend `name` made with `options`, and the kind of deck it needs.

    Raises `UnknownRobotBackendError` for a name not in `BACKENDS`, and
    `RobotBackendConfigError` for options its constructor does not take or a
    package it needs that is not installed. Connects to nothing: that is `setup`.
    """
    entry = BACKENDS.get(name)
    if entry is None:
        known = ", ".join(f"{n} ({e.description})" for n, e in BACKENDS.items())
        raise UnknownRobotBackendError(f"no robot backend named {name!r}; known: {known}")
    options = dict(options or {})
    try:
        cls = getattr(importlib.import_module(entry.module), entry.class_name)
    except ImportError as exc:  # pragma: no cover - every entry ships with pylabrobot itself
        raise RobotBackendConfigError(f"robot backend {name!r} cannot be loaded: {exc}") from None
    signature = inspect.signature(cls)
    try:
        signature.bind(**options)
    except TypeError as exc:
        accepted = ", ".join(p for p in signature.parameters if p not in ("self", "args", "kwargs"))
        raise RobotBackendConfigError(
            f"robot backend {name!r}: {exc}; it takes {accepted or 'no options'}"
        ) from None
    try:
        return cls(**options), entry.deck_kind
    except Exception as exc:
        hint = f" ({entry.install})" if entry.install else ""
        raise RobotBackendConfigError(f"robot backend {name!r} cannot be made: {exc}{hint}") from None


def deck_kind_for(robot: Any) -> DeckKind:
    """The deck a PyLabRobot backend object needs: that of the first entry whose class it is, else generic.

    A STAR backend object gets the STAR's deck; a STARlet is chosen by name (`hamilton_starlet`).
    """
    for entry in BACKENDS.values():
        try:
            cls = getattr(importlib.import_module(entry.module), entry.class_name)
        except ImportError:  # pragma: no cover - every entry ships with pylabrobot itself
            continue
        if isinstance(robot, cls):
            return entry.deck_kind
    return "generic"


__all__ = [
    "BACKENDS",
    "BackendEntry",
    "RobotBackendConfigError",
    "UnknownRobotBackendError",
    "deck_kind_for",
    "make_plr_backend",
]
