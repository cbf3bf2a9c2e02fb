"""What every system of the zoo shares: contrast, incoherent background, grids, input checks.

A zoo system is a ground truth (the contract of `tandem.sim.truth`) that also
knows its composition space (which solutes are the axes, their bounds, whether
it is a simplex), its phases, which phases each probe can tell apart, and a
vectorised phase map for scoring maps on a grid.

Composition is given as solute mass fractions; the station's solvent (H2O at
the SAXS station, D2O at the SANS station) is the rest. The physics uses volume
fractions from each component's partial volume (its density), as
`tandem.sim.systems` does.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.agents.region import FeasibleRegion, region_from_bounds
from tandem.components import (
    DEFAULT_NEUTRON_WAVELENGTH_A,
    DEFAULT_XRAY_ENERGY_KEV,
    Component,
    Components,
    Role,
)
from tandem.errors import InvalidCompositionError, TandemError
from tandem.sim.system_phases import D2O, H2O, solvent_for
from tandem.sim.truth import TruthPoint
from tandem.stations import SANS, SAXS, Probe

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "FloatArray",
    "IntArray",
    "UnknownSystemError",
    "ZooSystem",
    "fragment",
    "frozen",
    "grow",
    "incoherent_per_sr",
    "sld",
    "smoothstep",
]

#: Avogadro's number times 1e-24: turns g/mL into (g/mol)/Å³.
N_A_PER_A3 = 0.602214076
#: (1e-6/Å²)² · Å³ = 1e-4 / cm: converts Δρ²·V into 1/cm.
CONTRAST_TO_INV_CM = 1e-4
#: Points per axis of the evaluation grid of a 2-D system (and levels of the simplex).
GRID_POINTS_PER_AXIS = 50
#: Points per axis of the default (3-D) system's evaluation grid.
GRID_POINTS_PER_AXIS_3D = 12
#: Carbon-chain volume (Tanford) of a CnH2n+1 tail, Å³.
TAIL_VOLUME_PER_CH2_A3 = 26.9
TAIL_VOLUME_CH3_A3 = 27.4
#: Fully extended CnH2n+1 length (Tanford), Å.
TAIL_LENGTH_PER_CH2_A = 1.265
TAIL_LENGTH_CH3_A = 1.5


class UnknownSystemError(TandemError, KeyError):
    """A zoo system name that does not exist."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(name)

    def __str__(self) -> str:
        return f"no zoo system {self.name!r}; known systems: {', '.join(self.known)}"


@cache
def sld(component: Component, probe: Probe) -> float:
    """SLD (1e-6/Å²) of `component` at the stations' default energy / wavelength."""
    if probe is Probe.XRAY:
        return component.xray_sld(DEFAULT_XRAY_ENERGY_KEV)
    return component.neutron_sld(DEFAULT_NEUTRON_WAVELENGTH_A)


def incoherent_per_sr(component: Component) -> float:
    """Incoherent dΣ/dΩ (1/cm/sr) of the pure component at the default wavelength."""
    return component.neutron_incoherent_per_cm_sr(DEFAULT_NEUTRON_WAVELENGTH_A)


def fragment(name: str, formula: str, volume_a3: float) -> Component:
    """A molecular fragment (a tail, a head group) as a component, so its SLD comes from periodictable."""
    from periodictable import formula as pt_formula

    mass = float(pt_formula(formula).mass)
    return Component(name, formula, mass / (volume_a3 * N_A_PER_A3), Role.SOLUTE)


def molecular_volume_a3(component: Component) -> float:
    return component.molar_mass_g_per_mol / (component.density_g_per_ml * N_A_PER_A3)


def tail_volume_a3(carbons: int) -> float:
    return TAIL_VOLUME_CH3_A3 + TAIL_VOLUME_PER_CH2_A3 * carbons


def tail_length_a(carbons: int) -> float:
    return TAIL_LENGTH_CH3_A + TAIL_LENGTH_PER_CH2_A * carbons


def grow(x: Any) -> Any:
    """1 + x/(1+x): a size that grows with a ratio x ≥ 0 and saturates at twice its start.

    Physical growth laws (swelling by oil, water uptake, screening) saturate:
    micelles take up only so much oil before the excess separates. The zoo's
    contract is that inside a phase sizes vary by at most 2×, which this keeps.
    """
    x = np.clip(x, 0.0, None)
    return 1.0 + x / (1.0 + x)


