"""The sample request: one sample as the sample plan is asked to make and measure it.

A `SampleRequest` is built once, from an agent's `Suggestion` and what the station's
campaign settings say about every sample made there (`SampleSettings`: the liquid
that takes the rest, the volume mixed). Everything that runs a sample takes its plan
arguments from it: the campaign's in-process runner, the agent daemon queueing the
sample plan on a station's queue server, and a scientist's `sample_plan()` in a
session. So a sample is made the same way whoever asks for it.

It is a value: JSON-ready (`to_dict` / `from_dict` for records, `to_plan_kwargs` for
the plan, which the queue server is handed as JSON), and checked when built, so a
request that no station could run fails with a typed error before anything moves.

How much of the sample goes into the cell is the station's rule, `cell_load_volume_ul`,
applied where the cell's capacity is known (the sample plan reads it from the cell
loader); a request says a load volume only to override it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tandem.errors import TandemError
from tandem.stations import UnknownStationError
from tandem.suggestions import ScanParameters, Suggestion

#: mass fractions summing to more than one by less than this are rounding, not an error
_SUM_TOLERANCE = 1e-9


class InvalidSampleRequestError(TandemError, ValueError):
    """A sample request that no station could run (bad volumes, an empty target, ...)."""


def cell_load_volume_ul(total_volume_ul: float, cell_capacity_ul: float) -> float:
    """How much of a sample of `total_volume_ul` the cell loader pushes into the cell: the one rule.

    Half the sample, and never more than the cell holds. Half, because the loader draws
    the load *and* the transfer line's dead volume out of the well, and a pipetted well
    cannot be drawn to its last µL: the other half is that margin. At most the cell's
    capacity, because more would only overflow to waste (and the cell loader refuses
    it); the capacity is the cell's, so the station applies this rule, reading it from
    its cell loader, not whoever queues the sample.
    """
    total = _positive_ul("the sample volume", total_volume_ul)
    capacity = _positive_ul("the cell capacity", cell_capacity_ul)
    return min(total / 2, capacity)


@dataclass(frozen=True)
class SampleSettings:
    """What a station's campaign settings say about every sample made there."""

    #: the liquid that takes the rest of every sample (the station's solvent)
    balance: str
    #: how much of each sample the robot mixes
    sample_volume_ul: float

    def __post_init__(self) -> None:
        if not self.balance:
            raise InvalidSampleRequestError("a station's samples need a balance liquid (its solvent)")
        object.__setattr__(self, "sample_volume_ul", _positive_ul("the sample volume", self.sample_volume_ul))


