"""Ordered mesophases: C12E12 with dodecanol in water.

A nonionic surfactant with a large head group (E12) forms small spherical
micelles; as they crowd they order on a body-centred cubic lattice (the I1
micellar cubic phase, Bragg peaks at 1 : √2 : √3 ...). Dodecanol is a
co-surfactant without a head group: it sits among the tails, lowers the
interface's curvature and turns the spheres into cylinders, which pack on a
hexagonal lattice (H1, peaks at 1 : √3 : 2 : √7).

* **micellar**: hard-sphere-interacting core-shell micelles;
* **cubic**: `bcc_paracrystal`, spheres of the hydrocarbon core (tails +
  dodecanol) in a medium of water and hydrated EO chains;
* **hexagonal**: the plugin model `hexagonal_cylinders.py` next to this file,
  loaded by sasmodels from its path.

Lattice constants follow from the core volume fraction (d ∝ (V/φ)^(1/3) for
the cubic lattice, ∝ (R²/φ)^(1/2) for the hexagonal one). Both probes see every
boundary.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tandem.components import Component, Components, Role
from tandem.sim.system_phases import D2O, H2O, solvent_for
from tandem.sim.zoo.base import (
    FloatArray,
    IntArray,
    ZooSystem,
    fragment,
    frozen,
    mix,
    molecular_volume_a3,
    sld,
    tail_length_a,
    tail_volume_a3,
)
from tandem.stations import Probe

C12E12 = Component("C12E12", "C36H74O13", 1.05, Role.SOLUTE)
DODECANOL = Component("dodecanol", "C12H26O", 0.831, Role.LIQUID)

#: the hexagonal phase's sasmodels model: a plugin file, named by its path
HEXAGONAL_MODEL = str(Path(__file__).with_name("hexagonal_cylinders.py"))

V_SURF_A3 = molecular_volume_a3(C12E12)
V_TAIL_A3 = tail_volume_a3(12)
V_HEAD_A3 = V_SURF_A3 - V_TAIL_A3
V_DODECANOL_A3 = molecular_volume_a3(DODECANOL)
TAIL = fragment("C12E12 tail", "C12H25", V_TAIL_A3)
HEAD = fragment("C12E12 head", "C24H49O13", V_HEAD_A3)
#: hydrated E12 corona around a free micelle, Å
CORONA_A = 18.0

MICELLAR, CUBIC, HEXAGONAL = range(3)


def cubic_onset(d: FloatArray) -> FloatArray:
    """C12E12 mass fraction above which micelles order: dodecanol swells them, lowering it."""
    return np.asarray(0.22 - 0.5 * d, dtype=np.float64)


def hexagonal_onset(s: FloatArray) -> FloatArray:
    """Dodecanol mass fraction above which cylinders beat spheres: less is needed among more surfactant."""
    return np.asarray(0.095 - 0.15 * (s - 0.2) + 0.1 * (s - 0.2) ** 2, dtype=np.float64)


class Mesophases(ZooSystem):
    name = "mesophases"
    title = "C12E12 / dodecanol: micellar, cubic and hexagonal mesophases"
    description = (
        "A nonionic surfactant and a co-surfactant: micelles at low surfactant, a bcc micellar cubic "
        "phase when they crowd, and a hexagonal phase of cylinders where dodecanol flattens the "
        "interface. Bragg peaks in the ordered phases; both probes see every boundary."
    )
    components = Components([H2O, D2O, C12E12, DODECANOL])
    solutes = ("C12E12", "dodecanol")
    bounds = frozen({"C12E12": (0.05, 0.55), "dodecanol": (0.0, 0.12)})
    phases = ("micellar", "cubic", "hexagonal")
    size_parameters = frozen(
        {
            "micellar": ("radius",),
            "cubic": ("radius", "dnn"),
            "hexagonal": ("radius", "dnn"),
        }
    )

    def _phase_codes(self, x: FloatArray) -> IntArray:
        s, d = x[:, 0], x[:, 1]
        codes = np.where(d > hexagonal_onset(s), HEXAGONAL, CUBIC)
        return np.where(s < cubic_onset(d), MICELLAR, codes).astype(np.int64)

    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        phi = self.volume_fractions(w, probe)
        water = sld(solvent_for(probe), probe)
        phi_s, phi_d = phi["C12E12"], phi["dodecanol"]
        phi_tail = phi_s * V_TAIL_A3 / V_SURF_A3
        x = phi_d / phi_tail  # dodecanol per tail volume, in the core
        core = mix((1.0, sld(TAIL, probe)), (x, sld(DODECANOL, probe)))
        # dodecanol among the tails lets the core grow beyond the extended tail length a little
        radius = 0.9 * tail_length_a(12) * (1.0 + 0.3 * x / (1.0 + x))
        phi_core = phi_tail + phi_d
        if phase == "micellar":
            v_core = 4 / 3 * math.pi * radius**3
            v_particle = 4 / 3 * math.pi * (radius + CORONA_A) ** 3
            n_agg = v_core / (V_TAIL_A3 * (1.0 + x))
            head_fill = min(n_agg * V_HEAD_A3 / (v_particle - v_core), 1.0)
            return "core_shell_sphere@hardsphere", {
                "scale": 1.0,  # P@S: the particles' volume fraction is `volfraction`
                "volfraction": min(phi_core * v_particle / v_core, 0.5),
                "radius": radius,
                "radius_pd": 0.1,
                "thickness": CORONA_A,
                "radius_effective": radius + CORONA_A,
                "radius_effective_mode": 0.0,
                "structure_factor_mode": 0.0,
                "sld_core": core,
                "sld_shell": mix((head_fill, sld(HEAD, probe)), (1.0 - head_fill, water)),
                "sld_solvent": water,
            }
        # in the ordered phases the medium between cores is water and EO chains, averaged
        medium = mix((phi_s - phi_tail, sld(HEAD, probe)), (1.0 - phi_s - phi_d, water))
        if phase == "cubic":
            # bcc: two spheres per cubic cell a³, nearest neighbours at √3 a / 2
            a = (2.0 * 4 / 3 * math.pi * radius**3 / phi_core) ** (1.0 / 3.0)
            return "bcc_paracrystal", {
                "scale": 1.0,
                "dnn": math.sqrt(3.0) / 2.0 * a,
                "d_factor": 0.08,
                "radius": radius,
                "sld": core,
                "sld_solvent": medium,
            }
        # cylinders of the same core radius on a hexagonal lattice: φ = π R² / (√3 a² / 2)
        r_cyl = 0.9 * radius
        return HEXAGONAL_MODEL, {
            "scale": 1.0,
            "radius": r_cyl,
            "length": 2000.0,
            "dnn": math.sqrt(2.0 * math.pi * r_cyl**2 / (math.sqrt(3.0) * phi_core)),
            "d_factor": 0.05,
            "domain_size": 1500.0,
            "sld": core,
            "sld_solvent": medium,
        }
