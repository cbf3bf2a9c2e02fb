"""Micelles among polymer: C12E8 micelles with PPG-4000, dilute coils or a network.

PPG's electron density matches water's (X-ray SLDs 9.43 against 9.42), so to
X-rays only the micelles scatter. To neutrons hydrogenous PPG in D2O is a
strong scatterer. Below the overlap concentration c* the chains are separate
coils (`polymer_excl_volume`); above it they form a network, whose mesh
(Ornstein-Zernike correlation length ξ) shrinks with concentration and whose
frozen-in inhomogeneities (micelles bridging chains) add a low-q power law
(`correlation_length`). Micelles crowd the chains, so c* falls with surfactant.

The micelles are the same on both sides: their size follows the surfactant
fraction only, and the medium around them is water with dissolved polymer on
both sides. So the coils / network boundary is a boundary of the neutron map
only: X-rays report one phase, `micelles`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from tandem.components import Component, Components, Role
from tandem.sim.system_phases import D2O, H2O, solvent_for
from tandem.sim.zoo.base import (
    CONTRAST_TO_INV_CM,
    FloatArray,
    IntArray,
    ZooSystem,
    fragment,
    frozen,
    mix,
    molecular_volume_a3,
    sld,
    smoothstep,
    tail_length_a,
    tail_volume_a3,
)
from tandem.stations import Probe

C12E8 = Component("C12E8", "C28H58O9", 1.03, Role.SOLUTE)
#: PPG-4000, H(C3H6O)68OH: a liquid
PPG = Component("PPG", "C204H410O69", 1.005, Role.LIQUID)

V_SURF_A3 = molecular_volume_a3(C12E8)
V_TAIL_A3 = tail_volume_a3(12)
V_HEAD_A3 = V_SURF_A3 - V_TAIL_A3
TAIL = fragment("C12E8 tail", "C12H25", V_TAIL_A3)
HEAD = fragment("C12E8 head", "C16H33O9", V_HEAD_A3)
V_CHAIN_A3 = molecular_volume_a3(PPG)
#: radius of gyration of a dilute PPG-4000 coil in water, Å
RG_DILUTE_A = 22.0
#: hydrated E8 shell, Å, and the EO share of it
SHELL_A = 14.0
SHELL_FILL = 0.4
#: Flory exponent of a coil in good solvent
NU = 0.588

COILS, NETWORK = range(2)


def overlap(s: FloatArray) -> FloatArray:
    """PPG mass fraction c* where coils overlap; micelles take volume from the chains, lowering it."""
    return np.asarray(0.13 - 0.3 * s - 1.5 * s**2, dtype=np.float64)


class PolymerSurfactant(ZooSystem):
    name = "polymer_surfactant"
    title = "C12E8 micelles with PPG-4000: coils or network (neutrons only)"
    description = (
        "Nonionic micelles with a polymer that is contrast-matched to H2O for X-rays. Below the "
        "overlap concentration the polymer is in dilute coils, above it a network with frozen-in "
        "inhomogeneities. The micelles are the same on both sides: X-rays see one phase, neutrons two."
    )
    components = Components([H2O, D2O, C12E8, PPG])
    solutes = ("C12E8", "PPG")
    bounds = frozen({"C12E8": (0.01, 0.10), "PPG": (0.0, 0.20)})
    phases = ("micelles_coils", "micelles_network")
    size_parameters = frozen(
        {
            "micelles_coils": ("A_radius", "B_rg"),
            "micelles_network": ("A_radius", "B_cor_length"),
        }
    )

    def _phase_codes(self, x: FloatArray) -> IntArray:
        return np.where(x[:, 1] > overlap(x[:, 0]), NETWORK, COILS).astype(np.int64)

    def seen_as(self, probe: Probe | str) -> Mapping[str, str]:
        if self._probe(probe) is Probe.XRAY:
            return dict.fromkeys(self.phases, "micelles")
        return {p: p for p in self.phases}

    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        phi = self.volume_fractions(w, probe)
        solvent = solvent_for(probe)
        s, p = float(w[0]), float(w[1])
        phi_s, phi_p = phi["C12E8"], phi["PPG"]
        rho_ppg = sld(PPG, probe)
        # the medium around the micelles: water and dissolved chains, on either side of c*
        medium = mix((phi[solvent.name], sld(solvent, probe)), (phi_p, rho_ppg))
        params = _micelles(s, phi_s, medium, probe)
        # the chains scatter against the water around them
        contrast = (rho_ppg - sld(solvent, probe)) ** 2 * CONTRAST_TO_INV_CM
        c_star = float(overlap(np.asarray(s)))
        if phase == "micelles_coils":
            ratio = p / c_star
            params |= {
                "B_scale": phi_p * contrast * V_CHAIN_A3 / (1.0 + 2.0 * ratio),
                # coils shrink a little as they begin to feel each other
                "B_rg": RG_DILUTE_A * (1.0 - 0.2 * ratio),
                "B_porod_exp": 1.0 / NU,
            }
            return "core_shell_sphere+polymer_excl_volume", params
        depth = min(p / c_star, 3.0)
        # semi-dilute mesh: ξ = Rg (c/c*)^(-ν/(3ν-1))
        xi = RG_DILUTE_A * depth ** (-NU / (3 * NU - 1))
        blob = 4 / 3 * math.pi * xi**3
        params |= {
            "B_scale": 1.0,
            "B_lorentz_scale": phi_p * contrast * blob,
            "B_cor_length": xi,
            "B_lorentz_exp": 2.0,
            # frozen inhomogeneities of the micelle-bridged network: a mass-fractal-like upturn
            "B_porod_scale": phi_p * contrast * 0.01 * (1.0 + float(smoothstep(depth, 1.0, 2.0))),
            "B_porod_exp": 3.0,
        }
        return "core_shell_sphere+correlation_length", params


def _micelles(s: float, phi_s: float, medium: float, probe: Probe) -> dict[str, float]:
    """C12E8 micelles growing slowly with surfactant (a weak sphere-to-ellipsoid trend, kept spherical)."""
    radius = 0.9 * tail_length_a(12) * (1.0 + 0.3 * float(smoothstep(s, 0.01, 0.10)))
    v_core = 4 / 3 * math.pi * radius**3
    v_particle = 4 / 3 * math.pi * (radius + SHELL_A) ** 3
    n_agg = v_core / V_TAIL_A3
    head_fill = min(n_agg * V_HEAD_A3 / (v_particle - v_core), 1.0)
    return {
        "scale": 1.0,
        "A_scale": phi_s * v_particle / (n_agg * V_SURF_A3),
        "A_radius": radius,
        "A_radius_pd": 0.1,
        "A_thickness": SHELL_A,
        "A_sld_core": sld(TAIL, probe),
        "A_sld_shell": mix((head_fill, sld(HEAD, probe)), (1.0 - head_fill, medium)),
        "A_sld_solvent": medium,
    }
