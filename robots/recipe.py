"""Recipes: which stock volumes, pipetted into which well, make a target composition.

The mixing math follows `tandem.composition` (ideal mixing): the volume of a
stock is the volume of its liquids, so the volumes of stocks pipetted together
add exactly, and the mass of each component is linear in the stock volumes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from tandem.components import Components
from tandem.composition import Composition, union
from tandem.errors import TandemError
from tandem.robots.deck import Deck, Pipette, Well
from tandem.robots.milp import solve_program


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


# -- the solver ------------------------------------------------------------------------------------

#: Relative headroom kept below the tolerance inside the optimiser, so that its own
#: feasibility tolerance cannot push the exact result over the limit.
_SOLVER_MARGIN = 1e-4
_SOLVER_FLOOR = 1e-7
#: A diluted intermediate is made so that the volume then taken from it is about this
#: many times the smallest transfer, leaving the re-solve room to move.
_DILUTION_HEADROOM = 2.0


def mix(parts: Iterable[tuple[Composition, float]]) -> Composition:
    """The composition (with total) of the given volumes (µL) of liquids poured together.

    Ideal mixing: masses add, and so do the volumes of liquids. This is the forward
    model the solver inverts; tests and simulated robots use it to check recipes.
    """
    masses: dict[str, float] = {}
    defs: list[Components] = []
    for comp, volume_ul in parts:
        if not (math.isfinite(volume_ul) and volume_ul >= 0):
            raise InvalidRecipeRequestError(
                f"a volume to mix must be a finite number >= 0, got {volume_ul!r}"
            )
        if volume_ul == 0:
            continue
        mass_mg = volume_ul * comp.density_g_per_ml  # g/mL == mg/µL
        defs.append(comp.components)
        for name, w in comp.mass_fractions.items():
            masses[name] = masses.get(name, 0.0) + w * mass_mg
    if not masses:
        raise InvalidRecipeRequestError("nothing to mix: every volume is zero")
    components = union(defs)
    total = math.fsum(masses.values())
    if not total > 0:  # subnormal volumes: each component's share of the mass underflowed to zero
        raise InvalidRecipeRequestError("nothing to mix: the volumes are too small to carry any mass")
    return Composition(components, tuple(masses.get(n, 0.0) / total for n in components), total)


@dataclass(frozen=True)
class _Source:
    """Something to pipette from: a stock or a filled well, with what is left to take."""

    name: str
    composition: Composition
    available_ul: float


@dataclass(frozen=True)
class _Solution:
    volumes_ul: tuple[float, ...]  # one per source, in order
    deviation: float  # exact, recomputed from the volumes


class _Problem:
    """The target as linear algebra over a list of sources.

    With `u_i` the fraction of the final volume taken from source `i` (Σ u = 1, so the
    total volume is fixed), the mass of component `c` per µL of mixture is
    `Σ_i u_i ρ_i w_ic` and the mixture density `ρ·u`. The mass fraction of `c` is
    within `tol` of `t_c` exactly when `|Σ_i u_i ρ_i (w_ic - t_c)| <= tol · ρ·u`:
    linear in `u`. So every question below is a (mixed-integer) linear program.
    """

    def __init__(self, sources: Sequence[_Source], target: Composition, names: Sequence[str]) -> None:
        self.sources = tuple(sources)
        self.target = target
        self.names = tuple(names)
        t = np.array([target.mass_fraction(n) for n in names])
        w = np.array([[s.composition.mass_fraction(n) for s in sources] for n in names]).reshape(
            len(names), -1
        )
        self.rho = np.array([s.composition.density_g_per_ml for s in sources])
        self.t = t
        self.w = w  # components x sources
        self.a = (w - t[:, None]) * self.rho[None, :]  # components x sources

    def closest(self) -> tuple[float, np.ndarray]:
        """Smallest reachable max-deviation in mass fraction, and the stock mass fractions reaching it.

        In mass fractions `x` of the sources, the mixture is `W x`: the reachable set is
        the convex hull of the sources, and the L∞ distance to it is an LP.
        """
        n, m = len(self.sources), len(self.names)
        c = np.zeros(n + 1)
        c[-1] = 1.0
        a = np.block(
            [[self.w, -np.ones((m, 1))], [-self.w, -np.ones((m, 1))], [np.ones((1, n)), np.zeros((1, 1))]]
        )
        res = solve_program(
            c,
            a,
            np.concatenate([np.full(2 * m, -np.inf), [1.0]]),
            np.concatenate([self.t, -self.t, [1.0]]),
            lower=np.zeros(n + 1),
            upper=np.full(n + 1, np.inf),
        )
        if res.x is None:  # pragma: no cover - the LP is always feasible (any convex combination)
            raise RuntimeError(f"closest-composition LP failed: {res.message}")
        distance = float(res.x[-1])
        # The L∞ optimum leaves the other components free up to that distance; of those
        # mixtures report the one with the least of what the target must not hold, so that
        # an unwanted component is reported only when it is forced in.
        unwanted = (self.t == 0).astype(float)
        slack = distance * (1 + 1e-9) + 1e-12
        res2 = solve_program(
            unwanted @ self.w,
            np.vstack([self.w, np.ones((1, n))]),
            np.concatenate([self.t - slack, [1.0]]),
            np.concatenate([self.t + slack, [1.0]]),
            lower=np.zeros(n),
            upper=np.full(n, np.inf),
        )
        x = res2.x if res2.x is not None else res.x[:n]
        return distance, np.clip(x, 0.0, None)

    def solve(
        self,
        total_volume_ul: float,
        *,
        tolerance: float | None,
        min_volume_ul: float | None,
        respect_stock: bool,
    ) -> _Solution | None:
        """Volumes per source that make the target, or None when none exist.

        `tolerance=None` drops the tolerance constraint (to find the best pipettable
        result); `min_volume_ul=None` lets any volume through (a source is then used
        with any volume); `respect_stock=False` ignores what is left in the sources.
        Those relaxations are how an infeasible request is diagnosed.
        Among feasible answers the smallest deviation wins, then the fewest sources.
        """
        n, m = len(self.sources), len(self.names)
        if n == 0:
            return None
        volume = total_volume_ul
        ub = np.array([min(1.0, s.available_ul / volume) if respect_stock else 1.0 for s in self.sources])
        # variables: u (n), z (n binaries "source used", only with a minimum volume), e (max |a_c·u|)
        nz = n if min_volume_ul is not None else 0
        n_var = n + nz + 1
        # e is in mg/mL, so HiGHS's absolute gap (1e-6) is ~1e-9 in mass fraction; a large
        # cost instead would let it trade bound violations for objective. The per-source
        # cost only breaks ties: fewer sources, fewer transfers.
        cost = np.zeros(n_var)
        cost[-1] = 1.0
        cost[n : n + nz] = 1e-7
        rows: list[np.ndarray] = []
        lo: list[float] = []
        hi: list[float] = []

        def add(row: np.ndarray, low: float, high: float) -> None:
            rows.append(row)
            lo.append(low)
            hi.append(high)

        for k in range(m):
            for sign in (1.0, -1.0):
                row = np.zeros(n_var)
                row[:n] = sign * 1000.0 * self.a[k]
                row[-1] = -1.0
                add(row, -np.inf, 0.0)
                if tolerance is not None:
                    # below ~1e-7 the optimiser cannot tell; its choice of sources is then
                    # made exact by `_polish` and checked against the real tolerance below
                    tol = max(tolerance * (1 - _SOLVER_MARGIN), _SOLVER_FLOOR)
                    row = np.zeros(n_var)
                    row[:n] = 1000.0 * (sign * self.a[k] - tol * self.rho)
                    add(row, -np.inf, 0.0)
        row = np.zeros(n_var)
        row[:n] = 1.0
        add(row, 1.0, 1.0)
        for i in range(nz):  # u_i <= ub_i z_i ; u_i >= lb z_i: zero, or at least the smallest transfer
            row = np.zeros(n_var)
            row[i], row[n + i] = 1.0, -ub[i]
            add(row, -np.inf, 0.0)
            row = np.zeros(n_var)
            row[i], row[n + i] = 1.0, -(min_volume_ul or 0.0) / volume
            add(row, 0.0, np.inf)
        res = solve_program(
            cost,
            np.vstack(rows),
            np.array(lo),
            np.array(hi),
            lower=np.zeros(n_var),
            upper=np.concatenate([ub, np.ones(nz), [np.inf]]),
            integral=np.concatenate([np.zeros(n, dtype=bool), np.ones(nz, dtype=bool), [False]]),
        )
        if res.x is None:
            return None
        used = res.x[n : n + nz] > 0.5 if nz else res.x[:n] > 1e-12
        return self._finish(res.x[:n], used, volume, tolerance=tolerance, min_volume_ul=min_volume_ul, ub=ub)

    def _finish(
        self,
        u: np.ndarray,
        used: np.ndarray,
        volume: float,
        *,
        tolerance: float | None,
        min_volume_ul: float | None,
        ub: np.ndarray,
    ) -> _Solution | None:
        """Volumes from the optimiser's fractions: cleaned, made exact where possible, and checked."""
        u = np.where(used, np.clip(u, 0.0, None), 0.0)
        u /= u.sum()
        v = u * volume
        if min_volume_ul is not None and np.any(v > 0):
            # the optimiser meets bounds to ~1e-9; lift such near-misses onto the bound and
            # take the difference from the largest volume, so the total stays exact
            v = np.where(v > 0, np.maximum(v, min_volume_ul), 0.0)
            v[int(np.argmax(v))] -= v.sum() - volume
        volumes = tuple(float(x) for x in v)
        solution = _Solution(volumes, self.deviation(volumes))
        polished = self._polish(used, volume, min_volume_ul=min_volume_ul, upper_ul=ub * volume)
        if polished is not None and polished.deviation < solution.deviation:
            solution = polished
        if tolerance is not None and solution.deviation > tolerance:
            return None  # the exact result is what counts, not the solver's view of it
        return solution

    def _polish(
        self, used: np.ndarray, volume: float, *, min_volume_ul: float | None, upper_ul: np.ndarray
    ) -> _Solution | None:
        """Solve the mass balance on the sources the optimiser chose, to machine precision.

        The optimiser meets its constraints to ~1e-7; when the target is exactly reachable
        with the chosen sources, the linear system gives the exact volumes instead.
        """
        idx = np.flatnonzero(used)
        if idx.size == 0:
            return None
        a = np.vstack([self.w[:, idx], np.ones(idx.size)])
        b = np.concatenate([self.t, [1.0]])
        x, *_ = np.linalg.lstsq(a, b, rcond=None)
        if np.any(x < 0) or np.max(np.abs(a @ x - b)) > 1e-12:
            return None
        per_mg = x / self.rho[idx]  # µL of each source per mg of mixture
        v = np.zeros(len(self.sources))
        v[idx] = volume * per_mg / per_mg.sum()
        if min_volume_ul is not None and np.any(v[idx] < min_volume_ul):
            return None
        if np.any(v > upper_ul * (1 + 1e-12)):
            return None
        volumes = tuple(float(x) for x in v)
        return _Solution(volumes, self.deviation(volumes))

    def deviation(self, volumes: Sequence[float]) -> float:
        made = mix((s.composition, v) for s, v in zip(self.sources, volumes, strict=True) if v > 0)
        return made.max_abs_difference(self.target)


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
    _check_request(deck, target, total_volume_ul, tolerance)
    volume = float(total_volume_ul)
    target = target.with_total_volume(volume)
    names = list(dict.fromkeys([*deck.components, *target.components]))
    reasons: list[Reason] = []

    well_slot, dest_reasons = _pick_destination(deck, destination, volume)
    reasons += _missing_components(deck, target)
    if not deck.pipettes:
        reasons.append(Reason(ReasonCode.NO_PIPETTE, "the deck has no pipette"))
    sources = [_Source(s.name, s.composition, s.available_ul) for s in deck.stocks]
    problem = _Problem(sources, target, names)

    distance, closest_x = problem.closest() if sources else (math.inf, np.zeros(0))
    if distance > tolerance:
        reasons += _out_of_reach(problem, distance, closest_x, tolerance)
    if reasons or not deck.pipettes:
        raise InfeasibleRecipeError(tuple(reasons + dest_reasons))

    min_ul = min(p.min_volume_ul for p in deck.pipettes)
    solution = problem.solve(volume, tolerance=tolerance, min_volume_ul=min_ul, respect_stock=True)
    chains: list[_Chain] = []
    if solution is None and allow_dilution:
        diluted = _with_dilutions(
            deck, problem, volume, tolerance=tolerance, min_ul=min_ul, exclude=well_slot
        )
        if diluted is not None:
            problem, solution, chains = diluted
    if solution is None:
        reasons += _diagnose(problem, volume, tolerance, min_ul, allow_dilution)
        raise InfeasibleRecipeError(tuple(reasons + dest_reasons))

    chains = [c for c in chains if solution.volumes_ul[problem.sources.index(c.source)] > 0]
    transfers, tips = _transfers(
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


def _transfers(
    deck: Deck,
    problem: _Problem,
    solution: _Solution,
    chains: Sequence[_Chain],
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


def _check_request(deck: Deck, target: Composition, total_volume_ul: float, tolerance: float) -> None:
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


def _pick_destination(deck: Deck, destination: str | None, volume: float) -> tuple[str | None, list[Reason]]:
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


def _missing_components(deck: Deck, target: Composition) -> list[Reason]:
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


def _out_of_reach(problem: _Problem, distance: float, x: np.ndarray, tolerance: float) -> list[Reason]:
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


def _diagnose(
    problem: _Problem, volume: float, tolerance: float, min_ul: float, tried_dilution: bool
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
class _Chain:
    """Serial dilution of one stock.

    `steps` (source, well, volume) fill the wells in order; `source` is the last well, offered to the solver.
    """

    steps: tuple[tuple[str, str, float], ...]
    source: _Source


def _with_dilutions(
    deck: Deck, problem: _Problem, volume: float, *, tolerance: float, min_ul: float, exclude: str | None
) -> tuple[_Problem, _Solution, list[_Chain]] | None:
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
    chains: list[_Chain] = []
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
    again = _Problem(sources, problem.target, problem.names)
    solution = again.solve(volume, tolerance=tolerance, min_volume_ul=min_ul, respect_stock=True)
    return None if solution is None else (again, solution, chains)


def _plan_chain(
    stock: _Source,
    diluent: _Source,
    needed_ul: float,
    *,
    min_ul: float,
    free: Sequence[Well],
    available: dict[str, float],
) -> _Chain | None:
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
    return _Chain(tuple(steps), _Source(wells[-1].slot, comp, left))
