"""The twin's original system (SDS / PPG / NaCl, `tandem.sim.systems`) as a zoo system.

An adapter, not a copy: the physics stays in `tandem.sim.systems` and is
called as is, so that `tandem.sim.zoo:default` and
`tandem.sim.systems:default_system` are the same truth.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from tandem.sim import system_phases, systems
from tandem.sim.truth import TruthPoint
from tandem.sim.zoo.base import GRID_POINTS_PER_AXIS_3D, FloatArray, IntArray, ZooSystem, frozen
from tandem.stations import Probe


class Default(ZooSystem):
    name = "default"
    title = "SDS / PPG / NaCl (the twin's default system)"
    description = (
        "Anionic surfactant, a water-soluble polyether and salt, 3-D: spherical and elongated micelles, "
        "a lamellar phase, polymer in solution and polymer clusters beyond a cloud curve. PPG matches "
        "water's electron density, so the polymer_solution / polymer_clusters boundary is (nearly) "
        "invisible to X-rays where SDS is scarce and strong for neutrons."
    )
    components = system_phases.DEFAULT_COMPONENTS
    solutes = system_phases.SOLUTE_NAMES
    bounds = system_phases.DEFAULT_BOUNDS
    phases = system_phases.PHASES
    size_parameters = frozen(
        {
            "spherical_micelles": ("radius",),
            "lamellar": ("d_spacing",),
            "polymer_solution": ("rg",),
        }
    )

    def __call__(self, composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
        # the default system checks against its own, wider validity bounds
        return systems.DEFAULT_SYSTEM(composition, probe)

    def _phase_codes(self, x: FloatArray) -> IntArray:
        return systems.DEFAULT_SYSTEM.phase_codes(x[:, 0], x[:, 1], x[:, 2])

    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        point = systems.DEFAULT_SYSTEM(dict(zip(self.solutes, map(float, w), strict=True)), probe)
        return point.model, dict(point.parameters)

    def phases_of(self, fractions: npt.ArrayLike) -> npt.NDArray[np.str_]:
        return systems.phases_of(fractions)

    def grid(self) -> FloatArray:
        n = GRID_POINTS_PER_AXIS_3D
        axes = [np.linspace(*self.bounds[s], n) for s in self.solutes]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(self.solutes))
