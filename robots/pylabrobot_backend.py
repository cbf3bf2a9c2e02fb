"""tandem's robot seam over PyLabRobot: a `LiquidHandlerBackend` that drives a PyLabRobot `LiquidHandler`.

PyLabRobot (0.2.2) is the field's hardware-agnostic front end: one `LiquidHandler`
over swappable backends (its software-only chatterbox, the Opentrons OT-2, the
Hamilton STAR and Vantage, the Tecan EVO), with volume and tip trackers that
commit or roll back per operation. tandem keeps what PyLabRobot lacks (the recipe
solver, the whole-recipe check before the first command, the transactional
inventory of `tandem.robots.liquid_handler.LiquidHandler`) and hands each of its
four commands to PyLabRobot here.

* The robot is chosen by name and keyword arguments (`BACKENDS`, in
  `tandem.robots.pylabrobot_registry`), so a station profile can name it; an
  unknown name, options the backend does not take, or a backend whose package is
  missing is a typed error before anything starts.
* The deck is built from tandem's `Deck` (`tandem.robots.pylabrobot_deck`), with
  PyLabRobot's trackers on and filled from it: PyLabRobot itself refuses to
  aspirate more than a container holds or to pick up a tip that is not there.
* PyLabRobot is asyncio and ophyd calls backends from a worker thread: the object
  owns one event loop in one thread, sets the robot up when it is made and stops
  it on `close()` (or leaving a `with` block); each command waits for its result.
* Any error of PyLabRobot or its backend becomes `BackendError` with the robot's
  message; PyLabRobot's trackers are rolled back to their last committed state,
  as tandem's inventory is, so both keep what really happened.
* PyLabRobot measures no volume: a command reports the commanded volume, or, with
  a `PipettingErrorModel`, the volume the model says moved (then that is what
  PyLabRobot is told to move, so its trackers follow the simulated liquid).
  Durations are the measured wall time, or a `PipettingTimes` model's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pylabrobot.liquid_handling import LiquidHandler as PlrLiquidHandler
from pylabrobot.liquid_handling.backends import LiquidHandlerBackend as PlrBackend
from pylabrobot.resources import (
    does_tip_tracking,
    does_volume_tracking,
    set_tip_tracking,
    set_volume_tracking,
)

from tandem.errors import TandemError
from tandem.protocols import StepReport
from tandem.robots.deck import Deck, Pipette
from tandem.robots.liquid_handler import BackendError
from tandem.robots.pipetting_model import PipettingErrorModel, PipettingTimes
from tandem.robots.pylabrobot_deck import PlrDeck, build_plr_deck
from tandem.robots.pylabrobot_deck_kinds import DeckTranslationError
from tandem.robots.pylabrobot_ot2 import OtApiSession
from tandem.robots.pylabrobot_quiet import LOOP_THREAD_PREFIX, quiet
from tandem.robots.pylabrobot_registry import (
    BACKENDS,
    RobotBackendConfigError,
    deck_kind_for,
    make_plr_backend,
)

#: relative slack when a dispense asks for what the tip holds, so rounding is not a refusal
_VOLUME_RTOL = 1e-9


@dataclass
class _Loop:
    """One asyncio event loop running in its own thread."""

    name: str
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name=self.name, daemon=True)
        self.thread.start()

    def run(self, make: Callable[[], Awaitable[Any]], timeout_s: float | None) -> Any:
        async def call() -> Any:
            return await make()

        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from the robot within {timeout_s:g} s") from None

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


_serial = itertools.count(1)


class _TrackerSwitch:
    """PyLabRobot's volume and tip tracking: on while any backend is open, as it was once all close.

    PyLabRobot switches its trackers process-wide (module globals), so a backend
    cannot turn them on for its own deck alone; counting the open backends keeps
    them from leaking into other PyLabRobot users after tandem is done.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._before = (False, False)

    def acquire(self) -> None:
        with self._lock:
            if self._users == 0:
                self._before = (bool(does_volume_tracking()), bool(does_tip_tracking()))
                set_volume_tracking(True)
                set_tip_tracking(True)
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                set_volume_tracking(self._before[0])
                set_tip_tracking(self._before[1])


_TRACKERS = _TrackerSwitch()


