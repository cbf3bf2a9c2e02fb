"""Pipetting steps: the transfers that carry out a solved recipe, and the diluted intermediates it may need.

A volume is split into equal transfers of one pipette (`plan_transfers`), the
bulk liquid first; a stock needed in less than the smallest transfer can first be
diluted, in one or more steps, into free wells (`with_dilutions`), and the last
intermediate offered to the solver in its place. Shortfalls found on the way
(no pipette for a volume, too few tips) are added to the caller's reasons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tandem.robots.deck import Deck, Pipette, Well
from tandem.robots.recipe_feasibility import Reason, ReasonCode
from tandem.robots.recipe_solver import Problem, Solution, Source, mix

#: A diluted intermediate is made so that the volume then taken from it is about this
#: many times the smallest transfer, leaving the re-solve room to move.
_DILUTION_HEADROOM = 2.0


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


def plan_transfers(
    deck: Deck,
    problem: Problem,
    solution: Solution,
    chains: Sequence[Chain],
    *,
    destination: str,
    reasons: list[Reason],
) -> tuple[list[Transfer], dict[str, int]]:
    """Transfers in execution order (intermediates first) and the tips they use, one fresh tip each."""
    transfers: list[Transfer] = []
    for chain in chains:
        for src, dst, v in chain.steps:
            transfers += _split(deck.pipettes, src, dst, v, reasons)
    main = sorted(
        ((s.name, v) for s, v in zip(problem.sources, solution.volumes_ul, strict=True) if v > 0),
        key=lambda sv: -sv[1],  # the bulk liquid first, the small additions into it
    )
    for name, v in main:
        transfers += _split(deck.pipettes, name, destination, v, reasons)
    tips: dict[str, int] = {}
    for t in transfers:
        tip = deck.pipette(t.pipette).tip_type
        tips[tip] = tips.get(tip, 0) + 1
    for tip, n in tips.items():
        if deck.tips_left(tip) < n:
            reasons.append(
                Reason(
                    ReasonCode.NO_TIPS,
                    f"the recipe needs {n} {tip!r} tips but only {deck.tips_left(tip)} are left",
                    {"tip_type": tip, "needed": n, "left": deck.tips_left(tip)},
                )
            )
    return transfers, tips


def _split(
    pipettes: Sequence[Pipette], source: str, destination: str, volume: float, reasons: list[Reason]
) -> list[Transfer]:
    """Equal transfers moving `volume`: fewest transfers, then best accuracy, then the smaller pipette."""
    listing = ", ".join(f"{p.name} {p.min_volume_ul:g}-{p.max_volume_ul:g} µL" for p in pipettes)
    options = [
        (k, p.relative_uncertainty, p.max_volume_ul, p.name)
        for p in pipettes
        if (k := p.transfers_for(volume))
    ]
    if not options:
        reasons.append(
            Reason(
                ReasonCode.BELOW_MIN_VOLUME,
                f"no pipette can move {volume:.4g} µL from {source!r} in equal transfers "
                f"(pipettes: {listing})",
                {"source": source, "needed_ul": volume},
            )
        )
        return []
    k, _, _, name = min(options)
    return [Transfer(source, destination, volume / k, name) for _ in range(k)]


@dataclass(frozen=True)
class Chain:
    """Serial dilution of one stock.

    `steps` (source, well, volume) fill the wells in order; `source` is the last well, offered to the solver.
    """

    steps: tuple[tuple[str, str, float], ...]
    source: Source


def with_dilutions(
    deck: Deck, problem: Problem, volume: float, *, tolerance: float, min_ul: float, exclude: str | None
) -> tuple[Problem, Solution, list[Chain]] | None:
    """Dilute each stock needed below the smallest transfer into free wells, then solve again."""
    relaxed = problem.solve(volume, tolerance=tolerance, min_volume_ul=None, respect_stock=True)
    if relaxed is None:
        return None
    vols = dict(zip((s.name for s in problem.sources), relaxed.volumes_ul, strict=True))
    small = [s for s in problem.sources if 0 < vols[s.name] < min_ul]
    big = [s for s in problem.sources if vols[s.name] >= min_ul]
    if not small or not big:
        return None
    diluent = max(big, key=lambda s: vols[s.name])  # the bulk liquid of the target itself
    free = [w for w in deck.empty_wells() if w.slot != exclude]
    available = {s.name: s.available_ul for s in problem.sources}
    chains: list[Chain] = []
    for stock in small:
        chain = _plan_chain(stock, diluent, vols[stock.name], min_ul=min_ul, free=free, available=available)
        if chain is None:
            continue
        chains.append(chain)
        used = {dst for _, dst, _ in chain.steps}
        free = [w for w in free if w.slot not in used]
    if not chains:
        return None
    sources = [replace(s, available_ul=available[s.name]) for s in problem.sources] + [
        c.source for c in chains
    ]
    again = Problem(sources, problem.target, problem.names)
    solution = again.solve(volume, tolerance=tolerance, min_volume_ul=min_ul, respect_stock=True)
    return None if solution is None else (again, solution, chains)


def _plan_chain(
    stock: Source,
    diluent: Source,
    needed_ul: float,
    *,
    min_ul: float,
    free: Sequence[Well],
    available: dict[str, float],
) -> Chain | None:
    """Dilute `stock` by `factor` over as few wells as needed; each step moves at least `min_ul` of each part.

    Updates `available` (stock and diluent consumed) only when the chain is possible.
    """
    factor = _DILUTION_HEADROOM * min_ul / needed_ul
    wells = sorted(free, key=lambda w: -w.capacity_ul)
    if not wells:
        return None
    usable = wells[0].capacity_ul
    # a step diluting by f moves min_ul of the stock and (f-1)·min_ul of diluent at least
    max_step = usable / min_ul
    if max_step < 2:
        return None
    n_steps = max(1, math.ceil(math.log(factor) / math.log(max_step) - 1e-12))
    if n_steps > len(wells):
        return None
    step = factor ** (1.0 / n_steps)
    wells = list(wells[:n_steps])
    # volumes from the last step back: each must supply the next and keep its dead volume
    made: list[float] = [0.0] * n_steps
    need = _DILUTION_HEADROOM * min_ul * 1.5  # what the final mix may take from the last intermediate
    for j in reversed(range(n_steps)):
        well = wells[j]
        # stock part made/step and diluent part made·(1 - 1/step) must each be a transfer
        made[j] = max(step * min_ul, min_ul * step / (step - 1), need + well.dead_volume_ul)
        if made[j] > well.capacity_ul:
            return None
        need = made[j] / step
    consumption = {stock.name: made[0] / step, diluent.name: sum(m - m / step for m in made)}
    if any(available.get(name, 0.0) < v for name, v in consumption.items()):
        return None
    for name, v in consumption.items():
        available[name] -= v
    steps: list[tuple[str, str, float]] = []
    comp = stock.composition
    src = stock.name
    for j, well in enumerate(wells):
        part = made[j] / step
        steps.append((diluent.name, well.slot, made[j] - part))
        steps.append((src, well.slot, part))
        comp = mix([(diluent.composition, made[j] - part), (comp, part)])
        src = well.slot
    left = made[-1] - wells[-1].dead_volume_ul
    return Chain(tuple(steps), Source(wells[-1].slot, comp, left))
