"""Components: the pure substances a formulation is made of.

A component knows its chemical formula, its density and whether it is a liquid
(it has a volume that adds on mixing) or a solute (it adds mass and no volume,
see `tandem.composition` for the mixing convention). From the formula it
derives the molar mass and the scattering length densities (SLDs) that set the
contrast seen by X-rays and neutrons.

SLDs are in units of 1e-6 / Å², the unit sasmodels uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, cached_property
from typing import Any

import periodictable
from periodictable import nsf, xsf

from tandem.errors import InvalidComponentError, UnknownComponentError

#: X-rays of this energy are what the SAXS station uses unless told otherwise.
DEFAULT_XRAY_ENERGY_KEV = 12.0
#: Cold neutrons; the neutron SLD barely depends on wavelength away from absorption edges.
DEFAULT_NEUTRON_WAVELENGTH_A = 6.0


class Role(StrEnum):
    """How a component behaves on mixing."""

    LIQUID = "liquid"
    SOLUTE = "solute"


@dataclass(frozen=True)
class Component:
    """A pure substance.

    `density_g_per_ml` is the density of the pure substance; for a solute it is
    only used for its scattering contrast (its partial volume), never for the
    mixture's volume.
    """

    name: str
    formula: str
    density_g_per_ml: float
    role: Role = Role.LIQUID

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise InvalidComponentError("a component needs a non-empty name")
        if not (math.isfinite(self.density_g_per_ml) and self.density_g_per_ml > 0):
            raise InvalidComponentError(
                f"component {self.name!r}: density must be a positive finite number in g/mL, "
                f"got {self.density_g_per_ml!r}"
            )
        try:
            role = Role(self.role)
        except ValueError:
            raise InvalidComponentError(
                f"component {self.name!r}: role must be one of {[r.value for r in Role]}, got {self.role!r}"
            ) from None
        object.__setattr__(self, "role", role)
        try:
            parsed = periodictable.formula(self.formula)
        except Exception as exc:  # periodictable raises several types for bad formulas
            raise InvalidComponentError(
                f"component {self.name!r}: cannot parse chemical formula {self.formula!r} ({exc})"
            ) from None
        if parsed.mass <= 0:
            raise InvalidComponentError(f"component {self.name!r}: formula {self.formula!r} has no atoms")

    @cached_property
    def molar_mass_g_per_mol(self) -> float:
        return float(periodictable.formula(self.formula).mass)

    def xray_sld(self, energy_kev: float = DEFAULT_XRAY_ENERGY_KEV) -> float:
        """Real part of the X-ray SLD at `energy_kev`, in 1e-6/Å²."""
        if not (math.isfinite(energy_kev) and energy_kev > 0):
            raise InvalidComponentError(f"X-ray energy must be positive, got {energy_kev!r} keV")
        rho, _irho = xsf.xray_sld(self.formula, density=self.density_g_per_ml, energy=energy_kev)
        return float(rho)

    def neutron_sld(self, wavelength_a: float = DEFAULT_NEUTRON_WAVELENGTH_A) -> float:
        """Coherent neutron SLD, in 1e-6/Å²."""
        if not (math.isfinite(wavelength_a) and wavelength_a > 0):
            raise InvalidComponentError(f"neutron wavelength must be positive, got {wavelength_a!r} Å")
        sld, _absorption, _incoherent = nsf.neutron_sld(
            self.formula, density=self.density_g_per_ml, wavelength=wavelength_a
        )
        return float(sld)

    def neutron_incoherent_per_cm_sr(self, wavelength_a: float = DEFAULT_NEUTRON_WAVELENGTH_A) -> float:
        """Incoherent dΣ/dΩ (1/cm/sr) of the pure component, isotropic over 4π: its hydrogen, mostly.

        periodictable's tabulated bound-atom cross-section per volume, divided by 4π.
        """
        if not (math.isfinite(wavelength_a) and wavelength_a > 0):
            raise InvalidComponentError(f"neutron wavelength must be positive, got {wavelength_a!r} Å")
        return _incoherent_per_cm_sr(self.formula, self.density_g_per_ml, wavelength_a)

    @property
    def is_liquid(self) -> bool:
        return self.role is Role.LIQUID


@cache
def _incoherent_per_cm_sr(formula: str, density_g_per_ml: float, wavelength_a: float) -> float:
    # cached: the twin asks for it with every sample and every grid evaluation
    result: Any = nsf.neutron_scattering(formula, density=density_g_per_ml, wavelength=wavelength_a)
    return float(result[1][2]) / (4.0 * math.pi)  # (coherent, absorption, incoherent) in 1/cm


class Components(Mapping[str, Component]):
    """An ordered, immutable set of components, looked up by name."""

    __slots__ = ("_by_name",)

    def __init__(self, components: Iterable[Component]) -> None:
        by_name: dict[str, Component] = {}
        for component in components:
            if component.name in by_name:
                raise InvalidComponentError(f"component {component.name!r} is defined twice")
            by_name[component.name] = component
        self._by_name = by_name

    def __getitem__(self, name: str) -> Component:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownComponentError(name, self._by_name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Components):
            return NotImplemented
        return list(self._by_name.values()) == list(other._by_name.values())

    def __hash__(self) -> int:
        return hash(tuple(self._by_name.values()))

    def __repr__(self) -> str:
        return f"Components({', '.join(self._by_name)})"

    @property
    def liquids(self) -> tuple[Component, ...]:
        return tuple(c for c in self._by_name.values() if c.is_liquid)

    @property
    def solutes(self) -> tuple[Component, ...]:
        return tuple(c for c in self._by_name.values() if not c.is_liquid)
