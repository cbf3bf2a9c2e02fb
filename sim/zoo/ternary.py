"""A ternary microemulsion: C12E5 / decane / water (the station's water, H2O or D2O).

The nonionic surfactant C12E5 ((CH2)11CH3(OCH2CH2)5OH) solubilises oil in water
and water in oil. At fixed temperature the triangle holds four one-phase
structures, ordered by the oil share of the liquid, r = φ_oil / (φ_oil + φ_water):

* **L1**, little oil: oil-swollen micelles, spheres of tails + oil in water;
* **L2**, little water: reverse micelles, water pools lined by head groups,
  dispersed in decane (the oil is the continuous medium, so its SLD is the
  model's solvent SLD); concentrated, so with a hard-sphere S(q);
* **bicontinuous** microemulsion between them (Teubner-Strey), with a domain
  size set by how much interface the surfactant can cover;
* **lamellar**, surfactant-rich and water-rich: swollen bilayers.

Both probes see every boundary: X-rays from the electron-density contrast of
hydrocarbon (≈ 7.3-7.9) against water (9.4) and head groups, neutrons from the
hydrogenous oil and surfactant against D2O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    tail_length_a,
    tail_volume_a3,
)
from tandem.stations import Probe

C12E5 = Component("C12E5", "C22H46O6", 0.963, Role.LIQUID)
DECANE = Component("decane", "C10H22", 0.730, Role.LIQUID)

V_SURF_A3 = molecular_volume_a3(C12E5)
V_TAIL_A3 = tail_volume_a3(12)
V_HEAD_A3 = V_SURF_A3 - V_TAIL_A3
L_TAIL_A = tail_length_a(12)
TAIL = fragment("C12E5 tail", "C12H25", V_TAIL_A3)
HEAD = fragment("C12E5 head", "C10H21O6", V_HEAD_A3)
#: area per head group at a flat oil/water interface or in a bilayer, Å²
AREA_PER_HEAD_A2 = 45.0
#: hydrated E5 layer around a micelle, Å
HEAD_SHELL_A = 12.0
#: fraction of the hydrated head layer that is EO (the rest is water)
HEAD_FILL = 0.5
#: a trace of dispersed phase at the pure-liquid corners keeps the curves positive
TRACE = 1e-3

L1, L2, BICONTINUOUS, LAMELLAR = range(4)


class Ternary(ZooSystem):
    name = "ternary"
    title = "C12E5 / decane / water microemulsion"
    description = (
        "Nonionic surfactant, oil and water on the Gibbs triangle: oil-swollen micelles (L1), reverse "
        "micelles in oil (L2), a bicontinuous microemulsion between them and a lamellar phase at high "
        "surfactant. Both probes see every boundary (hydrocarbon against water for X-rays, hydrogenous "
        "oil and surfactant against D2O for neutrons)."
    )
    components = Components([H2O, D2O, C12E5, DECANE])
    solutes = ("C12E5", "decane")
    bounds = frozen({"C12E5": (0.0, 1.0), "decane": (0.0, 1.0)})
    max_total = 1.0
    ternary = True
    phases = ("L1", "L2", "bicontinuous", "lamellar")
    size_parameters = frozen(
        {
            "L1": ("radius",),
            "L2": ("radius",),
            "bicontinuous": ("d", "xi"),
            "lamellar": ("d_spacing", "length_tail"),
        }
    )

    def _phase_codes(self, x: FloatArray) -> IntArray:
        s, o = x[:, 0], x[:, 1]
        water = np.clip(1.0 - s - o, 0.0, None)
        r = o / np.maximum(o + water, 1e-12)
        # the surfactant widens the one-phase L1 and L2 wedges; lamellar needs surfactant and water
        lamellar = (s >= 0.40 + 0.25 * r) & (r < 0.45)
        l1 = r < 0.25 + 0.15 * s
        l2 = r > 0.75 - 0.15 * s
        codes = np.full(s.shape, BICONTINUOUS)
        codes = np.where(l2, L2, codes)
        codes = np.where(l1, L1, codes)
        return np.where(lamellar, LAMELLAR, codes).astype(np.int64)

    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        phi = self.volume_fractions(w, probe)
        water = solvent_for(probe).name
        rho = _Slds(
            water=sld(solvent_for(probe), probe),
            oil=sld(DECANE, probe),
            tail=sld(TAIL, probe),
            head=sld(HEAD, probe),
        )
        phi_s, phi_o, phi_w = max(phi["C12E5"], TRACE), phi["decane"], phi[water]
        if phase == "L1":
            return _swollen_micelles(phi_s, phi_o, rho)
        if phase == "L2":
            return _reverse_micelles(phi_s, phi_w, rho)
        if phase == "bicontinuous":
            return _bicontinuous(phi_s, phi_o, phi_w, rho)
        return _lamellar(phi_s, phi_o, rho)


@dataclass(frozen=True)
class _Slds:
    """SLDs (1e-6/Å²) of the four species the structures are built from, for one probe."""

    water: float
    oil: float
    tail: float
    head: float


def _sphere_volume(radius_a: float) -> float:
    return 4.0 / 3.0 * math.pi * radius_a**3


def _swollen_micelles(phi_s: float, phi_o: float, rho: _Slds) -> tuple[str, dict[str, float]]:
    """Tails + oil in the core, hydrated E5 in the shell; the oil a core holds saturates."""
    x = phi_o / (phi_s * V_TAIL_A3 / V_SURF_A3)  # oil per tail volume
    r_core = 0.85 * L_TAIL_A * float(grow(x))
    v_core = _sphere_volume(r_core)
    n_agg = v_core / (V_TAIL_A3 * (1.0 + x))
    v_particle = _sphere_volume(r_core + HEAD_SHELL_A)
    head_fill = min(n_agg * V_HEAD_A3 / (v_particle - v_core), 1.0)
    return "core_shell_sphere", {
        "scale": phi_s * v_particle / (n_agg * V_SURF_A3),
        "radius": r_core,
        "radius_pd": 0.1,
        "thickness": HEAD_SHELL_A,
        "sld_core": mix((1.0, rho.tail), (x, rho.oil)),
        "sld_shell": mix((head_fill, rho.head), (1.0 - head_fill, rho.water)),
        "sld_solvent": rho.water,
    }


def _reverse_micelles(phi_s: float, phi_w: float, rho: _Slds) -> tuple[str, dict[str, float]]:
    """Water pools lined by head groups, a shell of tails, in decane; the water a pool holds saturates."""
    y = max(phi_w, 1e-6) / (phi_s * V_HEAD_A3 / V_SURF_A3)  # water per head volume
    r_core = 15.0 * float(grow(y))
    v_core = _sphere_volume(r_core)
    n_agg = v_core / (V_HEAD_A3 * (1.0 + y))
    shell_a = 0.8 * L_TAIL_A
    v_particle = _sphere_volume(r_core + shell_a)
    tail_fill = min(n_agg * V_TAIL_A3 / (v_particle - v_core), 1.0)
    volfraction = min(phi_s * v_particle / (n_agg * V_SURF_A3), 0.5)
    return "core_shell_sphere@hardsphere", {
        "scale": 1.0,  # sasmodels' P@S takes the particles' volume fraction from `volfraction`
        "volfraction": volfraction,
        "radius": r_core,
        "radius_pd": 0.1,
        "thickness": shell_a,
        "radius_effective": r_core + shell_a,
        "radius_effective_mode": 0.0,
        "structure_factor_mode": 0.0,
        "sld_core": mix((y, rho.water), (1.0, rho.head)),
        "sld_shell": mix((tail_fill, rho.tail), (1.0 - tail_fill, rho.oil)),
        "sld_solvent": rho.oil,
    }


def _bicontinuous(phi_s: float, phi_o: float, phi_w: float, rho: _Slds) -> tuple[str, dict[str, float]]:
    """Water (+ heads) and oil (+ tails) domains; less interface per volume means larger domains."""
    phi_a = phi_w + phi_s * V_HEAD_A3 / V_SURF_A3
    phi_b = phi_o + phi_s * V_TAIL_A3 / V_SURF_A3
    phi_a, phi_b = phi_a / (phi_a + phi_b), phi_b / (phi_a + phi_b)
    # Porod length 4 φa φb V/S with S/V = φs a0 / v_s, compressed into the phase's 2× range
    d_a = 80.0 * float(grow(4.0 * phi_a * phi_b * 0.1 / phi_s))
    return "teubner_strey", {
        "scale": 1.0,
        "volfraction_a": phi_a,
        "sld_a": mix((phi_w, rho.water), (phi_s * V_HEAD_A3 / V_SURF_A3, rho.head)),
        "sld_b": mix((phi_o, rho.oil), (phi_s * V_TAIL_A3 / V_SURF_A3, rho.tail)),
        "d": d_a,
        # ξ/d sets how well-ordered the domains are (the amphiphilicity factor)
        "xi": 0.4 * d_a,
    }


def _lamellar(phi_s: float, phi_o: float, rho: _Slds) -> tuple[str, dict[str, float]]:
    """Bilayers with oil between the tails, swollen by water: d = (bilayer thickness) / φ_bilayer."""
    x = phi_o / (phi_s * V_TAIL_A3 / V_SURF_A3)
    length_tail = V_TAIL_A3 / AREA_PER_HEAD_A2 * (1.0 + 0.25 * x / (1.0 + x))
    length_head = V_HEAD_A3 / (AREA_PER_HEAD_A2 * HEAD_FILL)
    phi_bilayer = min(max(phi_s + phi_o, 0.5), 0.9)
    return "lamellar_hg_stack_caille", {
        "scale": 1.0,
        "length_tail": length_tail,
        "length_head": length_head,
        "Nlayers": 12.0,
        "d_spacing": 2.0 * (length_tail + length_head) / phi_bilayer,
        # more water between the bilayers, softer stacks
        "Caille_parameter": 0.05 + 0.3 * (1.0 - phi_bilayer),
        "sld": mix((1.0, rho.tail), (x, rho.oil)),
        "sld_head": mix((HEAD_FILL, rho.head), (1.0 - HEAD_FILL, rho.water)),
        "sld_solvent": rho.water,
    }
