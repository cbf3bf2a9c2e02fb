"""The cell loader: pushes a prepared sample into the measurement cell, rinses and dries it.

Hardware: a syringe pump behind a selector valve (sample, rinse, air, waste)
feeds a transfer line into the cell, where a liquid sensor confirms arrival; a
gas line blows the cell dry. Everything is an EPICS PV; this module drives them
with ophyd `EpicsSignal`s and knows nothing about who serves them (a PLC, or the
caproto IOC of the digital twin, `tandem.sim.cell_loader_ioc`).

Each operation returns an ophyd `Status` that finishes when the hardware says
it is done, or fails with a typed error; none can hang: every wait has a
deadline, and on any failure the pump is stopped. Bluesky plans use the same
operations as commands to `set`::

    yield from bps.abs_set(cell_loader, Load(volume_ul=150.0), wait=True)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd.status import DeviceStatus, Status, SubscriptionStatus, WaitTimeoutError

from tandem.errors import TandemError

#: How often a running operation looks for a stop request (s).
_STOP_POLL_S = 0.1


class CellLoaderError(TandemError):
    """Base of the cell loader's errors."""


class InvalidCellLoaderRequestError(CellLoaderError, ValueError):
    """A request the cell loader cannot carry out (checked before any command is sent)."""


class CellLoaderBusyError(CellLoaderError, RuntimeError):
    """An operation was requested while another one is running."""


class CellLoaderFaultError(CellLoaderError, RuntimeError):
    """The hardware did something other than what was commanded."""


class CellLoaderTimeoutError(CellLoaderError, TimeoutError):
    """An operation did not finish within its time limit; the pump was stopped."""


class CellLoaderStoppedError(CellLoaderError, RuntimeError):
    """The operation was stopped on request (`stop()`, a RunEngine pause or abort)."""


class LiquidNotDetectedError(CellLoaderTimeoutError):
    """The liquid sensor never tripped: the line (sample or rinse) is dry or empty."""


@dataclass(frozen=True)
class Load:
    """Push `volume_ul` of the sample into the cell; the sensor must see it within `timeout_s`."""

    volume_ul: float
    timeout_s: float = 120.0


@dataclass(frozen=True)
class Rinse:
    """Fill the cell with rinse liquid and pump it to waste, `n_cycles` times."""

    n_cycles: int = 2
    timeout_s: float = 300.0


@dataclass(frozen=True)
class Dry:
    """Blow gas through the cell for `duration_s`."""

    duration_s: float = 30.0
    timeout_s: float | None = None  # default: the duration plus a margin


Command = Load | Rinse | Dry


