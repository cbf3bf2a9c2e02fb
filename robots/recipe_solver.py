"""The linear algebra of a recipe: the forward model `mix` and the programs that invert it.

`mix` pours volumes of liquids together (ideal mixing, after `tandem.composition`).
`Problem` states a target over a list of sources (stocks, diluted intermediates)
as (mixed-integer) linear programs: how close any mixture of the sources comes
(`closest`), and which volumes make the target within a tolerance, each zero or
pipettable, none more than its source has left (`solve`); it makes the optimiser's
answer exact where the chosen sources allow. Turning volumes into transfers is
`tandem.robots.recipe_steps`; explaining a failure is `tandem.robots.recipe_feasibility`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tandem.components import Components
from tandem.composition import Composition, union
from tandem.robots.milp import solve_program
from tandem.robots.recipe_feasibility import InvalidRecipeRequestError

#: Relative headroom kept below the tolerance inside the optimiser, so that its own
#: feasibility tolerance cannot push the exact result over the limit.
_SOLVER_MARGIN = 1e-4
_SOLVER_FLOOR = 1e-7


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
class Source:
    """Something to pipette from: a stock or a filled well, with what is left to take."""

    name: str
    composition: Composition
    available_ul: float


@dataclass(frozen=True)
class Solution:
    volumes_ul: tuple[float, ...]  # one per source, in order
    deviation: float  # exact, recomputed from the volumes


class Problem:
    """The target as linear algebra over a list of sources.

    With `u_i` the fraction of the final volume taken from source `i` (Σ u = 1, so the
    total volume is fixed), the mass of component `c` per µL of mixture is
    `Σ_i u_i ρ_i w_ic` and the mixture density `ρ·u`. The mass fraction of `c` is
    within `tol` of `t_c` exactly when `|Σ_i u_i ρ_i (w_ic - t_c)| <= tol · ρ·u`:
    linear in `u`. So every question below is a (mixed-integer) linear program.
    """

    def __init__(self, sources: Sequence[Source], target: Composition, names: Sequence[str]) -> None:
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
    ) -> Solution | None:
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
    ) -> Solution | None:
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
        solution = Solution(volumes, self.deviation(volumes))
        polished = self._polish(used, volume, min_volume_ul=min_volume_ul, upper_ul=ub * volume)
        if polished is not None and polished.deviation < solution.deviation:
            solution = polished
        if tolerance is not None and solution.deviation > tolerance:
            return None  # the exact result is what counts, not the solver's view of it
        return solution

    def _polish(
        self, used: np.ndarray, volume: float, *, min_volume_ul: float | None, upper_ul: np.ndarray
    ) -> Solution | None:
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
        return Solution(volumes, self.deviation(volumes))

    def deviation(self, volumes: Sequence[float]) -> float:
        made = mix((s.composition, v) for s, v in zip(self.sources, volumes, strict=True) if v > 0)
        return made.max_abs_difference(self.target)
