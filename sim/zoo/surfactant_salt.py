"""Surfactant + salt: SLES (sodium laureth-2 sulfate) and NaCl, the chemistry of a shampoo.

Salt screens the sulfate charges: the head groups pack closer, the preferred
curvature drops, and spherical micelles grow into long, flexible wormlike
micelles (the viscosity peak formulators tune with salt). At high surfactant
the worms give way to a lamellar phase, earlier with more salt.

Both probes see both boundaries: hydrocarbon cores against water for X-rays,
hydrogenous surfactant against D2O for neutrons.
"""

from __future__ import annotations

import math

import numpy as np

from tandem.components import Component, Components, Role
from tandem.sim.system_phases import D2O, H2O, solvent_for
from tandem.sim.zoo.base import (
    FloatArray,
    IntArray,
    ZooSystem,
    fragment,
    frozen,
    grow,
    mix,
    molecular_volume_a3,
    sld,
    smoothstep,
    tail_length_a,
    tail_volume_a3,
)
from tandem.stations import Probe

#: density from a partial specific volume of ≈ 0.93 mL/g in micelles
SLES = Component("SLES", "C16H33NaO6S", 1.08, Role.SOLUTE)
NACL = Component("NaCl", "NaCl", 2.165, Role.SOLUTE)

V_SURF_A3 = molecular_volume_a3(SLES)
V_TAIL_A3 = tail_volume_a3(12)
V_HEAD_A3 = V_SURF_A3 - V_TAIL_A3
TAIL = fragment("SLES tail", "C12H25", V_TAIL_A3)
HEAD = fragment("SLES head", "C4H8NaO6S", V_HEAD_A3)
#: EO2 + sulfate + counterions, hydrated, Å
SHELL_A = 8.0
#: EO2-sulfate layer: head-group volume fraction (the rest is water)
SHELL_FILL = 0.45
#: area per molecule in the bilayer, Å²
BILAYER_AREA_A2 = 38.0

SPHERES, WORMS, LAMELLAR = range(3)


def worm_onset(s: FloatArray) -> FloatArray:
    """NaCl mass fraction above which spheres grow into worms: more surfactant needs less salt."""
    return np.asarray(0.012 + 0.03 * np.exp(-s / 0.08), dtype=np.float64)


def lamellar_onset(c: FloatArray) -> FloatArray:
    """SLES mass fraction above which bilayers form: salt lowers it."""
    return np.asarray(0.26 - 1.5 * c + 8.0 * c**2, dtype=np.float64)


class SurfactantSalt(ZooSystem):
    name = "surfactant_salt"
    title = "SLES / NaCl: spheres, worms, lamellae"
    description = (
        "An anionic surfactant and salt: screening turns spherical micelles into long flexible "
        "wormlike micelles whose length grows with salt; at high surfactant a lamellar phase. "
        "Both probes see both boundaries."
    )
    components = Components([H2O, D2O, SLES, NACL])
    solutes = ("SLES", "NaCl")
    bounds = frozen({"SLES": (0.01, 0.35), "NaCl": (0.0, 0.06)})
    phases = ("spheres", "worms", "lamellar")
    size_parameters = frozen(
        {
            "spheres": ("radius",),
            "worms": ("length", "kuhn_length"),
            "lamellar": ("d_spacing",),
        }
    )

    def _phase_codes(self, x: FloatArray) -> IntArray:
        s, c = x[:, 0], x[:, 1]
        codes = np.where(c > worm_onset(s), WORMS, SPHERES)
        return np.where(s > lamellar_onset(c), LAMELLAR, codes).astype(np.int64)

    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        phi = self.volume_fractions(w, probe)
        solvent = solvent_for(probe)
        s, c = float(w[0]), float(w[1])
        medium = mix((phi[solvent.name], sld(solvent, probe)), (phi["NaCl"], sld(NACL, probe)))
        tail, head = sld(TAIL, probe), sld(HEAD, probe)
        shell = mix((SHELL_FILL, head), (1.0 - SHELL_FILL, medium))
        phi_s = phi["SLES"]
        # screening: how far past the worm onset (0 at the onset, 1 well beyond it)
        screening = float(smoothstep(c / float(worm_onset(np.asarray(s))), 0.0, 2.0))
        r_core = 0.9 * tail_length_a(12)
        if phase == "spheres":
            radius = r_core * (0.85 + 0.15 * screening)
            v_core = 4 / 3 * math.pi * radius**3
            v_particle = 4 / 3 * math.pi * (radius + SHELL_A) ** 3
            return "core_shell_sphere", {
                "scale": phi_s * v_particle / (v_core / V_TAIL_A3 * V_SURF_A3),
                "radius": radius,
                "radius_pd": 0.1,
                "thickness": SHELL_A,
                "sld_core": tail,
                "sld_shell": shell,
                "sld_solvent": medium,
            }
        if phase == "worms":
            # a uniform cross-section (core + hydrated shell) for flexible_cylinder
            outer = r_core + SHELL_A
            core_share = (r_core / outer) ** 2
            excess = max(c - float(worm_onset(np.asarray(s))), 0.0)
            return "flexible_cylinder", {
                "scale": phi_s / (core_share * V_SURF_A3 / V_TAIL_A3),
                "length": 600.0 * float(grow(excess / 0.01 + s / 0.1)),
                # screening stiffens nothing; it lets the worm bend more easily
                "kuhn_length": 300.0 - 100.0 * screening,
                "radius": outer,
                "sld": mix((core_share, tail), (1.0 - core_share, shell)),
                "sld_solvent": medium,
            }
        half_tail = V_TAIL_A3 / BILAYER_AREA_A2
        head_layer = V_HEAD_A3 / (BILAYER_AREA_A2 * SHELL_FILL)
        thickness = 2.0 * (half_tail + head_layer)
        phi_bilayer = min(max(phi_s * thickness * BILAYER_AREA_A2 / (2.0 * V_SURF_A3), 0.2), 0.4)
        return "lamellar_stack_caille", {
            "scale": 1.0,
            "thickness": thickness,
            "d_spacing": thickness / phi_bilayer,
            "Nlayers": float(round(8 + 30 * s)),
            # screened, dilute bilayers fluctuate more
            "Caille_parameter": 0.1 + 0.25 * screening + 0.3 * (0.4 - phi_bilayer),
            "sld": mix((half_tail, tail), (head_layer, shell)),
            "sld_solvent": medium,
        }