def _positive(label: str, value: float, unit: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidCellLoaderRequestError(f"{label} must be a positive number of {unit}, got {value!r}")
    return float(value)


class CellLoader(Device):
    """Pump, valve, gas line and liquid sensor of a sample cell loader, over EPICS."""

    valve = Cpt(EpicsSignal, "Valve:Sel", string=True, put_complete=True, kind="omitted")
    pump_volume = Cpt(EpicsSignal, "Pump:Volume-SP", put_complete=True, kind="omitted")
    flow_rate = Cpt(EpicsSignal, "Pump:FlowRate-SP", put_complete=True, kind="config")
    pump_go = Cpt(EpicsSignal, "Pump:Go", put_complete=True, kind="omitted")
    pump_stop = Cpt(EpicsSignal, "Pump:Stop", put_complete=True, kind="omitted")
    pumped_volume = Cpt(EpicsSignalRO, "Pump:Volume-RB", kind="omitted")
    gas_duration = Cpt(EpicsSignal, "Gas:Duration-SP", put_complete=True, kind="omitted")
    gas_go = Cpt(EpicsSignal, "Gas:Go", put_complete=True, kind="omitted")
    liquid = Cpt(EpicsSignalRO, "Sensor:Liquid-RB", kind="hinted")
    busy = Cpt(EpicsSignalRO, "Busy-RB", kind="omitted")
    cell_volume = Cpt(EpicsSignalRO, "Cell:Volume-RB", kind="normal")
    cell_capacity = Cpt(EpicsSignalRO, "Cell:Capacity-RB", kind="config")
    line_volume = Cpt(EpicsSignalRO, "Line:Volume-RB", kind="config")
    state = Cpt(EpicsSignalRO, "State-RB", string=True, kind="omitted")

    #: Time allowed for a valve or setpoint put to be acknowledged.
    put_timeout_s = 10.0

    def __init__(self, prefix: str = "", *, name: str, **kwargs: Any) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self._operation_lock = threading.Lock()
        self._stop_requested = threading.Event()

    # -- operations -------------------------------------------------------------------------------

    def set(self, command: Command) -> DeviceStatus:
        """Run a `Load`, `Rinse` or `Dry` command (the bluesky `Movable` entry point)."""
        if isinstance(command, Load):
            return self.load(command.volume_ul, timeout_s=command.timeout_s)
        if isinstance(command, Rinse):
            return self.rinse(command.n_cycles, timeout_s=command.timeout_s)
        if isinstance(command, Dry):
            return self.dry(command.duration_s, timeout_s=command.timeout_s)
        raise InvalidCellLoaderRequestError(
            f"the cell loader takes a Load, Rinse or Dry command, got {command!r}"
        )

    def load(self, volume_ul: float, *, timeout_s: float = 120.0) -> DeviceStatus:
        """Push `volume_ul` of sample into the cell; fails with `LiquidNotDetectedError` if none arrives."""
        volume_ul = _positive("the load volume", volume_ul, "µL")
        timeout_s = _positive("the load timeout", timeout_s, "s")
        capacity = float(self.cell_capacity.get())
        if volume_ul > capacity:
            raise InvalidCellLoaderRequestError(
                f"cannot load {volume_ul:g} µL: the cell holds at most {capacity:g} µL"
            )
        # The first Line:Volume-RB µL only fill the transfer line.
        pumped_ul = volume_ul + float(self.line_volume.get())

        def sequence(deadline: float) -> None:
            self._pump("sample", pumped_ul, deadline, expect_liquid=True)

        return self._run("load", sequence, timeout_s)

    def rinse(self, n_cycles: int = 2, *, timeout_s: float = 300.0) -> DeviceStatus:
        """Fill the cell with rinse liquid and empty it to waste, `n_cycles` times; leaves it empty."""
        if isinstance(n_cycles, bool) or not isinstance(n_cycles, int) or n_cycles < 1:
            raise InvalidCellLoaderRequestError(f"n_cycles must be an integer >= 1, got {n_cycles!r}")
        timeout_s = _positive("the rinse timeout", timeout_s, "s")
        capacity = float(self.cell_capacity.get())
        fill_ul = capacity + float(self.line_volume.get())

        def sequence(deadline: float) -> None:
            self._empty(deadline)
            for _ in range(n_cycles):
                self._pump("rinse", fill_ul, deadline, expect_liquid=True)
                self._empty(deadline)

        return self._run("rinse", sequence, timeout_s)

    def dry(self, duration_s: float = 30.0, *, timeout_s: float | None = None) -> DeviceStatus:
        """Blow gas through the cell for `duration_s`; fails if the sensor still sees liquid after."""
        duration_s = _positive("the drying time", duration_s, "s")
        if timeout_s is None:
            timeout_s = 2 * duration_s + 30.0
        timeout_s = _positive("the drying timeout", timeout_s, "s")

        def sequence(deadline: float) -> None:
            self._put(self.valve, "air", deadline)
            self._put(self.gas_duration, duration_s, deadline)
            self._wait(self.gas_go.set(1, timeout=None), deadline, "drying")
            if self.liquid.get(use_monitor=False):
                raise CellLoaderFaultError("the liquid sensor still sees liquid after drying")

        return self._run("dry", sequence, timeout_s)

    def stop(self, *, success: bool = False) -> None:
        """Stop a running operation: it fails with `CellLoaderStoppedError` once the pump is idle."""
        self._stop_requested.set()
        self.pump_stop.put(1)
        super().stop(success=success)

    # -- the steps ------------------------------------------------------------------------------

    def _run(self, what: str, sequence: Callable[[float], None], timeout_s: float) -> DeviceStatus:
        if not self._operation_lock.acquire(blocking=False):
            raise CellLoaderBusyError(f"{self.name}: cannot {what}: another operation is running")
        if self.busy.get(use_monitor=False):
            self._operation_lock.release()
            raise CellLoaderBusyError(f"{self.name}: cannot {what}: the hardware reports busy")
        # No ophyd-level timeout: the sequence fails itself with a typed error at its deadline.
        status = DeviceStatus(self)
        deadline = time.monotonic() + timeout_s
        self._stop_requested.clear()

        def work() -> None:
            try:
                sequence(deadline)
            except Exception as exc:
                self._halt()
                self._operation_lock.release()
                status.set_exception(exc)
            else:
                self._operation_lock.release()
                status.set_finished()

        threading.Thread(target=work, name=f"{self.name}-{what}", daemon=True).start()
        return status

    def _pump(self, port: str, volume_ul: float, deadline: float, *, expect_liquid: bool) -> None:
        self._put(self.valve, port, deadline)
        self._put(self.pump_volume, volume_ul, deadline)
        what = f"pumping {volume_ul:g} µL from {port}"
        try:
            self._wait(self.pump_go.set(1, timeout=None), deadline, what)
        except CellLoaderTimeoutError as exc:
            if expect_liquid and not self.liquid.get(use_monitor=False):
                raise LiquidNotDetectedError(
                    f"the liquid sensor did not trip while {what} ({exc}); is the {port} line dry?"
                ) from None
            raise
        if expect_liquid and not self.liquid.get(use_monitor=False):
            raise LiquidNotDetectedError(
                f"the liquid sensor did not trip after {what} "
                f"({float(self.pumped_volume.get(use_monitor=False)):g} µL moved): the {port} line is dry or "
                "empty"
            )

    def _empty(self, deadline: float) -> None:
        left_ul = float(self.cell_volume.get(use_monitor=False))
        if left_ul > 0:
            self._pump("waste", left_ul, deadline, expect_liquid=False)
        if self.liquid.get(use_monitor=False):
            raise CellLoaderFaultError("the cell still holds liquid after pumping it to waste")

    def _put(self, signal: EpicsSignal, value: Any, deadline: float) -> None:
        limit = min(deadline, time.monotonic() + self.put_timeout_s)
        self._wait(signal.set(value, timeout=None), limit, f"setting {signal.name} to {value!r}")

    def _wait(self, status: Status, deadline: float, what: str) -> None:
        # Waits in slices so that a stop request issued from another thread is honoured even if
        # it reached the hardware before the command it was meant to stop.
        while True:
            if self._stop_requested.is_set():
                raise CellLoaderStoppedError(f"{self.name}: stopped while {what}")
            remaining = deadline - time.monotonic()
            try:
                status.wait(timeout=max(0.0, min(_STOP_POLL_S, remaining)))
            except WaitTimeoutError:
                if remaining <= _STOP_POLL_S:
                    raise CellLoaderTimeoutError(f"{self.name}: timed out {what}") from None
            else:
                if self._stop_requested.is_set():  # the command ended because it was stopped
                    raise CellLoaderStoppedError(f"{self.name}: stopped while {what}")
                return

    def _halt(self) -> None:
        """Stop the pump and wait (bounded) until the hardware reports idle: a failed status means stopped."""
        try:
            self.pump_stop.set(1, timeout=None).wait(self.put_timeout_s)
            SubscriptionStatus(self.busy, _is_idle, timeout=self.put_timeout_s).wait()
        except Exception:  # best effort: the operation's own error is what to report
            pass


def _is_idle(*, value: Any, **kwargs: Any) -> bool:
    return not value


__all__ = [
    "CellLoader",
    "CellLoaderBusyError",
    "CellLoaderError",
    "CellLoaderFaultError",
    "CellLoaderStoppedError",
    "CellLoaderTimeoutError",
    "Command",
    "Dry",
    "InvalidCellLoaderRequestError",
    "LiquidNotDetectedError",
    "Load",
    "Rinse",
]
