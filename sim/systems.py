"""The default formulation system of the digital twin: SDS / PPG / NaCl in water.

Three solutes in a solvent (H2O at the SAXS station, D2O at the SANS station):

* **SDS** (sodium dodecyl sulfate), an anionic surfactant: spherical micelles above
  its CMC; salt screens the head-group charge and the micelles grow into rods;
  at high concentration the rods give way to a lamellar phase.
* **PPG** (poly(propylene glycol), Mn ≈ 1000), a short, water-soluble polyether
  whose electron density matches water's to 0.2 %: to X-rays it is invisible,
  to neutrons (hydrogenous polymer in D2O) it is one of the strongest scatterers
  in the sample. It binds to SDS micelles (the polymer-surfactant "necklace");
  where there is more polymer than the micelles can hold, the polymer forms its
  own disordered region, and beyond a cloud curve (an LCST-type demixing that
  salt favours and bound SDS opposes) the chains collect into fractal clusters.
* **NaCl**, which screens charges and lowers the cloud point.

Five structural phases, each a sasmodels model whose parameters vary smoothly
with composition inside its region:

=====================  ==============================  ==================================
phase                  model                           region
=====================  ==============================  ==================================
spherical_micelles     core_shell_sphere               above the CMC, little salt
elongated_micelles     core_shell_cylinder             salt above a curve falling with SDS
lamellar               lamellar_hg_stack_caille        SDS above a curve falling with salt
polymer_solution       polymer_excl_volume             more PPG than the micelles bind
polymer_clusters       mass_fractal                    PPG beyond the cloud curve
=====================  ==============================  ==================================

The boundary between ``polymer_solution`` and ``polymer_clusters`` is the
neutron-only boundary: both sides hold PPG (X-ray SLD 9.43 vs water 9.42,
neutron SLD 0.34 vs D2O 6.35), so where SDS is scarce SAXS sees almost nothing
change across it while SANS sees the coil scattering turn into cluster
scattering hundreds of times stronger.

The work is split by job: `tandem.sim.system_phases` holds the ingredients, the
phases and the curves that bound them (the phase truth); `tandem.sim.system_structures`
builds each phase's scattering structure and computes the contrast. This module
is the system as a ground truth: `FormulationSystem` checks a composition, finds
its phase and asks for its structure; every name other parts use is importable
from here.

Everything is vectorised over compositions: `FormulationSystem.evaluate` takes
arrays and is what grid maps and plots use; the per-point ground-truth callable
(`default_system`) wraps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.components import DEFAULT_NEUTRON_WAVELENGTH_A, DEFAULT_XRAY_ENERGY_KEV
from tandem.errors import InvalidCompositionError
from tandem.sim.system_phases import (
    D2O,
    H2O,
    PHASE_MODELS,
    PHASES,
    SOLUTE_NAMES,
    VALIDITY_BOUNDS,
    FloatArray,
    phase_codes_at,
)
from tandem.sim.system_structures import (
    MODEL_PARAMETERS,
    Contrast,
    SampleState,
    StructureArrays,
    structure_parameters,
)
from tandem.sim.truth import TruthPoint
from tandem.stations import Probe

__all__ = [
    "DEFAULT_SYSTEM",
    "FormulationSystem",
    "default_system",
    "phase_labels",
    "phase_of",
    "phases_of",
]


def _as_array(x: Any) -> FloatArray:
    return np.atleast_1d(np.asarray(x, dtype=np.float64))


@dataclass(frozen=True)
class FormulationSystem:
    """The SDS/PPG/NaCl system as seen at one X-ray energy and one neutron wavelength.

    Calling an instance is the ground-truth contract of `tandem.sim.truth`.
    """

    xray_energy_kev: float = DEFAULT_XRAY_ENERGY_KEV
    neutron_wavelength_a: float = DEFAULT_NEUTRON_WAVELENGTH_A
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(VALIDITY_BOUNDS))

    @cached_property
    def _contrasts(self) -> dict[Probe, Contrast]:
        return {
            probe: Contrast.compute(
                probe, energy_kev=self.xray_energy_kev, wavelength_a=self.neutron_wavelength_a
            )
            for probe in Probe
        }

    def contrast(self, probe: Probe | str) -> Contrast:
        return self._contrasts[Probe(probe)]

    # -- input checking ------------------------------------------------------------------------

    def fractions(self, composition: Mapping[str, float]) -> tuple[float, float, float]:
        """(SDS, PPG, NaCl) mass fractions of a composition, checked."""
        unknown = sorted(set(composition) - set(SOLUTE_NAMES))
        if unknown:
            solvents = {H2O.name, D2O.name}
            hint = " (the solvent is implicit: it is the rest)" if set(unknown) & solvents else ""
            raise InvalidCompositionError(
                f"unknown component(s) {', '.join(map(repr, unknown))} for the default system{hint}; "
                f"known solutes: {', '.join(SOLUTE_NAMES)}"
            )
        values: list[float] = []
        for name in SOLUTE_NAMES:
            raw = composition.get(name, 0.0)
            try:
                w = float(raw)
            except (TypeError, ValueError):
                raise InvalidCompositionError(
                    f"mass fraction of {name!r} must be a number, got {raw!r}"
                ) from None
            lo, hi = self.bounds[name]
            if not (math.isfinite(w) and lo <= w <= hi):
                raise InvalidCompositionError(
                    f"mass fraction of {name!r} must lie in [{lo}, {hi}] for the default system, got {raw!r}"
                )
            values.append(w)
        return values[0], values[1], values[2]

    # -- the ground-truth callable -------------------------------------------------------------

    def __call__(self, composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
        try:
            probe = Probe(probe)
        except ValueError:
            raise InvalidCompositionError(
                f"probe must be one of {[p.value for p in Probe]}, got {probe!r}"
            ) from None
        s, p, c = self.fractions(composition)
        arrays = self.evaluate(s, p, c, probe)
        code = int(arrays.phase[0])
        phase = PHASES[code]
        model = PHASE_MODELS[phase]
        keys = MODEL_PARAMETERS[model]
        params = {name: float(arrays.parameters[key][0]) for name, key in keys.items()}
        return TruthPoint(phase=phase, model=model, parameters=params)

    def phase_of(self, composition: Mapping[str, float]) -> str:
        s, p, c = self.fractions(composition)
        return PHASES[int(self.phase_codes(s, p, c)[0])]

    # -- vectorised physics --------------------------------------------------------------------

    def phase_codes(self, sds: Any, ppg: Any, nacl: Any) -> npt.NDArray[np.int64]:
        """Phase code (index into `PHASES`) at each composition; broadcasts its inputs."""
        return phase_codes_at(*np.broadcast_arrays(_as_array(sds), _as_array(ppg), _as_array(nacl)))

    def evaluate(self, sds: Any, ppg: Any, nacl: Any, probe: Probe | str) -> StructureArrays:
        """Phase and model parameters of every phase's model at each composition.

        Only the parameters of the phase a point is in are meaningful at that
        point; the others are computed anyway (cheap, and branch-free).
        """
        rho = self.contrast(probe)
        s, p, c = (
            a.astype(np.float64) for a in np.broadcast_arrays(_as_array(sds), _as_array(ppg), _as_array(nacl))
        )
        state = SampleState.of(s, p, c, rho)
        codes = self.phase_codes(s, p, c)
        return StructureArrays(phase=codes, parameters=structure_parameters(state, codes))


#: the default system at 12 keV and 6 Å
DEFAULT_SYSTEM = FormulationSystem()


def default_system(composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
    """The default ground truth: `tandem.sim.systems:default_system`."""
    return DEFAULT_SYSTEM(composition, probe)


def phase_of(composition: Mapping[str, float]) -> str:
    """The phase label at a composition (the same for both probes)."""
    return DEFAULT_SYSTEM.phase_of(composition)


def phase_labels() -> tuple[str, ...]:
    """Every phase label the default system can return."""
    return PHASES


def phases_of(fractions: npt.ArrayLike, system: FormulationSystem = DEFAULT_SYSTEM) -> npt.NDArray[np.str_]:
    """Phase labels of N compositions given as an (N, 3) array of (SDS, PPG, NaCl) mass fractions.

    The fast path for maps and accuracy scores: no per-point checks or objects.
    """
    array = np.asarray(fractions, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != len(SOLUTE_NAMES):
        raise InvalidCompositionError(
            f"expected an (N, {len(SOLUTE_NAMES)}) array of {', '.join(SOLUTE_NAMES)} mass fractions, "
            f"got shape {array.shape}"
        )
    codes = system.phase_codes(array[:, 0], array[:, 1], array[:, 2])
    return np.asarray(PHASES, dtype=np.str_)[codes]
