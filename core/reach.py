"""Which compositions a set of stocks can make at all, and the corners of a composition space.

Mixing stocks adds their masses, so the mass fractions of any mixture are a convex
combination of the stocks' mass fractions (weighted by the mass taken from each).
What a deck can make, volumes and inventory aside, is therefore the convex hull of
its stocks; a campaign's space (a box of bounds cut by linear constraints) is a
convex polytope, and it lies inside that hull exactly when each of its vertices
does. Both questions are small linear programs, answered here before anything runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

#: Vertex enumeration tries every choice of `d` active constraints; beyond this many it is too slow.
MAX_ENUMERATED = 200_000
_FEASIBILITY_EPS = 1e-9


@dataclass(frozen=True)
class Halfspace:
    """``coefficients · w <= bound`` over the named mass fractions (absent names count zero)."""

    coefficients: Mapping[str, float]
    bound: float


class SpaceTooLargeError(RuntimeError):
    """The space has too many constraint combinations to enumerate its vertices."""


def polytope_vertices(
    names: Sequence[str],
    bounds: Mapping[str, tuple[float, float]],
    halfspaces: Sequence[Halfspace] = (),
) -> list[dict[str, float]]:
    """The vertices of ``{lower <= w <= upper, every halfspace, sum(w) <= 1}``; empty when infeasible.

    Vertices are found by solving every choice of `d` active constraints and keeping
    the feasible, distinct solutions: exact for the few dimensions a formulation
    space has (d = 3 needs at most a few hundred 3x3 solves).
    """
    d = len(names)
    rows: list[np.ndarray] = []
    rhs: list[float] = []
    for i, name in enumerate(names):
        lo, hi = bounds[name]
        unit = np.zeros(d)
        unit[i] = 1.0
        rows += [unit, -unit]
        rhs += [hi, -lo]
    for h in halfspaces:
        rows.append(np.array([float(h.coefficients.get(n, 0.0)) for n in names]))
        rhs.append(float(h.bound))
    rows.append(np.ones(d))  # the solvent cannot be negative
    rhs.append(1.0)
    a = np.vstack(rows)
    b = np.asarray(rhs)
    if math.comb(len(a), d) > MAX_ENUMERATED:
        raise SpaceTooLargeError(
            f"{len(a)} constraints in {d} dimensions have {math.comb(len(a), d)} combinations"
        )
    vertices: list[np.ndarray] = []
    for active in itertools.combinations(range(len(a)), d):
        sub = a[list(active)]
        if abs(np.linalg.det(sub)) < 1e-12:
            continue
        w = np.linalg.solve(sub, b[list(active)])
        if np.all(a @ w <= b + _FEASIBILITY_EPS) and not any(np.allclose(w, v, atol=1e-9) for v in vertices):
            vertices.append(w)
    # a deterministic order (lexicographic) so that messages and tests do not depend on enumeration
    vertices.sort(key=tuple)
    return [{n: float(max(0.0, x)) for n, x in zip(names, v, strict=True)} for v in vertices]


@dataclass(frozen=True)
class Closest:
    """The mixture of stocks closest to a target, in max-abs mass-fraction difference."""

    distance: float
    #: mass fractions of the closest mixture, over every name
    mixture: Mapping[str, float]
    #: mass share of each stock in it (only those used)
    shares: Mapping[str, float]

    def worst(self, target: Mapping[str, float]) -> str:
        """The component the closest mixture misses by the most."""
        return max(self.mixture, key=lambda n: abs(self.mixture[n] - target.get(n, 0.0)))


def closest_mixture(stocks: Mapping[str, Mapping[str, float]], target: Mapping[str, float]) -> Closest:
    """Minimise ``max_k |sum_j x_j s_jk - t_k|`` over mass shares ``x >= 0, sum x = 1`` (an LP).

    `stocks` maps a stock name to its mass fractions, `target` names mass fractions
    (absent names are zero in both).
    """
    if not stocks:
        raise ValueError("no stocks to mix")
    names = sorted({n for s in stocks.values() for n in s} | set(target))
    stock_names = list(stocks)
    s = np.array([[float(stocks[j].get(n, 0.0)) for j in stock_names] for n in names])
    t = np.array([float(target.get(n, 0.0)) for n in names])
    m, k = len(stock_names), len(names)
    # variables: x (m shares), e (the max deviation); minimise e
    cost = np.zeros(m + 1)
    cost[-1] = 1.0
    ones = np.ones((k, 1))
    a_ub = np.vstack([np.hstack([s, -ones]), np.hstack([-s, -ones])])
    b_ub = np.concatenate([t, -t])
    a_eq = np.hstack([np.ones((1, m)), np.zeros((1, 1))])
    result = linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=[(0, None)] * (m + 1), method="highs"
    )
    if result.status != 0:  # pragma: no cover - the simplex of shares is never empty
        raise RuntimeError(f"the mixing LP failed: {result.message}")
    x = np.clip(result.x[:m], 0.0, None)
    x /= x.sum()
    mixture = s @ x
    return Closest(
        distance=float(np.max(np.abs(mixture - t))),
        mixture={n: float(v) for n, v in zip(names, mixture, strict=True)},
        shares={j: float(v) for j, v in zip(stock_names, x, strict=True) if v > 1e-9},
    )


def explain_unreachable(
    stocks: Mapping[str, Mapping[str, float]],
    target: Mapping[str, float],
    closest: Closest,
    *,
    solvent: str | None = None,
) -> tuple[str, str]:
    """Why no mixture of `stocks` makes `target`, and what to change: ``(message, hint)``."""
    short = {
        n: (float(target.get(n, 0.0)), max(stocks, key=lambda j: float(stocks[j].get(n, 0.0))))
        for n in closest.mixture
    }
    lacking = [n for n, (want, j) in short.items() if want > float(stocks[j].get(n, 0.0)) + 1e-9]
    if lacking:
        worst = max(lacking, key=lambda n: short[n][0] - float(stocks[short[n][1]].get(n, 0.0)))
        want, richest = short[worst]
        return (
            f"it needs {worst} at mass fraction {want:.4g}, but the richest stock in {worst}, "
            f"{richest!r}, holds only {float(stocks[richest].get(worst, 0.0)):.4g}",
            f"add a stock with more than {want:.4g} {worst} or lower the bounds of {worst}",
        )
    # a component the target lacks, brought in by the stocks it needs: the LP shares the miss
    # between it and the others, so anything carried in at half the distance is the cause
    unwanted = [
        n for n, w in closest.mixture.items() if target.get(n, 0.0) == 0.0 and w >= 0.5 * closest.distance
    ]
    if unwanted:
        worst = max(unwanted, key=lambda n: closest.mixture[n])
        got = closest.mixture[worst]
        carriers = sorted(j for j in stocks if stocks[j].get(worst, 0.0) > 0)
        return (
            f"it holds no {worst}, but the stocks that reach it bring {worst} in "
            f"(at least {got:.4g}, carried by {', '.join(map(repr, carriers))})",
            f"add stocks free of {worst}, or raise the lower bound of {worst}",
        )
    worst = closest.worst(target)
    want, got = float(target.get(worst, 0.0)), closest.mixture[worst]
    # every single component is available, the combination is not: the stocks are too dilute
    needs: dict[str, tuple[float, str]] = {}
    for n, w in target.items():
        best = max(stocks, key=lambda j: float(stocks[j].get(n, 0.0)))
        if n != solvent and w > 0 and stocks[best].get(n, 0.0) > 0:
            needs[n] = (w / float(stocks[best][n]), best)
    shares = ", ".join(f"{n} {share:.0%} from {j!r}" for n, (share, j) in needs.items() if share > 0.01)
    return (
        f"the closest mixture has {worst} at {got:.4g} instead of {want:.4g} (off by "
        f"{closest.distance:.3g}); taken from the richest stocks, the solutes alone would fill "
        f"{sum(s for s, _ in needs.values()):.0%} of the sample ({shares})",
        "use more concentrated stocks, narrow the bounds, or cap the solutes' sum in space.constraints",
    )


__all__ = [
    "Closest",
    "Halfspace",
    "SpaceTooLargeError",
    "closest_mixture",
    "explain_unreachable",
    "polytope_vertices",
]
