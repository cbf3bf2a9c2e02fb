"""A smooth crossover next to a sharp boundary: catanionic CTAB / SOS mixtures.

Sodium octyl sulfate (SOS) pairs with the cationic CTAB in the micelles and
neutralises their charge: the head groups pack closer and spherical micelles
grow continuously into rods over a band of SOS mole fraction u. There is no
transition there, only a crossover; the truth labels each side of the band's
midline (`spheres`, `rods`). Nearer charge neutrality the mixed bilayer
becomes the preferred structure and the system jumps, at a sharp boundary,
into unilamellar vesicles (Kaler's catanionic vesicles).

The micelles are prolate ellipsoids whose polar radius grows from the
equatorial one (spheres) to four times it (rods) across the band; vesicles
are shells of the mixed bilayer. Both probes see the band and the boundary.
"""

from __future__ import annotations

import numpy as np

from tandem.components import Component, Components, Role
from tandem.sim.system_phases import D2O, H2O, solvent_for
from tandem.sim.zoo.base import FloatArray, IntArray, ZooSystem, frozen, mix, sld, smoothstep, tail_length_a
from tandem.stations import Probe

CTAB = Component("CTAB", "C19H42BrN", 1.10, Role.SOLUTE)
SOS = Component("SOS", "C8H17NaO4S", 1.20, Role.SOLUTE)
#: water of hydration in a micelle, per volume of surfactant
HYDRATION = 0.3
#: equatorial radius of the micelles (a C16 chain and its head group), Å
EQUATORIAL_A = 0.8 * tail_length_a(16) + 5.0
#: half-width of the crossover band in SOS mole fraction
BAND_HALF_WIDTH = 0.08

SPHERES, RODS, VESICLES = range(3)


def sos_mole_fraction(x: FloatArray) -> FloatArray:
    """u = n_SOS / (n_CTAB + n_SOS) of an (N, 2) array of (CTAB, SOS) mass fractions."""
    n_ctab = x[:, 0] / CTAB.molar_mass_g_per_mol
    n_sos = x[:, 1] / SOS.molar_mass_g_per_mol
    return np.asarray(n_sos / np.maximum(n_ctab + n_sos, 1e-12), dtype=np.float64)


def band_midline(ctab: FloatArray) -> FloatArray:
    """u at the middle of the crossover band: more surfactant, earlier growth."""
    return np.asarray(0.22 - 1.5 * (ctab - 0.0275), dtype=np.float64)


def vesicle_onset(ctab: FloatArray) -> FloatArray:
    """u beyond which vesicles form (sharp): more surfactant needs nearer neutrality."""
    return np.asarray(0.40 + 0.8 * (ctab - 0.0275), dtype=np.float64)


class Crossover(ZooSystem):
    name = "crossover"
    title = "CTAB / SOS: a sphere-to-rod crossover beside a sharp vesicle boundary"
    description = (
        "Catanionic surfactant mixtures: micelles grow smoothly from spheres into rods across a band "
        "of SOS mole fraction (the truth labels each side of its midline), then jump sharply into "
        "vesicles nearer charge neutrality. Both probes see both."
    )
    components = Components([H2O, D2O, CTAB, SOS])
    solutes = ("CTAB", "SOS")
    bounds = frozen({"CTAB": (0.005, 0.05), "SOS": (0.0, 0.02)})
    phases = ("spheres", "rods", "vesicles")
    size_parameters = frozen(
        {"spheres": ("radius_polar",), "rods": ("radius_polar",), "vesicles": ("radius",)}
    )

    def growth(self, fractions: FloatArray) -> FloatArray:
        """0 (spheres) to 1 (rods) across the crossover band; 0.5 on its midline."""
        x = np.asarray(fractions, dtype=np.float64)
        mid = band_midline(x[:, 0])
        u = sos_mole_fraction(x)
        return np.asarray(smoothstep(u - mid, -BAND_HALF_WIDTH, BAND_HALF_WIDTH), dtype=np.float64)

    def _phase_codes(self, x: FloatArray) -> IntArray:
        u = sos_mole_fraction(x)
        codes = np.where(u >= band_midline(x[:, 0]), RODS, SPHERES)
        return np.where(u > vesicle_onset(x[:, 0]), VESICLES, codes).astype(np.int64)

    def _structure(self, w: FloatArray, phase: str, probe: Probe) -> tuple[str, dict[str, float]]:
        phi = self.volume_fractions(w, probe)
        water = sld(solvent_for(probe), probe)
        phi_c, phi_s = phi["CTAB"], phi["SOS"]
        surfactant = mix((phi_c, sld(CTAB, probe)), (phi_s, sld(SOS, probe)))
        u = float(sos_mole_fraction(w[None, :])[0])
        if phase == "vesicles":
            onset = float(vesicle_onset(np.asarray(w[0])))
            thickness = 2.0 * 0.8 * tail_length_a(16)
            return "vesicle", {
                "scale": 1.0,  # sasmodels' vesicle takes the bilayer's volume fraction as `volfraction`
                "volfraction": phi_c + phi_s,
                # nearer neutrality the bilayer is less curved: bigger vesicles
                "radius": 250.0 * (1.0 + 0.8 * float(smoothstep(u, onset, 0.9))),
                "thickness": thickness,
                "sld": surfactant,
                "sld_solvent": water,
            }
        t = float(self.growth(w[None, :])[0])
        return "ellipsoid", {
            "scale": (phi_c + phi_s) * (1.0 + HYDRATION),
            "radius_equatorial": EQUATORIAL_A,
            "radius_polar": EQUATORIAL_A * 4.0**t,
            "sld": mix((1.0, surfactant), (HYDRATION, water)),
            "sld_solvent": water,
        }