@dataclass(frozen=True)
class SampleRequest:
    """One sample for the sample plan: which, for whom, what to mix, how to measure it.

    `target` holds the mass fractions of the components asked for; `balance` takes the
    rest. `load_volume_ul` None (the usual) lets the station fill its cell by
    `cell_load_volume_ul`. `measure_empty_cell` False suits a runner that measures the
    empty cell itself (once per detector configuration); a sample plan on its own must
    measure it, or its run has no background to be reduced with.
    """

    sample_uid: str
    campaign_id: str
    station: str
    target: Mapping[str, float]
    balance: str
    scan: ScanParameters
    total_volume_ul: float
    decision_uid: str | None = None
    load_volume_ul: float | None = None
    measure_empty_cell: bool = True

    def __post_init__(self) -> None:
        for label in ("sample_uid", "campaign_id", "station", "balance"):
            value = getattr(self, label)
            if not isinstance(value, str) or not value:
                raise InvalidSampleRequestError(f"{label} must be a non-empty string, got {value!r}")
        if self.decision_uid is not None and (
            not isinstance(self.decision_uid, str) or not self.decision_uid
        ):
            raise InvalidSampleRequestError(
                f"decision_uid must be a non-empty string or None, got {self.decision_uid!r}"
            )
        if not isinstance(self.scan, ScanParameters):
            raise InvalidSampleRequestError(f"scan must be ScanParameters, got {type(self.scan).__name__}")
        if not isinstance(self.measure_empty_cell, bool):
            raise InvalidSampleRequestError(
                f"measure_empty_cell must be true or false, got {self.measure_empty_cell!r}"
            )
        object.__setattr__(self, "target", MappingProxyType(_target(self.target)))
        total = _positive_ul("the sample volume (total_volume_ul)", self.total_volume_ul)
        object.__setattr__(self, "total_volume_ul", total)
        if self.load_volume_ul is not None:
            load = _positive_ul("the load volume (load_volume_ul)", self.load_volume_ul)
            if load > total:
                raise InvalidSampleRequestError(
                    f"cannot load {load:g} µL of a {total:g} µL sample: load_volume_ul must be at most "
                    "total_volume_ul (or None: the station fills its cell)"
                )
            object.__setattr__(self, "load_volume_ul", load)

    # -- building ---------------------------------------------------------------------------------

    @classmethod
    def at_station(
        cls,
        stations: Mapping[str, SampleSettings],
        station: str,
        target: Mapping[str, float],
        scan: ScanParameters,
        *,
        sample_uid: str,
        campaign_id: str,
        decision_uid: str | None = None,
        measure_empty_cell: bool = True,
    ) -> SampleRequest:
        """The request for `target` at `station`, with that station's balance and sample volume."""
        settings = stations.get(station)
        if settings is None:
            raise UnknownStationError(station, stations)
        return cls(
            sample_uid=sample_uid,
            campaign_id=campaign_id,
            station=station,
            target=target,
            balance=settings.balance,
            scan=scan,
            total_volume_ul=settings.sample_volume_ul,
            decision_uid=decision_uid,
            measure_empty_cell=measure_empty_cell,
        )

    @classmethod
    def from_suggestion(
        cls,
        suggestion: Suggestion,
        stations: Mapping[str, SampleSettings],
        *,
        sample_uid: str,
        campaign_id: str,
        measure_empty_cell: bool = True,
    ) -> SampleRequest:
        """The request for an agent's suggestion: its target (every component but the balance), its scan."""
        settings = stations.get(suggestion.station)
        balance = settings.balance if settings is not None else None
        target = {n: float(w) for n, w in suggestion.target.mass_fractions.items() if n != balance}
        return cls.at_station(
            stations,
            suggestion.station,
            target,
            suggestion.scan,
            sample_uid=sample_uid,
            campaign_id=campaign_id,
            decision_uid=suggestion.decision_uid,
            measure_empty_cell=measure_empty_cell,
        )

    @staticmethod
    def new_sample_uid() -> str:
        """A fresh sample uid, for a request no ledger has named yet."""
        return str(uuid.uuid4())

    # -- what it becomes ----------------------------------------------------------------------------

    def to_plan_kwargs(self) -> dict[str, Any]:
        """The sample plan's arguments but its three devices, as keywords; JSON values only."""
        return {
            "target": dict(self.target),
            "exposure_s": float(self.scan.exposure_s),
            "configuration": self.scan.configuration,
            "temperature_c": self.scan.temperature_c,
            "n_frames": int(self.scan.n_frames),
            "balance": self.balance,
            "campaign_id": self.campaign_id,
            "decision_uid": self.decision_uid,
            "sample_uid": self.sample_uid,
            "total_volume_ul": self.total_volume_ul,
            "load_volume_ul": self.load_volume_ul,
            "measure_empty_cell": self.measure_empty_cell,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for records (`from_dict` reads it back)."""
        return {
            "sample_uid": self.sample_uid,
            "campaign_id": self.campaign_id,
            "station": self.station,
            "decision_uid": self.decision_uid,
            "target": dict(self.target),
            "balance": self.balance,
            "scan": self.scan.to_dict(),
            "total_volume_ul": self.total_volume_ul,
            "load_volume_ul": self.load_volume_ul,
            "measure_empty_cell": self.measure_empty_cell,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleRequest:
        """A request from `to_dict`'s form; a missing or malformed field is an `InvalidSampleRequestError`."""
        try:
            return cls(
                sample_uid=data["sample_uid"],
                campaign_id=data["campaign_id"],
                station=data["station"],
                target=data["target"],
                balance=data["balance"],
                scan=ScanParameters.from_dict(data["scan"]),
                total_volume_ul=data["total_volume_ul"],
                decision_uid=data.get("decision_uid"),
                load_volume_ul=data.get("load_volume_ul"),
                measure_empty_cell=data.get("measure_empty_cell", True),
            )
        except TandemError:
            raise
        except KeyError as exc:
            raise InvalidSampleRequestError(
                f"a sample request needs {exc.args[0]!r}; got {sorted(data)}"
            ) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidSampleRequestError(f"not a sample request: {exc}") from None


def _positive_ul(label: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise InvalidSampleRequestError(f"{label} must be a positive number of µL, got {value!r}")
    return float(value)


def _target(target: Any) -> dict[str, float]:
    """`target` checked: component names to mass fractions in [0, 1], not empty, summing to at most 1."""
    if not isinstance(target, Mapping) or not target:
        raise InvalidSampleRequestError(
            f"target must be a non-empty mapping of component name to mass fraction, got {target!r}"
        )
    out: dict[str, float] = {}
    for name, w in target.items():
        if not isinstance(name, str) or not name:
            raise InvalidSampleRequestError(f"target names components by name, got {name!r}")
        if isinstance(w, bool) or not isinstance(w, int | float) or not (math.isfinite(w) and 0 <= w <= 1):
            raise InvalidSampleRequestError(f"the mass fraction of {name!r} must lie in [0, 1], got {w!r}")
        out[name] = float(w)
    total = math.fsum(out.values())
    if total > 1 + _SUM_TOLERANCE:
        raise InvalidSampleRequestError(
            f"the target's mass fractions sum to {total:.6g}; at most 1 is possible"
        )
    return out
