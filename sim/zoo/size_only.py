"""Swollen micelles and nanoemulsion droplets: two phases that differ only in size.

A nonionic surfactant (C16E10, Brij-56-like) solubilises hexadecane in its
micelles' cores up to a limit set by the oil-to-surfactant ratio (which
grows with surfactant, as bigger micelles hold more oil per molecule).
Beyond it the micelles cannot take more oil: the system forms nanoemulsion
droplets (an oil core under a surfactant monolayer), several times larger.

Same morphology (core-shell spheres), same chemistry in core and shell (the
core's SLD is the tails-and-oil mix on both sides, continuous across the
boundary), so the two phases differ only in size: the core radius jumps by
a factor ≥ 3.5 at the boundary while inside each phase it varies by ≤ 2×.
Both probes see the boundary (the Guinier region moves by that factor).
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
    tail_volume_a3,
)
from tandem.stations import Probe

C16E10 = Component("C16E10", "C36H74O11", 1.03, Role.SOLUTE)
HEXADECANE = Component("hexadecane", "C16H34", 0.773, Role.LIQUID)

V_SURF_A3 = molecular_volume_a3(C16E10)
V_TAIL_A3 = tail_volume_a3(16)
V_HEAD_A3 = V_SURF_A3 - V_TAIL_A3
TAIL = fragment("C16E10 tail", "C16H33", V_TAIL_A3)
HEAD = fragment("C16E10 head", "C20H41O11", V_HEAD_A3)
#: hydrated E10 shell, Å, the same around micelles and droplets
SHELL_A = 16.0
#: smallest core radius of each phase, Å: the size jump at the boundary is their ratio
MICELLE_CORE_A = 20.0
DROPLET_CORE_A = 150.0

MICELLES, DROPLETS = range(2)


def solubilisation_limit(s: FloatArray) -> FloatArray:
    """Most hexadecane (mass fraction) the micelles of `s` surfactant can hold."""
    return np.asarray(s * (0.3 + 3.0 * s), dtype=np.float64)


class SizeOnly(ZooSystem):
    name = "size_only"
    title = "C16E10 / hexadecane: swollen micelles or nanoemulsion droplets (size only)"
    description = (
        "Oil-swollen micelles up to the solubilisation limit, nanoemulsion droplets beyond it: "
        "the same core-shell spheres with the same contrast, differing only in size (a jump of "
        "≥ 3.5× at the boundary, ≤ 2× inside each phase). Both probes see the boundary."
    )
    components = Components([H2O, D2O, C16E10, HEXADECANE])
    solutes = ("C16E10", "hexadecane")
    bounds = frozen({"C16E10": (0.01, 0.10), "hexadecane": (0.0, 0.08)})
    phases = ("swollen_micelles", "droplets")
    size_parameters = frozen({"swollen_micelles": ("radius",), "droplets": ("radius",)})

    def _phase_codes(self, x: FloatArray) -> IntArray:
        return np.where(x[:, 1] > solubilisation_limit(x[:, 0]), DROPLETS, MICELLES).astype(np.int64)

    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        phi = self.volume_fractions(w, probe)
        water = sld(solvent_for(probe), probe)
        s, o = float(w[0]), float(w[1])
        phi_s, phi_o = phi["C16E10"], phi["hexadecane"]
        x = phi_o / (phi_s * V_TAIL_A3 / V_SURF_A3)  # oil per tail volume
        limit = float(solubilisation_limit(np.asarray(s)))
        if phase == "swollen_micelles":
            radius = MICELLE_CORE_A * float(grow(o / limit))
        else:
            # beyond the limit the excess oil sets the droplets' size
            radius = DROPLET_CORE_A * float(grow((o - limit) / limit))
        v_core = 4 / 3 * math.pi * radius**3
        v_particle = 4 / 3 * math.pi * (radius + SHELL_A) ** 3
        n_agg = v_core / (V_TAIL_A3 * (1.0 + x))
        head_fill = min(n_agg * V_HEAD_A3 / (v_particle - v_core), 1.0)
        return "core_shell_sphere", {
            "scale": phi_s * v_particle / (n_agg * V_SURF_A3),
            "radius": radius,
            "radius_pd": 0.15,
            "thickness": SHELL_A,
            "sld_core": mix((1.0, sld(TAIL, probe)), (x, sld(HEXADECANE, probe))),
            "sld_shell": mix((head_fill, sld(HEAD, probe)), (1.0 - head_fill, water)),
            "sld_solvent": water,
        }
