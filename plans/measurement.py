"""Measurement plans of a station: transmission, empty cell, sample scattering.

Every public plan takes the station (`tandem.protocols.StationDevices`, which
`tandem.devices.station.OphydStationDevices` keeps; a device that does not is refused with a
`WrongDeviceError`) and JSON-ready scan parameters, refuses
parameters outside the station's limits *before any message is yielded* (no
document, no motion), sets the station up (detector configuration,
temperature), then opens a run whose start document carries the station, the
probe, the scan parameters and the detector geometry. The stubs without a run
(`set_up`, `acquire_frames`, `acquire_transmission`) compose into the sample
plan (`tandem.plans.sample`).

Layout of the data (what analysis reads):

* stream ``primary`` (sample) / ``empty_cell``: one event per frame with the
  2-D image (`<station>_detector_image`), the frame counter, incident and
  transmitted monitor counts and the gate time (`<station>_monitor_*`) and the
  temperature readback; the descriptor's configuration holds the exposure time
  and the detector geometry signals.
* stream ``transmission``: one event with the monitor counts of a short
  exposure of what is in the cell.
* start document: ``station``, ``probe``, ``scan`` (`ScanParameters.to_dict()`),
  ``geometry`` (`DetectorGeometry.to_dict()`), ``transmission_exposure_s``.

A device that stops answering fails the plan with `DeviceTimeoutError`; the run
is closed with exit status ``fail`` and the reason, and the shutter is closed
(best effort: a dead shutter cannot be).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping
from typing import Any, TypeVar

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import FailedStatus, Msg
from ophyd.utils.errors import OpException

from tandem.devices.signals import NO_ANSWER_ERRORS, DeviceFault, DeviceTimeoutError
from tandem.errors import TandemError
from tandem.geometry import DetectorGeometry
from tandem.plans import device_check
from tandem.protocols import StationDevices
from tandem.suggestions import ScanParameters

logger = logging.getLogger(__name__)

T = TypeVar("T")
MsgGenerator = Generator[Msg, Any, T]

#: The transmission exposure is this fraction of the scattering exposure (within the detector's range).
TRANSMISSION_FRACTION = 0.1
SAMPLE_STREAM = "primary"
EMPTY_CELL_STREAM = "empty_cell"
TRANSMISSION_STREAM = "transmission"
_GEOMETRY_FIELDS = tuple(DetectorGeometry.__dataclass_fields__)


# -- checks -----------------------------------------------------------------------------------


def scan_parameters(
    station: StationDevices,
    exposure_s: float,
    configuration: str | None,
    temperature_c: float | None,
    n_frames: int,
) -> ScanParameters:
    """Scan parameters from plan arguments (a typed `InvalidScanError` for nonsense).

    No configuration means the one the station is in now.
    """
    if configuration is None:
        configuration = str(station.configuration.readback.get())
    return ScanParameters(
        exposure_s=float(exposure_s),
        configuration=str(configuration),
        temperature_c=None if temperature_c is None else float(temperature_c),
        n_frames=int(n_frames),
    )


def check_scan(station: StationDevices, scan: ScanParameters) -> None:
    """Refuse `scan` if `station` cannot run it (`ScanLimitError`); reads limits, moves nothing."""
    try:
        station.check(scan)
    except NO_ANSWER_ERRORS as exc:
        raise DeviceTimeoutError(f"station {station.name!r}: cannot read its limits ({exc})") from exc


def transmission_exposure_s(station: StationDevices, scan: ScanParameters) -> float:
    low, high = station.detector.exposure_range_s
    return min(max(scan.exposure_s * TRANSMISSION_FRACTION, low), high)


# -- failure translation ----------------------------------------------------------------------


def translate_failures(plan: MsgGenerator[T], station: StationDevices) -> MsgGenerator[T]:
    """Run `plan`; turn what devices raise into typed errors that say which station failed.

    A failed status arrives as bluesky's `FailedStatus` wrapping the device's
    own error; a PV that went away as ophyd's `DisconnectedError` or a
    `TimeoutError`. The run's stop document then carries a readable reason.
    """
    try:
        return (yield from plan)
    except FailedStatus as exc:
        cause = exc.__cause__
        if isinstance(cause, TandemError):
            raise cause from exc
        if isinstance(cause, NO_ANSWER_ERRORS):
            raise DeviceTimeoutError(f"station {station.name!r}: {cause}") from exc
        raise DeviceFault(f"station {station.name!r}: {cause or exc}") from exc
    except DeviceTimeoutError:
        raise
    except NO_ANSWER_ERRORS as exc:
        raise DeviceTimeoutError(
            f"station {station.name!r}: a device stopped answering ({type(exc).__name__}: {exc})"
        ) from exc
    except OpException as exc:
        raise DeviceFault(f"station {station.name!r}: {exc}") from exc


# -- stubs (no run) ---------------------------------------------------------------------------


def set_up(station: StationDevices, scan: ScanParameters) -> MsgGenerator[DetectorGeometry]:
    """Move to the scan's configuration and temperature together; return the geometry then in force."""
    args: list[Any] = [station.configuration, scan.configuration]
    if scan.temperature_c is not None:
        args += [station.temperature, scan.temperature_c]
    yield from bps.mv(*args)
    return (yield from read_geometry(station))