class PyLabRobotBackend:
    """A `LiquidHandlerBackend` that drives a PyLabRobot `LiquidHandler` on a deck built from tandem's.

    `backend` is a name in `BACKENDS` (made with `backend_options`) or a PyLabRobot
    backend object; `labware` names PyLabRobot definitions for slots (see
    `tandem.robots.pylabrobot_deck`); `channels` maps each pipette to a robot
    channel (default: the deck's pipettes in order, 0, 1, ...; on an OT-2 0 is
    the left mount). The robot is set up here and stopped by `close()`.
    """

    def __init__(
        self,
        deck: Deck,
        backend: str | PlrBackend = "chatterbox",
        *,
        backend_options: Mapping[str, Any] | None = None,
        labware: Mapping[str, str] | None = None,
        channels: Mapping[str, int] | None = None,
        errors: PipettingErrorModel | None = None,
        times: PipettingTimes | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if isinstance(backend, str):
            robot, kind = make_plr_backend(backend, backend_options)
        elif isinstance(backend, PlrBackend):
            if backend_options:
                raise RobotBackendConfigError("backend_options go with a backend name, not a backend object")
            robot, kind = backend, deck_kind_for(backend)
        else:
            raise RobotBackendConfigError(
                f"backend is a name ({', '.join(BACKENDS)}) or a PyLabRobot backend, "
                f"got {type(backend).__name__}"
            )
        # before the deck is built: PyLabRobot's decks log warnings (labware standing high) as it is
        quiet(type(robot))
        self.pipettes: dict[str, Pipette] = {p.name: p for p in deck.pipettes}
        self.channels = _channels(deck, channels)
        self.plr_deck: PlrDeck = build_plr_deck(deck, kind=kind, labware=labware)
        self.errors = errors
        self.times = times
        self.timeout_s = timeout_s
        self.robot = robot
        self.lh = PlrLiquidHandler(backend=robot, deck=self.plr_deck.deck)
        self._loop = _Loop(f"{LOOP_THREAD_PREFIX}-{next(_serial)}")
        self._ot_api = OtApiSession(robot)
        self._closed = False
        _TRACKERS.acquire()  # released by close(), or below if the robot does not come up
        try:
            self._run(self.lh.setup)
            n = int(robot.num_channels)
            beyond = {p: c for p, c in self.channels.items() if c >= n}
            if beyond:
                raise DeckTranslationError(
                    f"the robot has {n} channel(s); pipettes on channels it lacks: {beyond}"
                )
        except BaseException as exc:
            # a robot that did not come up leaves no thread behind
            self._closed = True
            self._stop_robot_quietly()
            self._loop.close()
            _TRACKERS.release()
            if isinstance(exc, TandemError) or not isinstance(exc, Exception):
                raise
            raise BackendError(f"setting up the robot ({type(robot).__name__}): {_message(exc)}") from exc

    # -- lifetime --------------------------------------------------------------------------------

    @property
    def loop_thread(self) -> threading.Thread:
        """The thread the robot's event loop runs in (gone after `close()`)."""
        return self._loop.thread

    def close(self) -> None:
        """Stop the robot and the event loop's thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self.lh.stop)
        except Exception as exc:
            raise BackendError(f"stopping the robot: {_message(exc)}") from exc
        finally:
            self._loop.close()
            _TRACKERS.release()

    def __enter__(self) -> PyLabRobotBackend:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the four commands -------------------------------------------------------------------------

    def pick_up_tip(self, pipette: str, tip_rack: str) -> StepReport:
        channel = self._channel(pipette)
        rack = self.plr_deck.tip_racks.get(tip_rack)
        if rack is None:
            raise BackendError(
                f"no tip rack on slot {tip_rack!r}; racks: {', '.join(self.plr_deck.tip_racks)}"
            )

        async def pick_up() -> None:
            spots = rack.get_all_items()
            # the next spot that has a tip; with none left, the first, and PyLabRobot refuses it
            spot = next((s for s in spots if s.has_tip()), spots[0])
            await self.lh.pick_up_tips([spot], use_channels=[channel])

        duration = self._command(f"pick_up_tip {pipette} from {tip_rack}", pick_up)
        return StepReport("pick_up_tip", self._time(duration, "pick_up_tip", 0.0))

    def aspirate(self, pipette: str, source: str, volume_ul: float) -> StepReport:
        channel = self._channel(pipette)
        container = self._container(source)
        moved = self.errors.moved_ul(self.pipettes[pipette], volume_ul) if self.errors else volume_ul

        async def aspirate() -> None:
            try:
                await self.lh.aspirate([container], vols=[moved], use_channels=[channel])
            except BaseException:
                self._roll_back(container, channel)
                raise

        duration = self._command(f"aspirate {moved:.6g} µL with {pipette} from {source}", aspirate)
        return StepReport("aspirate", self._time(duration, "aspirate", volume_ul), float(moved))

    def dispense(self, pipette: str, destination: str, volume_ul: float) -> StepReport:
        channel = self._channel(pipette)
        container = self._container(destination)
        delivered = volume_ul

        async def dispense() -> None:
            nonlocal delivered
            held = float(self.lh.head[channel].get_tip().tracker.get_used_volume())
            if held < volume_ul <= held * (1 + _VOLUME_RTOL) + 1e-9:
                delivered = held  # what the tip holds, not a rounding error more
            try:
                await self.lh.dispense([container], vols=[delivered], use_channels=[channel])
            except BaseException:
                self._roll_back(container, channel)
                raise

        duration = self._command(f"dispense {volume_ul:.6g} µL with {pipette} into {destination}", dispense)
        return StepReport("dispense", self._time(duration, "dispense", volume_ul), float(delivered))

    def drop_tip(self, pipette: str) -> StepReport:
        channel = self._channel(pipette)

        async def drop() -> None:
            await self.lh.discard_tips(use_channels=[channel])

        duration = self._command(f"drop_tip {pipette}", drop)
        return StepReport("drop_tip", self._time(duration, "drop_tip", 0.0))

    # -- helpers -----------------------------------------------------------------------------------

    def _command(self, what: str, make: Callable[[], Awaitable[None]]) -> float:
        """Run one command on the loop; its wall time in s; any failure as `BackendError`."""
        if self._closed:
            raise BackendError(f"{what}: the robot is closed")

        async def timed() -> float:
            start = time.perf_counter()
            await make()
            return time.perf_counter() - start

        try:
            return float(self._run(timed))
        except Exception as exc:
            raise BackendError(f"{what}: {_message(exc)}") from exc

    def _run(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run `make()` on the robot's loop and wait for it (an OT-2's ot_api pointed at this robot)."""

        async def pointed() -> Any:
            with self._ot_api.pointed():
                return await make()

        return self._loop.run(pointed, self.timeout_s)

    def _time(self, measured_s: float, command: str, volume_ul: float) -> float:
        if self.times is None:
            return measured_s
        return {
            "pick_up_tip": self.times.pick_up_tip_s,
            "drop_tip": self.times.drop_tip_s,
            "aspirate": self.times.aspirate_s(volume_ul),
            "dispense": self.times.dispense_s(volume_ul),
        }[command]

    def _channel(self, pipette: str) -> int:
        try:
            return self.channels[pipette]
        except KeyError:
            raise BackendError(
                f"no pipette {pipette!r} mounted; mounted: {', '.join(self.channels)}"
            ) from None

    def _container(self, location: str) -> Any:
        try:
            return self.plr_deck.containers[location]
        except KeyError:
            known = ", ".join(self.plr_deck.containers)
            raise BackendError(f"no stock or well {location!r} on the robot's deck; known: {known}") from None

    def _roll_back(self, container: Any, channel: int) -> None:
        """Undo a failed liquid operation's pending tracker changes (PyLabRobot leaves some behind)."""
        if not container.tracker.is_disabled:
            container.tracker.rollback()
        head = self.lh.head[channel]
        if head.has_tip:
            head.get_tip().tracker.rollback()

    def _stop_robot_quietly(self) -> None:
        # a robot that failed to set up may fail to stop too; the setup error is the one to report
        with contextlib.suppress(Exception):
            self._run(self.lh.stop)


def _channels(deck: Deck, channels: Mapping[str, int] | None) -> dict[str, int]:
    names = [p.name for p in deck.pipettes]
    chosen = dict(channels) if channels is not None else {n: i for i, n in enumerate(names)}
    missing = [n for n in names if n not in chosen]
    extra = [n for n in chosen if n not in names]
    bad = {n: c for n, c in chosen.items() if isinstance(c, bool) or not isinstance(c, int) or c < 0}
    shared = len(set(chosen.values())) != len(chosen)
    if missing or extra or bad or shared:
        raise DeckTranslationError(
            f"channels must give each of the deck's pipettes ({', '.join(names)}) its own channel "
            f"number >= 0; got {chosen}"
        )
    return chosen


def _message(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


__all__ = [
    "PyLabRobotBackend",
]
