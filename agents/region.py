"""The composition space an agent may suggest from.

Agents work in the space of mass fractions of the non-solvent components (the
solvent is the rest, and each station may use its own solvent: H2O for X-rays,
D2O for neutrons). A `FeasibleRegion` is that space cut down to what a campaign
explores and what the labs can make:

* per-component bounds on the mass fraction,
* a cap on the sum of the non-solvent fractions (the solvent never drops below
  ``1 - max_total``),
* a stock check, wired by the campaign to the recipe solver, that says whether a
  station's deck can make a target at all.

Inside the models every point lives in the unit cube spanned by the bounds
(``u = (w - lower) / (upper - lower)``), where the sum cap is one linear
inequality that BoTorch's optimisers take directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.quasirandom import SobolEngine

from tandem.agents.errors import InvalidRegionError
from tandem.components import Component, Components
from tandem.composition import Composition
from tandem.errors import TandemError

#: ``check(station, target) -> None`` if the station's stocks can make `target`, else the reason why not.
StockCheck = Callable[[str, Composition], "str | None"]

#: Compositions this close outside the bounds still count as inside (pipetting rounding).
BOUNDS_TOLERANCE = 1e-6


def stock_check_from(
    solve: Callable[[str, Composition], object], errors: type[Exception] | tuple[type[Exception], ...]
) -> StockCheck:
    """Turn a recipe solver that raises `errors` for impossible targets into a `StockCheck`.

    For example ``stock_check_from(lambda station, c: solve_recipe(decks[station], c),
    InfeasibleRecipeError)``. Any other exception propagates: it is a bug, not a verdict.
    """

    def check(station: str, target: Composition) -> str | None:
        try:
            solve(station, target)
        except errors as exc:
            return str(exc) or type(exc).__name__
        return None

    return check


@dataclass(frozen=True)
class FeasibleRegion:
    """Bounds, the sum cap and the stocks: where suggestions may go.

    `components` are the non-solvent components in the order of the model's
    dimensions; `bounds` maps each of them to ``(lower, upper)`` mass fractions;
    `solvents` maps a station to the solvent its lab uses (`default_solvent` for
    any other station).
    """

    components: Components
    bounds: Mapping[str, tuple[float, float]]
    default_solvent: Component
    solvents: Mapping[str, Component] = field(default_factory=dict)
    max_total: float = 1.0
    stock_check: StockCheck | None = field(default=None, compare=False)
    #: how far (mass fraction) a *measured* composition may lie outside the bounds or over the cap and
    #: still be learnt from: a robot never makes the target exactly, and a sample targeted on the cap
    #: comes out a little over it about half the time. Suggestions themselves keep to the region.
    measured_tolerance: float = BOUNDS_TOLERANCE

    def __post_init__(self) -> None:
        if len(self.components) == 0:
            raise InvalidRegionError("a feasible region needs at least one non-solvent component")
        names = list(self.components)
        if set(self.bounds) != set(names):
            raise InvalidRegionError(
                f"bounds must name exactly the components {names}, got {sorted(self.bounds)}"
            )
        for name in names:
            lo, hi = self.bounds[name]
            if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi <= 1.0):
                raise InvalidRegionError(
                    f"bounds of {name!r} must satisfy 0 <= lower < upper <= 1, got ({lo!r}, {hi!r})"
                )
        if not (math.isfinite(self.max_total) and 0.0 < self.max_total <= 1.0):
            raise InvalidRegionError(f"max_total must lie in (0, 1], got {self.max_total!r}")
        if not (math.isfinite(self.measured_tolerance) and 0.0 <= self.measured_tolerance < 0.1):
            raise InvalidRegionError(
                f"measured_tolerance must lie in [0, 0.1) (a mass fraction), got {self.measured_tolerance!r}"
            )
        if float(self.lower.sum()) >= self.max_total:
            raise InvalidRegionError(
                f"the lower bounds sum to {float(self.lower.sum()):.4g}, which leaves nothing below "
                f"max_total={self.max_total:.4g}; lower some bounds or raise max_total"
            )
        for station, solvent in {"(default)": self.default_solvent, **self.solvents}.items():
            if not solvent.is_liquid:
                raise InvalidRegionError(f"the solvent of {station} ({solvent.name!r}) must be a liquid")
            if solvent.name in self.components:
                raise InvalidRegionError(
                    f"the solvent {solvent.name!r} cannot also be a modelled component; it is the rest"
                )
        object.__setattr__(self, "bounds", {n: (float(lo), float(hi)) for n, (lo, hi) in self.bounds.items()})

    # -- geometry -----------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.components)

    @property
    def dim(self) -> int:
        return len(self.components)

    @property
    def lower(self) -> np.ndarray:
        return np.array([self.bounds[n][0] for n in self.names])

    @property
    def upper(self) -> np.ndarray:
        return np.array([self.bounds[n][1] for n in self.names])

    @property
    def sum_cap_binds(self) -> bool:
        """Whether the sum cap cuts the box at all (else the region is the whole box)."""
        return float(self.upper.sum()) > self.max_total

    def unit_bounds(self) -> torch.Tensor:
        """Bounds of the model space for BoTorch: ``2 x d`` zeros and ones."""
        return torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).double()

    def inequality_constraints(self) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """The sum cap in the unit cube as BoTorch wants it: ``sum(coef * u[idx]) >= rhs``."""
        if not self.sum_cap_binds:
            return []
        width = self.upper - self.lower
        indices = torch.arange(self.dim)
        coefficients = torch.as_tensor(-width, dtype=torch.float64)
        return [(indices, coefficients, -(self.max_total - float(self.lower.sum())))]

    def to_unit(self, fractions: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(fractions, dtype=np.float64))
        lo = torch.as_tensor(self.lower)
        return (x - lo) / torch.as_tensor(self.upper - self.lower)

    def from_unit(self, u: torch.Tensor | np.ndarray) -> np.ndarray:
        u_np = u.detach().cpu().numpy() if isinstance(u, torch.Tensor) else np.asarray(u, dtype=np.float64)
        return self.lower + u_np * (self.upper - self.lower)

    def vector(self, composition: Mapping[str, float]) -> np.ndarray:
        """Mass fractions of `composition` in the model's component order (KeyError if one is missing)."""
        return np.array([float(composition[n]) for n in self.names])

    # -- membership ---------------------------------------------------------------------------

    def why_outside(self, composition: Mapping[str, float]) -> str | None:
        """None if measured `composition` lies in the bounds and under the cap (within
        `measured_tolerance`), else what is wrong with it."""
        unknown = sorted(set(composition) - set(self.names))
        if unknown:
            return f"components {unknown} are not modelled (the region has {list(self.names)})"
        missing = [n for n in self.names if n not in composition]
        if missing:
            return f"no mass fraction for {missing}"
        values = {n: float(composition[n]) for n in self.names}
        bad = [n for n, w in values.items() if not math.isfinite(w)]
        if bad:
            return f"non-finite mass fraction for {bad}"
        for name, w in values.items():
            lo, hi = self.bounds[name]
            if w < lo - self.measured_tolerance or w > hi + self.measured_tolerance:
                return f"{name} = {w:.6g} lies outside its bounds [{lo:.6g}, {hi:.6g}]"
        total = math.fsum(values.values())
        if total > self.max_total + self.measured_tolerance:
            return f"the non-solvent fractions sum to {total:.6g}, above max_total={self.max_total:.6g}"
        return None

    def solvent_for(self, station: str) -> Component:
        return self.solvents.get(station, self.default_solvent)

    def composition(self, fractions: np.ndarray | Mapping[str, float], station: str) -> Composition:
        """The full `Composition` (the station's solvent takes the rest) of a point of the region."""
        values = (
            {n: float(fractions[n]) for n in self.names}
            if isinstance(fractions, Mapping)
            else dict(zip(self.names, (float(w) for w in np.asarray(fractions)), strict=True))
        )
        values = {n: min(max(w, 0.0), 1.0) for n, w in values.items()}
        solvent = self.solvent_for(station)
        comps = Components([*self.components.values(), solvent])
        return Composition.from_mass_fractions(comps, values, balance=solvent.name)

    def why_infeasible(self, fractions: np.ndarray, station: str) -> str | None:
        """None if `station` can make the point `fractions` (mass fractions), else the reason."""
        reason = self.why_outside(dict(zip(self.names, map(float, fractions), strict=True)))
        if reason is not None:
            return reason
        try:
            target = self.composition(fractions, station)
        except TandemError as exc:
            return str(exc)
        if self.stock_check is None:
            return None
        return self.stock_check(station, target)

    # -- sampling -----------------------------------------------------------------------------

    def sobol(self, n: int, seed: int) -> torch.Tensor:
        """`n` scrambled-Sobol points of the region in the unit cube (``n x d``), cap respected.

        Points over the sum cap are dropped and more are drawn, so the design stays
        low-discrepancy within the region.
        """
        if n < 0:
            raise InvalidRegionError(f"cannot draw a negative number of points ({n})")
        engine = SobolEngine(self.dim, scramble=True, seed=seed)
        kept: list[torch.Tensor] = []
        have = 0
        for _ in range(64):
            if have >= n:
                break
            batch = engine.draw(max(2 * (n - have), 16), dtype=torch.float64)
            ok = self.inside_unit(batch)
            kept.append(batch[ok])
            have += int(ok.sum())
        points = torch.cat(kept) if kept else torch.empty(0, self.dim, dtype=torch.float64)
        if len(points) < n:
            raise InvalidRegionError("the sum cap leaves too small a share of the box to sample")
        return points[:n]

    def inside_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Which rows of `u` (unit-cube points) respect the sum cap."""
        fractions = torch.as_tensor(self.lower) + u * torch.as_tensor(self.upper - self.lower)
        return fractions.sum(-1) <= self.max_total + BOUNDS_TOLERANCE

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the stock check is wiring, not data, and is not saved)."""
        return {
            "components": [_component_dict(c) for c in self.components.values()],
            "bounds": {n: list(b) for n, b in self.bounds.items()},
            "default_solvent": _component_dict(self.default_solvent),
            "solvents": {s: _component_dict(c) for s, c in self.solvents.items()},
            "max_total": self.max_total,
            "measured_tolerance": self.measured_tolerance,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], stock_check: StockCheck | None = None) -> FeasibleRegion:
        try:
            return cls(
                components=Components(_component(c) for c in data["components"]),
                bounds={str(n): (float(b[0]), float(b[1])) for n, b in data["bounds"].items()},
                default_solvent=_component(data["default_solvent"]),
                solvents={str(s): _component(c) for s, c in (data.get("solvents") or {}).items()},
                max_total=float(data.get("max_total", 1.0)),
                stock_check=stock_check,
                measured_tolerance=float(data.get("measured_tolerance", BOUNDS_TOLERANCE)),
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise InvalidRegionError(f"malformed feasible-region description: {exc!r}") from None


def _component_dict(c: Component) -> dict[str, Any]:
    return {
        "name": c.name,
        "formula": c.formula,
        "density_g_per_ml": c.density_g_per_ml,
        "role": c.role.value,
    }


def _component(data: Mapping[str, Any]) -> Component:
    return Component(
        str(data["name"]), str(data["formula"]), float(data["density_g_per_ml"]), data.get("role", "liquid")
    )


def region_from_bounds(
    components: Components | Iterable[Component],
    bounds: Mapping[str, tuple[float, float]],
    solvent: Component,
    *,
    solvents: Mapping[str, Component] | None = None,
    max_total: float = 1.0,
    stock_check: StockCheck | None = None,
) -> FeasibleRegion:
    """A region over the components named in `bounds` (in that order), picked from `components`."""
    items = components.values() if isinstance(components, Mapping) else components
    by_name = {c.name: c for c in items}
    missing = [n for n in bounds if n not in by_name]
    if missing:
        raise InvalidRegionError(f"bounds name unknown components {missing}; known: {sorted(by_name)}")
    return FeasibleRegion(
        components=Components(by_name[n] for n in bounds),
        bounds=bounds,
        default_solvent=solvent,
        solvents=dict(solvents or {}),
        max_total=max_total,
        stock_check=stock_check,
    )
