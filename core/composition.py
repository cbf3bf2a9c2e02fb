"""Compositions, in the bases formulation scientists use.

Mixing convention (ideal mixing), used everywhere in tandem:

* the volumes of liquids add: a mixture's volume is the sum of its liquids'
  mass / density;
* a solute adds mass and no volume;
* hence a stock solution's volume is the volume of its liquids, and volumes of
  stocks pipetted together add exactly.

A `Composition` is stored canonically as mass fractions (they are additive and
basis-free), with an optional total amount. The other bases are views:

================  ==========================================  ==================
basis             meaning                                     unit
================  ==========================================  ==================
mass fraction     mass of the component / mass of the mixture  1
volume fraction   volume of a liquid / volume of all liquids  1 (liquids only)
concentration     mass of the component / mixture volume      mg/mL (= g/L)
molarity          moles of the component / mixture volume     mol/L
================  ==========================================  ==================

Units: mass in mg, volume in µL, density in g/mL (= mg/µL).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from tandem.components import Component, Components
from tandem.errors import InvalidCompositionError

#: Mass fractions closer than this to zero or one are treated as exactly that.
FRACTION_EPS = 1e-12


class Basis(StrEnum):
    MASS_FRACTION = "mass_fraction"
    VOLUME_FRACTION = "volume_fraction"
    CONCENTRATION_MG_PER_ML = "concentration_mg_per_ml"
    MOLARITY_MOL_PER_L = "molarity_mol_per_l"


@dataclass(frozen=True)
class Amount:
    """How much of one component, in one basis."""

    value: float
    basis: Basis = Basis.MASS_FRACTION

    def __post_init__(self) -> None:
        object.__setattr__(self, "basis", Basis(self.basis))
        if not math.isfinite(self.value) or self.value < 0:
            raise InvalidCompositionError(
                f"an amount must be a finite number >= 0, got {self.value!r} ({self.basis.value})"
            )
        if self.basis in (Basis.MASS_FRACTION, Basis.VOLUME_FRACTION) and self.value > 1:
            raise InvalidCompositionError(f"a {self.basis.value} must lie in [0, 1], got {self.value!r}")


@dataclass(frozen=True)
class Composition:
    """A mixture of components, canonically as mass fractions summing to one.

    Build one with `from_mass_fractions`, `from_amounts` (any mix of bases, one
    balance component) or `pure`. `total_mass_mg` is optional: a composition
    without it describes proportions only.
    """

    components: Components
    _fractions: tuple[float, ...] = field(repr=False)
    total_mass_mg: float | None = None

    def __post_init__(self) -> None:
        if len(self._fractions) != len(self.components):
            raise InvalidCompositionError("one mass fraction per component is required")
        for name, w in zip(self.components, self._fractions, strict=True):
            if not math.isfinite(w) or w < -FRACTION_EPS or w > 1 + FRACTION_EPS:
                raise InvalidCompositionError(f"mass fraction of {name!r} must lie in [0, 1], got {w!r}")
        total = math.fsum(self._fractions)
        if abs(total - 1.0) > 1e-9:
            raise InvalidCompositionError(f"mass fractions must sum to 1, they sum to {total:.12g}")
        cleaned = tuple(min(1.0, max(0.0, w)) / total for w in self._fractions)
        object.__setattr__(self, "_fractions", cleaned)
        if self.total_mass_mg is not None and not (
            math.isfinite(self.total_mass_mg) and self.total_mass_mg > 0
        ):
            raise InvalidCompositionError(
                f"total mass must be a positive number of mg, got {self.total_mass_mg!r}"
            )
        if not any(c.is_liquid and w > 0 for c, w in zip(self.components.values(), cleaned, strict=True)):
            raise InvalidCompositionError(
                "a composition needs at least one liquid: solutes add no volume, so without a liquid "
                "the mixture has no volume to pipette"
            )

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_mass_fractions(
        cls,
        components: Components | Iterable[Component],
        fractions: Mapping[str, float],
        *,
        balance: str | None = None,
        total_mass_mg: float | None = None,
        total_volume_ul: float | None = None,
    ) -> Composition:
        """Mass fractions for some components; `balance` (if given) takes the rest."""
        return cls.from_amounts(
            components,
            {name: Amount(value, Basis.MASS_FRACTION) for name, value in fractions.items()},
            balance=balance,
            total_mass_mg=total_mass_mg,
            total_volume_ul=total_volume_ul,
        )

    @classmethod
    def pure(cls, component: Component, *, total_volume_ul: float | None = None) -> Composition:
        return cls.from_mass_fractions([component], {component.name: 1.0}, total_volume_ul=total_volume_ul)

    @classmethod
    def from_amounts(
        cls,
        components: Components | Iterable[Component],
        amounts: Mapping[str, Amount],
        *,
        balance: str | None = None,
        total_mass_mg: float | None = None,
        total_volume_ul: float | None = None,
    ) -> Composition:
        """Resolve amounts given in any mix of bases to a composition.

        Every component gets an amount except at most one, the `balance`, which
        takes whatever is left. A total mass or a total volume (not both) fixes
        the size; without one the composition gives proportions only.
        Each amount is a linear equation in the unknown masses, so the system is
        solved exactly and checked for consistency and non-negative masses.
        """
        comps = components if isinstance(components, Components) else Components(components)
        _check_request(comps, amounts, balance, total_mass_mg, total_volume_ul)
        order = list(comps)
        n = len(order)
        # volume (µL) of the mixture per mg of each component: liquids add volume, solutes none
        vol_per_mg = np.array([1.0 / c.density_g_per_ml if c.is_liquid else 0.0 for c in comps.values()])
        rows = [_amount_equation(comps, order.index(name), amt, vol_per_mg) for name, amt in amounts.items()]
        rhs = [0.0] * len(rows)
        if total_mass_mg is not None:
            rows.append(np.ones(n))
            rhs.append(total_mass_mg)
        elif total_volume_ul is not None:
            rows.append(vol_per_mg.copy())
            rhs.append(total_volume_ul)
        else:
            rows.append(np.ones(n))
            rhs.append(1.0)
        a = np.vstack(rows)
        b = np.asarray(rhs)
        masses, *_ = np.linalg.lstsq(a, b, rcond=None)
        residual = float(np.max(np.abs(a @ masses - b))) if len(b) else 0.0
        scale = float(np.max(np.abs(b))) or 1.0
        if not np.all(np.isfinite(masses)) or residual > 1e-9 * scale or np.linalg.matrix_rank(a) < n:
            raise InvalidCompositionError(
                "the amounts are inconsistent or do not fix the composition "
                f"({_describe(amounts)}); name one balance component that takes the rest"
            )
        total = float(masses.sum())
        if total <= 0:
            raise InvalidCompositionError(f"the amounts leave no mass ({_describe(amounts)})")
        negative = [order[i] for i in range(n) if masses[i] < -1e-9 * total]
        if negative:
            raise InvalidCompositionError(
                f"the amounts add up to more than the whole mixture: {', '.join(map(repr, negative))} "
                f"would need a negative amount ({_describe(amounts)})"
            )
        masses = np.clip(masses, 0.0, None)
        fractions = tuple(float(m) / float(masses.sum()) for m in masses)
        mixture_mass = float(masses.sum()) if (total_mass_mg or total_volume_ul) else None
        return cls(comps, fractions, mixture_mass)

    # -- views --------------------------------------------------------------------------------

    @property
    def mass_fractions(self) -> dict[str, float]:
        return dict(zip(self.components, self._fractions, strict=True))

    def mass_fraction(self, name: str) -> float:
        """Mass fraction of `name`; zero for a component this composition does not hold."""
        for key, w in zip(self.components, self._fractions, strict=True):
            if key == name:
                return w
        return 0.0

    @property
    def liquid_volume_per_mg_ul(self) -> float:
        """µL of mixture per mg of mixture: the inverse of the solution density."""
        return math.fsum(
            w / c.density_g_per_ml
            for c, w in zip(self.components.values(), self._fractions, strict=True)
            if c.is_liquid
        )

    @property
    def density_g_per_ml(self) -> float:
        return 1.0 / self.liquid_volume_per_mg_ul

    @property
    def volume_fractions(self) -> dict[str, float]:
        """Volume fractions of the liquids (solutes have none under ideal mixing)."""
        per_mg = self.liquid_volume_per_mg_ul
        return {
            c.name: (w / c.density_g_per_ml) / per_mg
            for c, w in zip(self.components.values(), self._fractions, strict=True)
            if c.is_liquid
        }

    @property
    def concentrations_mg_per_ml(self) -> dict[str, float]:
        density = self.density_g_per_ml  # mg/µL == g/mL; mg/mL == 1000 * mg/µL
        return {name: 1000.0 * w * density for name, w in self.mass_fractions.items()}

    @property
    def molarities_mol_per_l(self) -> dict[str, float]:
        conc = self.concentrations_mg_per_ml
        return {name: conc[name] / c.molar_mass_g_per_mol for name, c in self.components.items()}

    def in_basis(self, basis: Basis) -> dict[str, float]:
        basis = Basis(basis)
        if basis is Basis.MASS_FRACTION:
            return self.mass_fractions
        if basis is Basis.VOLUME_FRACTION:
            return self.volume_fractions
        if basis is Basis.CONCENTRATION_MG_PER_ML:
            return self.concentrations_mg_per_ml
        return self.molarities_mol_per_l

    @property
    def total_volume_ul(self) -> float | None:
        if self.total_mass_mg is None:
            return None
        return self.total_mass_mg * self.liquid_volume_per_mg_ul

    def with_total_volume(self, total_volume_ul: float) -> Composition:
        if not (math.isfinite(total_volume_ul) and total_volume_ul > 0):
            raise InvalidCompositionError(f"total volume must be positive, got {total_volume_ul!r} µL")
        return Composition(self.components, self._fractions, total_volume_ul / self.liquid_volume_per_mg_ul)

    def max_abs_difference(self, other: Composition) -> float:
        """Largest difference in mass fraction over the components of either composition."""
        names = set(self.components) | set(other.components)
        return max(abs(self.mass_fraction(n) - other.mass_fraction(n)) for n in names)

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: mass fractions plus, for convenience, the other bases."""
        out: dict[str, Any] = {
            "mass_fraction": self.mass_fractions,
            "volume_fraction": self.volume_fractions,
            "concentration_mg_per_ml": self.concentrations_mg_per_ml,
            "molarity_mol_per_l": self.molarities_mol_per_l,
        }
        if self.total_mass_mg is not None:
            out["total_mass_mg"] = self.total_mass_mg
            out["total_volume_ul"] = self.total_volume_ul
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], components: Components) -> Composition:
        """Inverse of `to_dict`: reads the mass fractions and total mass."""
        try:
            fractions = data["mass_fraction"]
        except KeyError:
            raise InvalidCompositionError(
                "a serialised composition needs a 'mass_fraction' mapping"
            ) from None
        comps = Components(components[name] for name in fractions)
        return cls(comps, tuple(float(fractions[n]) for n in comps), data.get("total_mass_mg"))

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {w:.4g}" for n, w in self.mass_fractions.items() if w > 0)
        size = f", {self.total_volume_ul:.4g} µL" if self.total_mass_mg is not None else ""
        return f"Composition(mass fractions: {parts}{size})"


