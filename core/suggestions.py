"""Suggestions: what an agent asks a station to do next."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tandem.composition import Composition
from tandem.errors import TandemError


class InvalidScanError(TandemError, ValueError):
    """Scan parameters that no station could run."""


@dataclass(frozen=True)
class ScanParameters:
    """How to measure a sample. Stations check these against their own limits."""

    exposure_s: float
    configuration: str = "default"
    temperature_c: float | None = None
    n_frames: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.exposure_s) and self.exposure_s > 0):
            raise InvalidScanError(f"exposure must be a positive number of seconds, got {self.exposure_s!r}")
        if self.temperature_c is not None and not math.isfinite(self.temperature_c):
            raise InvalidScanError(f"temperature must be a finite number of °C, got {self.temperature_c!r}")
        if self.n_frames < 1:
            raise InvalidScanError(f"at least one frame is needed, got n_frames={self.n_frames!r}")
        if not self.configuration:
            raise InvalidScanError("a detector configuration name is required")

    def to_dict(self) -> dict[str, Any]:
        return {
            "exposure_s": self.exposure_s,
            "configuration": self.configuration,
            "temperature_c": self.temperature_c,
            "n_frames": self.n_frames,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanParameters:
        return cls(
            exposure_s=float(data["exposure_s"]),
            configuration=str(data.get("configuration", "default")),
            temperature_c=None if data.get("temperature_c") is None else float(data["temperature_c"]),
            n_frames=int(data.get("n_frames", 1)),
        )


@dataclass(frozen=True)
class Suggestion:
    """One decision of an agent: measure `target` on `station` with `scan`.

    `model_state` is a JSON-ready summary of the model that produced it (the
    decision record in Tiled holds the full provenance under `decision_uid`).
    """

    station: str
    target: Composition
    scan: ScanParameters
    agent: str
    decision_uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    model_state: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_uid": self.decision_uid,
            "station": self.station,
            "target": self.target.to_dict(),
            "scan": self.scan.to_dict(),
            "agent": self.agent,
            "model_state": dict(self.model_state),
        }
