"""Why a recipe cannot be made: the checks of a request and of a deck, and their typed errors.

`InvalidRecipeRequestError` is a malformed request (nothing was attempted);
`InfeasibleRecipeError` carries every `Reason` that applies, each with a
`ReasonCode` for programs. The checks here run before and after the solve of
`tandem.robots.recipe_solver`: the request itself, the destination well, the
components no stock holds, a target out of reach of every mixture of the stocks,
and, when no pipettable recipe exists, which limit is to blame (`diagnose`
relaxes each in turn). The liquid handler's own check of a recipe against its
inventory reports with the same reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.robots.deck import Deck

if TYPE_CHECKING:  # the solver raises these errors; the diagnosis only reads its problems
    from tandem.robots.recipe_solver import Problem


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


def check_request(deck: Deck, target: Composition, total_volume_ul: float, tolerance: float) -> None:
    if not isinstance(deck, Deck):
        raise InvalidRecipeRequestError(f"deck must be a Deck, got {type(deck).__name__}")
    if not isinstance(target, Composition):
        raise InvalidRecipeRequestError(
            f"target must be a Composition (see Composition.from_amounts), got {type(target).__name__}"
        )
    if isinstance(total_volume_ul, bool) or not (
        isinstance(total_volume_ul, int | float) and math.isfinite(total_volume_ul) and total_volume_ul > 0
    ):
        raise InvalidRecipeRequestError(
            f"total_volume_ul must be a finite number > 0, got {total_volume_ul!r}"
        )
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, int | float) and math.isfinite(tolerance) and 0 < tolerance < 1
    ):
        raise InvalidRecipeRequestError(
            f"tolerance is a mass fraction and must lie in (0, 1), got {tolerance!r}"
        )
    for name, component in target.components.items():
        if name in deck.components and deck.components[name] != component:
            raise InvalidRecipeRequestError(
                f"the target defines {name!r} differently from the deck "
                f"(target {component}, deck {deck.components[name]}); use the deck's components"
            )


def pick_destination(deck: Deck, destination: str | None, volume: float) -> tuple[str | None, list[Reason]]:
    if destination is not None:
        well = deck.well(destination)  # an unknown slot is a malformed request, not infeasibility
        reasons = []
        if not well.is_empty:
            reasons.append(
                Reason(
                    ReasonCode.DESTINATION_OCCUPIED,
                    f"destination well {well.slot!r} already holds {well.volume_ul:.4g} µL; "
                    "choose an empty well",
                    {"well": well.slot, "volume_ul": well.volume_ul},
                )
            )
        if well.capacity_ul < volume:
            reasons.append(
                Reason(
                    ReasonCode.DESTINATION_TOO_SMALL,
                    f"destination well {well.slot!r} holds at most {well.capacity_ul:g} µL, "
                    f"{volume:g} µL were asked for",
                    {"well": well.slot, "capacity_ul": well.capacity_ul, "volume_ul": volume},
                )
            )
        return well.slot, reasons
    for well in deck.empty_wells():
        if well.capacity_ul >= volume:
            return well.slot, []
    largest = max((w.capacity_ul for w in deck.empty_wells()), default=0.0)
    return None, [
        Reason(
            ReasonCode.NO_FREE_WELL,
            f"no empty well takes {volume:g} µL (largest empty well: {largest:g} µL, "
            f"{len(deck.empty_wells())} empty of {len(deck.wells)})",
            {"volume_ul": volume, "largest_empty_ul": largest},
        )
    ]


def missing_components(deck: Deck, target: Composition) -> list[Reason]:
    reasons = []
    for name, w in target.mass_fractions.items():
        if w > 0 and not any(s.composition.mass_fraction(name) > 0 for s in deck.stocks):
            reasons.append(
                Reason(
                    ReasonCode.MISSING_COMPONENT,
                    f"no stock holds {name!r}, which the target needs (mass fraction {w:.4g})",
                    {"component": name, "target_mass_fraction": w},
                )
            )
    return reasons


def out_of_reach(problem: Problem, distance: float, x: np.ndarray, tolerance: float) -> list[Reason]:
    if not problem.sources:
        return [Reason(ReasonCode.OUT_OF_REACH, "the deck has no stocks", {"distance": None})]
    closest = problem.w @ x
    worst = int(np.argmax(np.abs(closest - problem.t)))
    reasons = [
        Reason(
            ReasonCode.OUT_OF_REACH,
            f"no mixture of the stocks comes within {tolerance:g} of the target: the closest one is "
            f"{distance:.4g} away in mass fraction (worst: {problem.names[worst]!r}, "
            f"{closest[worst]:.4g} instead of {problem.t[worst]:.4g})",
            {
                "distance": distance,
                "closest_mass_fractions": {n: float(c) for n, c in zip(problem.names, closest, strict=True)},
            },
        )
    ]
    for k, name in enumerate(problem.names):
        if problem.t[k] == 0 and closest[k] > tolerance:
            carriers = [
                s.name
                for s, xi in zip(problem.sources, x, strict=True)
                if xi > 0 and problem.w[k, problem.sources.index(s)] > 0
            ]
            reasons.append(
                Reason(
                    ReasonCode.UNWANTED_COMPONENT,
                    f"the target holds no {name!r}, but the stocks it needs bring it in "
                    f"(at least {closest[k]:.4g} in mass fraction, from {', '.join(carriers)})",
                    {"component": name, "mass_fraction": float(closest[k]), "stocks": carriers},
                )
            )
    return reasons


def diagnose(
    problem: Problem, volume: float, tolerance: float, min_ul: float, tried_dilution: bool
) -> list[Reason]:
    """Within reach, yet no pipettable recipe: find which limits are to blame by relaxing each."""
    reasons: list[Reason] = []
    no_stock_limit = problem.solve(volume, tolerance=tolerance, min_volume_ul=min_ul, respect_stock=False)
    no_min = problem.solve(volume, tolerance=tolerance, min_volume_ul=None, respect_stock=True)
    if no_stock_limit is None and no_min is None:
        neither = problem.solve(volume, tolerance=tolerance, min_volume_ul=None, respect_stock=False)
        no_stock_limit = no_min = neither
    if no_stock_limit is not None:
        for s, v in zip(problem.sources, no_stock_limit.volumes_ul, strict=True):
            if v > s.available_ul * (1 + 1e-9):
                reasons.append(
                    Reason(
                        ReasonCode.INSUFFICIENT_STOCK,
                        f"stock {s.name!r} has {s.available_ul:.4g} µL left above its dead volume; "
                        f"the recipe needs {v:.4g} µL",
                        {"stock": s.name, "available_ul": s.available_ul, "needed_ul": v},
                    )
                )
    if no_min is not None:
        hint = "" if tried_dilution else "; allow_dilution would make a diluted intermediate first"
        for s, v in zip(problem.sources, no_min.volumes_ul, strict=True):
            if 0 < v < min_ul:
                reasons.append(
                    Reason(
                        ReasonCode.BELOW_MIN_VOLUME,
                        f"stock {s.name!r} would be needed in {v:.4g} µL, below the smallest transfer "
                        f"({min_ul:g} µL){hint}",
                        {"stock": s.name, "needed_ul": v, "min_volume_ul": min_ul},
                    )
                )
    loose = problem.solve(volume, tolerance=None, min_volume_ul=min_ul, respect_stock=True)
    if loose is not None and loose.deviation > tolerance:
        reasons.append(
            Reason(
                ReasonCode.TOLERANCE_EXCEEDED,
                f"with pipettable volumes and the stock left, the closest mixture is {loose.deviation:.4g} "
                f"away from the target in mass fraction; the tolerance is {tolerance:g}",
                {"deviation": loose.deviation, "tolerance": tolerance},
            )
        )
    if not reasons:  # pragma: no cover - one of the relaxations always explains it
        reasons.append(Reason(ReasonCode.TOLERANCE_EXCEEDED, "no pipettable recipe meets the tolerance"))
    return reasons