def smoothstep(x: Any, lo: float, hi: float) -> Any:
    """0 below `lo`, 1 above `hi`, a smooth cubic in between."""
    t = np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view, for mappings that are class attributes shared by every instance."""
    return MappingProxyType(dict(mapping))


def mix(*pairs: tuple[float, float]) -> float:
    """Volume-weighted SLD of (volume fraction, SLD) pairs; the fractions need not sum to 1."""
    total = sum(f for f, _ in pairs)
    return sum(f * s for f, s in pairs) / total if total > 0 else 0.0


class ZooSystem(ABC):
    """A formulation system of the twin: a ground truth with its composition space and phases.

    Subclasses set the class attributes and write the physics in
    `_phase_codes` (vectorised) and `_structure` (one point, one probe).
    """

    name: str
    title: str
    description: str
    components: Components
    solutes: tuple[str, ...]
    bounds: Mapping[str, tuple[float, float]]
    max_total: float | None = None
    ternary: bool = False
    phases: tuple[str, ...]
    #: per phase, the size-like parameters (lengths, d-spacings) that vary smoothly inside it
    size_parameters: Mapping[str, tuple[str, ...]] = MappingProxyType({})

    # -- what subclasses write -------------------------------------------------------------------

    @abstractmethod
    def _phase_codes(self, x: FloatArray) -> IntArray:
        """Index into `phases` at each row of an (N, d) array of solute mass fractions."""

    @abstractmethod
    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        """sasmodels model and parameters (without `background`) at one composition."""

    # -- the contract ----------------------------------------------------------------------------

    @property
    def truth_spec(self) -> str:
        return f"tandem.sim.zoo:{self.name}"

    def __call__(self, composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
        probe = self._probe(probe)
        w = self.fractions(composition)
        phase = self.phases[int(self._phase_codes(w[None, :])[0])]
        model, params = self._structure(w, phase, probe)
        params["background"] = self.background(w, probe)
        return TruthPoint(phase=phase, model=model, parameters=params)

    def phases_of(self, fractions: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """Truth phase names of N compositions, an (N, d) array in `solutes` order; no per-point checks."""
        x = np.asarray(fractions, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.solutes):
            raise InvalidCompositionError(
                f"expected an (N, {len(self.solutes)}) array of {', '.join(self.solutes)} mass fractions, "
                f"got shape {x.shape}"
            )
        return np.asarray(self.phases, dtype=np.str_)[self._phase_codes(x)]

    def seen_as(self, probe: Probe | str) -> Mapping[str, str]:
        """Each phase -> the name `probe` could at best report (identity unless it is blind to a boundary)."""
        self._probe(probe)
        return {p: p for p in self.phases}

    def region(self) -> FeasibleRegion:
        """The composition space agents search: the solutes' bounds under the cap, each station's water."""
        return region_from_bounds(
            self.components,
            {s: self.bounds[s] for s in self.solutes},
            H2O,
            solvents={SAXS: H2O, SANS: D2O},
            max_total=self.max_total if self.max_total is not None else 1.0,
        )

    def grid(self) -> FloatArray:
        """Evaluation points: 50 × 50 over the bounds (those over `max_total` dropped); a simplex's 1,275."""
        n = GRID_POINTS_PER_AXIS
        if self.ternary:
            i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
            keep = (i + j) <= n - 1
            return np.column_stack([i[keep] / (n - 1), j[keep] / (n - 1)]).astype(np.float64)
        axes = [np.linspace(*self.bounds[s], n) for s in self.solutes]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(self.solutes))
        if self.max_total is not None:
            points = points[points.sum(axis=1) <= self.max_total + 1e-12]
        return points.astype(np.float64)

    # -- shared physics --------------------------------------------------------------------------

    def volume_fractions(self, w: FloatArray, probe: Probe) -> dict[str, float]:
        """Volume fraction of every solute and of the station's solvent, from partial volumes."""
        solvent = solvent_for(probe)
        volumes = {s: float(w[k]) / self.components[s].density_g_per_ml for k, s in enumerate(self.solutes)}
        volumes[solvent.name] = max(1.0 - float(np.sum(w)), 0.0) / solvent.density_g_per_ml
        total = sum(volumes.values())
        return {k: v / total for k, v in volumes.items()}

    def background(self, w: FloatArray, probe: Probe) -> float:
        """Flat 1/cm from the solutes' hydrogen (neutrons); X-rays: nothing worth modelling.

        The solvent's own flat scattering belongs to the blank, not to the structure.
        """
        if probe is Probe.XRAY:
            return 0.0
        phi = self.volume_fractions(w, probe)
        return float(sum(phi[s] * incoherent_per_sr(self.components[s]) for s in self.solutes))

    def sld_of(self, name: str, probe: Probe) -> float:
        return sld(self.components[name], probe)

    # -- input checking --------------------------------------------------------------------------

    def _probe(self, probe: Probe | str) -> Probe:
        try:
            return Probe(probe)
        except ValueError:
            raise InvalidCompositionError(
                f"probe must be one of {[p.value for p in Probe]}, got {probe!r}"
            ) from None

    def fractions(self, composition: Mapping[str, float]) -> FloatArray:
        """Solute mass fractions in `solutes` order, checked against the bounds and `max_total`."""
        unknown = sorted(set(composition) - set(self.solutes))
        if unknown:
            solvents = {H2O.name, D2O.name}
            hint = " (the solvent is implicit: it is the rest)" if set(unknown) & solvents else ""
            raise InvalidCompositionError(
                f"unknown component(s) {', '.join(map(repr, unknown))} for the zoo system "
                f"{self.name!r}{hint}; its solutes are {', '.join(self.solutes)}"
            )
        values: list[float] = []
        for name in self.solutes:
            raw = composition.get(name, 0.0)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise InvalidCompositionError(
                    f"mass fraction of {name!r} must be a number, got {raw!r}"
                ) from None
            lo, hi = self.bounds[name]
            if not (math.isfinite(value) and lo <= value <= hi):
                raise InvalidCompositionError(
                    f"mass fraction of {name!r} must lie in [{lo}, {hi}] for the zoo system {self.name!r}, "
                    f"got {raw!r}"
                )
            values.append(value)
        if self.max_total is not None and sum(values) > self.max_total + 1e-9:
            raise InvalidCompositionError(
                f"the mass fractions of {', '.join(self.solutes)} must add up to at most {self.max_total} "
                f"for the zoo system {self.name!r}, got {sum(values):g}"
            )
        return np.asarray(values, dtype=np.float64)
