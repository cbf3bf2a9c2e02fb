"""Recipes: which stock volumes, pipetted into which well, make a target composition.

The mixing math follows `tandem.composition` (ideal mixing): the volume of a
stock is the volume of its liquids, so the volumes of stocks pipetted together
add exactly, and the mass of each component is linear in the stock volumes.

`solve_recipe` is the entry point and `Recipe` its answer; the work is split by job:

* `tandem.robots.recipe_solver` — the linear algebra: `mix`, and the (mixed-integer)
  linear programs that find the stock volumes;
* `tandem.robots.recipe_steps` — the pipetting steps: `Transfer`, splitting volumes
  over pipettes, serial dilutions;
* `tandem.robots.recipe_feasibility` — the checks of a request and why a target
  cannot be made: `ReasonCode`, `Reason` and the typed errors.

What other parts use of them (the errors and reasons, `Transfer`, `mix`) is importable
from here as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from tandem.composition import Composition
from tandem.robots.deck import Deck
from tandem.robots.recipe_feasibility import (
    InfeasibleRecipeError,
    Reason,
    ReasonCode,
    check_request,
    diagnose,
    missing_components,
    out_of_reach,
    pick_destination,
)
from tandem.robots.recipe_solver import Problem, Source, mix
from tandem.robots.recipe_steps import Chain, Transfer, plan_transfers, with_dilutions

__all__ = [
    "Recipe",
    "solve_recipe",
]


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
    deck: Deck,
    target: Composition,
    *,
    total_volume_ul: float,
    destination: str | None = None,
    tolerance: float = 1e-3,
    allow_dilution: bool = False,
) -> Recipe:
    """The transfers that make `total_volume_ul` of `target` in a well of `deck`.

    The stock volumes are found by mixed-integer linear programming: the predicted
    mass fractions lie within `tolerance` of the target (max abs difference), every
    volume is either zero or movable by a pipette, and no stock gives more than it
    has above its dead volume. A volume above a pipette's maximum is split into equal
    transfers; among pipettes the one with the fewest transfers, then the best
    accuracy, then the smallest, is used. Nothing is rounded.

    `destination` is an empty well's slot; by default the first empty well big enough.
    With `allow_dilution`, a stock needed in less than the smallest transfer is first
    diluted (in one or more steps) into free wells, and the intermediate used instead.

    Raises `InvalidRecipeRequestError` (or `UnknownDeckItemError`) for a malformed
    request, and `InfeasibleRecipeError` with every reason that applies when the
    target cannot be made. The deck is never changed: it is a value.
    """
    check_request(deck, target, total_volume_ul, tolerance)
    volume = float(total_volume_ul)
    target = target.with_total_volume(volume)
    names = list(dict.fromkeys([*deck.components, *target.components]))
    reasons: list[Reason] = []

    well_slot, dest_reasons = pick_destination(deck, destination, volume)
    reasons += missing_components(deck, target)
    if not deck.pipettes:
        reasons.append(Reason(ReasonCode.NO_PIPETTE, "the deck has no pipette"))
    sources = [Source(s.name, s.composition, s.available_ul) for s in deck.stocks]
    problem = Problem(sources, target, names)

    distance, closest_x = problem.closest() if sources else (math.inf, np.zeros(0))
    if distance > tolerance:
        reasons += out_of_reach(problem, distance, closest_x, tolerance)
    if reasons or not deck.pipettes:
        raise InfeasibleRecipeError(tuple(reasons + dest_reasons))

    min_ul = min(p.min_volume_ul for p in deck.pipettes)
    solution = problem.solve(volume, tolerance=tolerance, min_volume_ul=min_ul, respect_stock=True)
    chains: list[Chain] = []
    if solution is None and allow_dilution:
        diluted = with_dilutions(deck, problem, volume, tolerance=tolerance, min_ul=min_ul, exclude=well_slot)
        if diluted is not None:
            problem, solution, chains = diluted
    if solution is None:
        reasons += diagnose(problem, volume, tolerance, min_ul, allow_dilution)
        raise InfeasibleRecipeError(tuple(reasons + dest_reasons))

    chains = [c for c in chains if solution.volumes_ul[problem.sources.index(c.source)] > 0]
    transfers, tips = plan_transfers(
        deck, problem, solution, chains, destination=well_slot or "?", reasons=reasons
    )
    if reasons or dest_reasons or well_slot is None:
        raise InfeasibleRecipeError(tuple(reasons + dest_reasons))
    predicted = mix(
        (s.composition, v) for s, v in zip(problem.sources, solution.volumes_ul, strict=True) if v > 0
    )
    return Recipe(
        target=target,
        destination=well_slot,
        total_volume_ul=volume,
        transfers=tuple(transfers),
        predicted=predicted,
        tolerance=tolerance,
        tips_needed=tips,
        intermediates={c.source.name: c.source.composition for c in chains},
    )
