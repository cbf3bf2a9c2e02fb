"""Recipes: which stock volumes, pipetted into which well, make a target composition.

The mixing math follows `tandem.composition` (ideal mixing): the volume of a
stock is the volume of its liquids, so the volumes of stocks pipetted together
add exactly, and the mass of each component is linear in the stock volumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from tandem.composition import Composition
from tandem.errors import TandemError


class ReasonCode(StrEnum):
    """Why a target cannot be made. Several can apply at once."""

    MISSING_COMPONENT = "missing_component"  # no stock holds a component the target needs
    OUT_OF_REACH = "out_of_reach"  # no mixture of the stocks comes within tolerance
    BELOW_MIN_VOLUME = "below_min_volume"  # a needed volume is smaller than any pipette can move
    UNWANTED_COMPONENT = "unwanted_component"  # a needed stock brings a component the target must not hold
    TOLERANCE_EXCEEDED = "tolerance_exceeded"  # within reach, but not with pipettable volumes
    INSUFFICIENT_STOCK = "insufficient_stock"  # not enough left above the dead volume
    NO_TIPS = "no_tips"
    NO_PIPETTE = "no_pipette"  # the deck has no pipette at all
    DESTINATION_TOO_SMALL = "destination_too_small"
    DESTINATION_OCCUPIED = "destination_occupied"
    NO_FREE_WELL = "no_free_well"


@dataclass(frozen=True)
class Reason:
    """One reason a recipe cannot be made, for people (`message`) and for programs (`code`, `details`)."""

    code: ReasonCode
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": dict(self.details)}

    def __str__(self) -> str:
        return self.message


class InvalidRecipeRequestError(TandemError, ValueError):
    """The request itself is malformed (a negative volume, a NaN tolerance): nothing was attempted."""


class InfeasibleRecipeError(TandemError, ValueError):
    """The target cannot be made on this deck; `reasons` holds every reason that applies."""

    def __init__(self, reasons: tuple[Reason, ...]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(self.reasons)

    @property
    def codes(self) -> frozenset[ReasonCode]:
        return frozenset(r.code for r in self.reasons)

    def __str__(self) -> str:
        lines = "\n".join(f"- {r.message}" for r in self.reasons)
        return f"the target cannot be made ({len(self.reasons)} reason(s)):\n{lines}"


@dataclass(frozen=True)
class Transfer:
    """Move `volume_ul` from `source` to `destination` with `pipette`, with a fresh tip.

    `source` is a stock name, or the slot of a well filled earlier in the same
    recipe (a diluted intermediate); `destination` is a well slot.
    """

    source: str
    destination: str
    volume_ul: float
    pipette: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "volume_ul": self.volume_ul,
            "pipette": self.pipette,
        }


@dataclass(frozen=True)
class Recipe:
    """The transfers that make `target` in `destination`, and what perfect pipetting would give.

    `transfers` are in execution order: diluted intermediates first. `intermediates`
    maps the well slot of each intermediate to its composition (with total).
    `deviation` is the largest mass-fraction difference between `predicted` and
    `target`; it never exceeds `tolerance`.
    """

    target: Composition
    destination: str
    total_volume_ul: float
    transfers: tuple[Transfer, ...]
    predicted: Composition
    tolerance: float
    tips_needed: Mapping[str, int]
    intermediates: Mapping[str, Composition] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tips_needed", MappingProxyType(dict(self.tips_needed)))
        object.__setattr__(self, "intermediates", MappingProxyType(dict(self.intermediates)))

    @property
    def deviation(self) -> float:
        return self.predicted.max_abs_difference(self.target)

    def volumes_by_source(self) -> dict[str, float]:
        """Total volume taken from each source, over all transfers."""
        out: dict[str, float] = {}
        for t in self.transfers:
            out[t.source] = out.get(t.source, 0.0) + t.volume_ul
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.to_dict(),
            "destination": self.destination,
            "total_volume_ul": self.total_volume_ul,
            "transfers": [t.to_dict() for t in self.transfers],
            "predicted": self.predicted.to_dict(),
            "deviation": self.deviation,
            "tolerance": self.tolerance,
            "tips_needed": dict(self.tips_needed),
            "intermediates": {slot: c.to_dict() for slot, c in self.intermediates.items()},
        }


def solve_recipe(
    deck: Any,
    target: Composition,
    *,
    total_volume_ul: float,
    destination: str | None = None,
    tolerance: float = 1e-3,
    allow_dilution: bool = False,
) -> Recipe:
    """Placeholder while the solver lands (next commit)."""
    raise NotImplementedError