def read_geometry(station: StationDevices) -> MsgGenerator[DetectorGeometry]:
    values = {}
    for name in _GEOMETRY_FIELDS:
        values[name] = yield from bps.rd(getattr(station.detector, name))
    return DetectorGeometry.from_dict(values)


def _with_beam(station: StationDevices, plan: MsgGenerator[T]) -> MsgGenerator[T]:
    """Open the shutter around `plan`; close it afterwards, also (best effort) when `plan` failed."""

    def close() -> MsgGenerator[None]:
        yield from bps.mv(station.shutter, "close")

    def close_quietly(exc: BaseException) -> MsgGenerator[None]:
        try:
            yield from close()
        except Exception as close_exc:
            logger.warning("%s: could not close the shutter after %r: %s", station.name, exc, close_exc)

    def body() -> MsgGenerator[T]:
        yield from bps.mv(station.shutter, "open")
        return (yield from plan)

    result: T = yield from bpp.contingency_wrapper(body(), except_plan=close_quietly, else_plan=close)
    return result


def acquire_frames(station: StationDevices, stream: str, n_frames: int) -> MsgGenerator[None]:
    """`n_frames` exposures with the beam on, one event each in `stream`."""

    def frames() -> MsgGenerator[None]:
        readables = [station.detector, station.monitor, station.temperature]
        for _ in range(n_frames):
            yield from bps.trigger(station.detector, wait=True)
            yield from bps.create(stream)
            for device in readables:
                yield from bps.read(device)
            yield from bps.save()

    yield from _with_beam(station, frames())


def acquire_transmission(station: StationDevices, exposure_s: float) -> MsgGenerator[None]:
    """One short exposure of what is in the cell; its monitor counts go to the transmission stream."""
    restore = yield from bps.rd(station.detector.exposure_time)
    yield from bps.mv(station.detector.exposure_time, exposure_s)

    def count() -> MsgGenerator[None]:
        yield from bps.trigger(station.detector, wait=True)
        yield from bps.create(TRANSMISSION_STREAM)
        yield from bps.read(station.monitor)
        yield from bps.save()

    yield from _with_beam(station, count())
    yield from bps.mv(station.detector.exposure_time, restore)


def measurement_md(
    station: StationDevices, scan: ScanParameters, geometry: DetectorGeometry
) -> dict[str, Any]:
    return {
        "station": station.name,
        "probe": station.probe.value,
        "scan": scan.to_dict(),
        "geometry": geometry.to_dict(),
        "transmission_exposure_s": transmission_exposure_s(station, scan),
    }


# -- plans (one run each) ---------------------------------------------------------------------


def _measurement(
    station: StationDevices,
    scan: ScanParameters,
    plan_name: str,
    body: Callable[[], MsgGenerator[None]],
    md: Mapping[str, Any] | None,
) -> MsgGenerator[str]:
    check_scan(station, scan)

    def run() -> MsgGenerator[str]:
        geometry = yield from set_up(station, scan)
        yield from bps.mv(station.detector.exposure_time, scan.exposure_s)
        run_md = {**measurement_md(station, scan, geometry), "plan_name": plan_name, **dict(md or {})}
        uid: str = yield from bpp.run_wrapper(translate_failures(body(), station), md=run_md)
        return uid

    return (yield from translate_failures(run(), station))


def measure_transmission(
    station: StationDevices,
    exposure_s: float,
    *,
    configuration: str | None = None,
    temperature_c: float | None = None,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Transmission of what is in the cell now: one exposure of `exposure_s`, monitor counts only."""
    station = device_check.station(station)
    scan = scan_parameters(station, exposure_s, configuration, temperature_c, 1)
    return (
        yield from _measurement(
            station, scan, "measure_transmission", lambda: acquire_transmission(station, exposure_s), md
        )
    )


def measure_empty_cell(
    station: StationDevices,
    exposure_s: float,
    *,
    configuration: str | None = None,
    temperature_c: float | None = None,
    n_frames: int = 1,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Frames of the empty cell (stream `empty_cell`), the background a sample run is reduced with."""
    station = device_check.station(station)
    scan = scan_parameters(station, exposure_s, configuration, temperature_c, n_frames)
    return (
        yield from _measurement(
            station,
            scan,
            "measure_empty_cell",
            lambda: acquire_frames(station, EMPTY_CELL_STREAM, n_frames),
            md,
        )
    )


def measure_sample(
    station: StationDevices,
    exposure_s: float,
    *,
    configuration: str | None = None,
    temperature_c: float | None = None,
    n_frames: int = 1,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Scattering frames of what is in the cell (stream `primary`) after its transmission."""
    station = device_check.station(station)
    scan = scan_parameters(station, exposure_s, configuration, temperature_c, n_frames)

    def body() -> MsgGenerator[None]:
        yield from acquire_transmission(station, transmission_exposure_s(station, scan))
        yield from acquire_frames(station, SAMPLE_STREAM, n_frames)

    return (yield from _measurement(station, scan, "measure_sample", body, md))
