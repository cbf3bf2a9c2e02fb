"""What a run's start and stop documents say: how it ended, what it measured, and with which settings.

`RunDocuments` gives typed views of the metadata the station plans put in the start
document (sample, campaign, decision, station, target and realized composition, scan
parameters, detector geometry) and of the stop document (exit status, reason), read the
same way whether the documents come from Tiled (`tandem.catalog.RawRun`) or from a
RunEngine's document stream (analysis).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from tandem.errors import TandemError
from tandem.geometry import DetectorGeometry, InvalidGeometryError
from tandem.suggestions import InvalidScanError, ScanParameters

__all__ = ["ExitStatus", "RunDataError", "RunDocuments", "as_dict"]


class RunDataError(TandemError, ValueError):
    """A run lacks the data asked for (a stream, a field, frames, geometry, scan parameters)."""


class ExitStatus(StrEnum):
    """How a run ended, as bluesky records it in the stop document."""

    SUCCESS = "success"
    FAIL = "fail"
    ABORT = "abort"


def as_dict(value: Any) -> dict[str, Any]:
    """A copy of `value` as a dict if it is a mapping (a document, a node's metadata), else empty."""
    return dict(value) if isinstance(value, Mapping) else {}


class RunDocuments:
    """What a run's start and stop documents say, read the same way wherever the documents come from.

    `RawRun` reads them from Tiled; analysis assembles them from a RunEngine's
    document stream. Both give these typed views of the plan's metadata.
    """

    start: dict[str, Any]
    stop: dict[str, Any] | None

    def _str(self, key: str) -> str | None:
        value = self.start.get(key)
        return None if value is None else str(value)

    @property
    def uid(self) -> str:
        return str(self.start["uid"])

    @property
    def time(self) -> float:
        """Start time, seconds since the epoch."""
        return float(self.start.get("time", math.nan))

    @property
    def plan_name(self) -> str | None:
        return self._str("plan_name")

    @property
    def sample_uid(self) -> str | None:
        return self._str("sample_uid")

    @property
    def campaign_id(self) -> str | None:
        return self._str("campaign_id")

    @property
    def decision_uid(self) -> str | None:
        return self._str("decision_uid")

    @property
    def station(self) -> str | None:
        return self._str("station")

    @property
    def target(self) -> dict[str, Any] | None:
        """The composition the run was asked to measure, as the plan recorded it."""
        return as_dict(self.start["target"]) if "target" in self.start else None

    @property
    def realized(self) -> dict[str, Any] | None:
        """The composition actually made (after pipetting errors), as the plan recorded it."""
        return as_dict(self.start["realized"]) if "realized" in self.start else None

    @property
    def is_closed(self) -> bool:
        """Whether the run has its stop document (it may have ended in failure)."""
        return self.stop is not None

    @property
    def exit_status(self) -> ExitStatus | None:
        """How the run ended; None while it is still open (or its process died mid-run)."""
        if self.stop is None:
            return None
        return ExitStatus(self.stop.get("exit_status", ExitStatus.FAIL))

    @property
    def reason(self) -> str:
        """Why the run did not succeed ("" for a success or an open run)."""
        return "" if self.stop is None else str(self.stop.get("reason", ""))

    @property
    def scan(self) -> ScanParameters:
        """The scan parameters recorded in the start document (`RunDataError` if absent)."""
        if "scan" not in self.start:
            raise RunDataError(
                f"run {self.uid} recorded no scan parameters (no 'scan' in its start document)"
            )
        try:
            return ScanParameters.from_dict(self.start["scan"])
        except (InvalidScanError, KeyError, TypeError, ValueError) as error:
            raise RunDataError(f"run {self.uid}: unreadable scan parameters: {error}") from error

    @property
    def geometry(self) -> DetectorGeometry:
        """The detector geometry recorded in the start document (`RunDataError` if absent)."""
        if "geometry" not in self.start:
            raise RunDataError(
                f"run {self.uid} recorded no detector geometry (no 'geometry' in its start document)"
            )
        try:
            return DetectorGeometry.from_dict(self.start["geometry"])
        except (InvalidGeometryError, TypeError, ValueError) as error:
            raise RunDataError(f"run {self.uid}: unreadable detector geometry: {error}") from error
