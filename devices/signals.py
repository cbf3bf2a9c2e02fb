"""Signal classes the two backends share: soft signals with control limits, and 2-D images over CA.

The device classes in this package declare their components with `SoftSignal`;
the EPICS backend overrides them with PV-backed signals of the same names, and
the simulated backend drives the soft ones. Both report limits the same way, so
one limit check serves both.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from epics.ca import ChannelAccessException, ChannelAccessGetFailure
from ophyd import EpicsSignalRO, Signal
from ophyd.status import Status
from ophyd.utils.errors import DisconnectedError, LimitError

from tandem.errors import TandemError


class DeviceTimeoutError(TandemError, TimeoutError):
    """A device did not answer in time (an IOC gone, a motion that never finished)."""


class DeviceFault(TandemError, RuntimeError):  # noqa: N818 - the name says what the hardware reports
    """A device reported that an action failed (for example a detector in its error state)."""


#: What ophyd and pyepics raise when a device has stopped answering (an IOC gone).
NO_ANSWER_ERRORS: tuple[type[Exception], ...] = (
    DisconnectedError,
    TimeoutError,
    ChannelAccessException,
    ChannelAccessGetFailure,
)


class SoftSignal(Signal):
    """A soft signal with optional control limits or enum strings, checked on every put.

    Like an EPICS record's DRVL/DRVH or an mbbo's states, so that a simulated
    device refuses what the real one would.
    """

    def __init__(
        self,
        *args: Any,
        limits: tuple[float, float] | None = None,
        enum_strs: tuple[str, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._enum_strs = enum_strs

    @property
    def enum_strs(self) -> tuple[str, ...] | None:
        return self._enum_strs

    def set_enum_strs(self, names: tuple[str, ...]) -> None:
        self._enum_strs = tuple(names)

    @property
    def limits(self) -> tuple[float, float]:
        return self._limits if self._limits is not None else (0, 0)

    def set_limits(self, low: float, high: float) -> None:
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"{self.name}: limits need finite low <= high, got ({low!r}, {high!r})")
        self._limits = (low, high)

    def check_value(self, value: Any) -> None:
        super().check_value(value)
        if isinstance(value, str):
            if self._enum_strs is not None and value not in self._enum_strs:
                raise LimitError(f"{self.name}: {value!r} is not one of {', '.join(self._enum_strs)}")
            return
        if self._limits is None:
            return
        low, high = self._limits
        if not low <= value <= high:
            raise LimitError(f"{self.name}: {value!r} is outside the limits [{low}, {high}]")


class SoftImageSignal(SoftSignal):
    """A soft 2-D frame that describes itself as an array of its shape (as `ImageSignal` does)."""

    def describe(self) -> dict[str, dict[str, Any]]:
        desc = super().describe()
        value = np.asarray(self.get())
        key = desc[self.name]
        key["shape"] = list(value.shape)
        key["dtype"] = "array"
        key["dtype_numpy"] = value.dtype.str
        return desc


class ImageSignal(EpicsSignalRO):
    """A detector frame served as a flat waveform PV, read back as a 2-D array.

    Area detectors publish frames as 1-D `ArrayData` plus the sizes; the shape is
    taken from the sibling `n_pixels_x` / `n_pixels_y` signals of the parent.
    """

    def _frame_shape(self) -> tuple[int, int]:
        parent = self.parent
        return (int(parent.n_pixels_y.get()), int(parent.n_pixels_x.get()))

    def get(self, **kwargs: Any) -> Any:
        flat = np.asarray(super().get(**kwargs))
        n_y, n_x = self._frame_shape()
        if flat.size < n_y * n_x:
            raise DeviceFault(
                f"{self.name}: the image PV holds {flat.size} values, a {n_y}x{n_x} frame needs "
                f"{n_y * n_x}; raise EPICS_CA_MAX_ARRAY_BYTES if the frame was truncated"
            )
        return flat[: n_y * n_x].reshape(n_y, n_x)

    def describe(self) -> dict[str, dict[str, Any]]:
        desc = super().describe()
        key = desc[self.name]
        key["shape"] = list(self._frame_shape())
        key["dtype"] = "array"
        key["dtype_numpy"] = np.dtype(np.int32).str
        return desc


def wait_until(
    signal: Any,
    condition: Callable[[Any], bool],
    *,
    timeout_s: float,
    what: str,
    fault: Callable[[Any], str | None] | None = None,
    fault_signal: Any = None,
) -> Status:
    """A status that finishes when `condition(signal value)` holds, and fails clearly otherwise.

    Fails with `DeviceTimeoutError` naming `what` after `timeout_s`, or with
    `DeviceFault` as soon as `fault(value of fault_signal)` returns a message
    (checked whenever `fault_signal` changes). Subscriptions are removed once the status is done.
    """
    status = Status(obj=signal)
    lock = threading.Lock()

    def finish(exc: Exception | None) -> None:
        with lock:
            if status.done:
                return
            if exc is None:
                status.set_finished()
            else:
                status.set_exception(exc)

    def on_value(*, value: Any, **_: Any) -> None:
        try:
            if condition(value):
                finish(None)
        except Exception as exc:  # a reading the condition cannot judge is a fault, not a hang
            finish(DeviceFault(f"{what}: cannot interpret reading {value!r}: {exc}"))

    def on_fault(*, value: Any, **_: Any) -> None:
        message = fault(value) if fault is not None else None
        if message:
            finish(DeviceFault(f"{what}: {message}"))

    def expire() -> None:
        finish(DeviceTimeoutError(f"{what}: no answer within {timeout_s:g} s"))

    timer = threading.Timer(timeout_s, expire)
    timer.daemon = True
    cid = signal.subscribe(on_value, run=True)
    fault_cid = fault_signal.subscribe(on_fault, run=False) if fault_signal is not None else None

    def cleanup(_: Any) -> None:
        timer.cancel()
        signal.unsubscribe(cid)
        if fault_cid is not None:
            fault_signal.unsubscribe(fault_cid)

    status.add_callback(cleanup)
    if not status.done:
        timer.start()
    return status