def _check_request(
    comps: Components,
    amounts: Mapping[str, Amount],
    balance: str | None,
    total_mass_mg: float | None,
    total_volume_ul: float | None,
) -> None:
    for name in amounts:
        comps[name]  # raises UnknownComponentError with the known names
    if balance is not None:
        comps[balance]
        if balance in amounts:
            raise InvalidCompositionError(
                f"{balance!r} is the balance component and cannot also be given an amount"
            )
    missing = [n for n in comps if n not in amounts and n != balance]
    if missing:
        hint = " or name one of them as the balance" if balance is None and len(missing) == 1 else ""
        raise InvalidCompositionError(
            f"no amount given for {', '.join(map(repr, missing))}; give each component an amount{hint}"
        )
    if total_mass_mg is not None and total_volume_ul is not None:
        raise InvalidCompositionError("give a total mass or a total volume, not both")
    for label, value in (("total mass", total_mass_mg), ("total volume", total_volume_ul)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InvalidCompositionError(f"{label} must be a positive finite number, got {value!r}")


def _amount_equation(comps: Components, i: int, amount: Amount, vol_per_mg: np.ndarray) -> np.ndarray:
    """The row `a` of the linear equation `a · masses = 0` that `amount` of component `i` states."""
    comp = list(comps.values())[i]
    row = np.zeros(len(comps))
    if amount.basis is Basis.MASS_FRACTION:  # m_i = w Σ m
        row[i] = 1.0
        return row - amount.value
    if amount.basis is Basis.VOLUME_FRACTION:  # m_i/ρ_i = φ Σ_liquids m/ρ
        if not comp.is_liquid:
            raise InvalidCompositionError(
                f"{comp.name!r} is a solute: it has no volume fraction (solutes add no volume); "
                "give it as a mass fraction, a concentration or a molarity"
            )
        row[i] = vol_per_mg[i]
        return row - amount.value * vol_per_mg
    row[i] = 1.0  # m_i = c V, with V = Σ_liquids m/ρ
    return row - _mg_per_ul(comp, amount) * vol_per_mg


def _mg_per_ul(component: Component, amount: Amount) -> float:
    if amount.basis is Basis.CONCENTRATION_MG_PER_ML:
        return amount.value / 1000.0
    if amount.basis is Basis.MOLARITY_MOL_PER_L:
        return amount.value * component.molar_mass_g_per_mol / 1000.0
    raise AssertionError(amount.basis)  # pragma: no cover - callers dispatch the fractions


def _describe(amounts: Mapping[str, Amount]) -> str:
    return "; ".join(f"{n}: {a.value:g} {a.basis.value}" for n, a in amounts.items())


def union(components: Iterable[Components]) -> Components:
    """All components of several sets, first definition of each name wins; conflicting definitions fail."""
    merged: dict[str, Component] = {}
    for comps in components:
        for name, comp in comps.items():
            if name in merged and merged[name] != comp:
                raise InvalidCompositionError(f"component {name!r} is defined twice, differently")
            merged.setdefault(name, comp)
    return Components(merged.values())


__all__ = ["Amount", "Basis", "Composition", "union"]
