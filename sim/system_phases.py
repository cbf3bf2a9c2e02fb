"""The phase truth of the default system (SDS / PPG / NaCl in water): which phase is where.

The system's ingredients (the two solvents, the three solutes, the agent-space
axes and their bounds), its five phases with the sasmodels model of each, and the
curves that bound them in composition space: the CMC of SDS (Corrin-Harkins, salt
lowers it), the most PPG the micelles bind, the polymer's cloud curve, and the
onsets of rods and of the lamellar phase; `phase_codes_at` combines them into the
phase at each composition. The structure inside each phase, which follows the
same curves smoothly, is `tandem.sim.system_structures`; `tandem.sim.systems`
puts the two together as the ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from tandem.components import Component, Components, Role
from tandem.stations import Probe

FloatArray = npt.NDArray[np.float64]

H2O = Component("H2O", "H2O", 0.997, Role.LIQUID)
D2O = Component("D2O", "D2O", 1.104, Role.LIQUID)
#: density from SDS's partial specific volume in micelles (0.87 mL/g), which sets its contrast
SDS = Component("SDS", "C12H25NaO4S", 1.15, Role.SOLUTE)
#: PPG-1000, H(C3H6O)17OH
PPG = Component("PPG", "C51H104O18", 1.005, Role.SOLUTE)
NACL = Component("NaCl", "NaCl", 2.165, Role.SOLUTE)

#: Every component of the default system: the two solvents and the three solutes.
DEFAULT_COMPONENTS = Components([H2O, D2O, SDS, PPG, NACL])
#: The agent-space axes: mass fractions of these; the station's solvent is the rest.
SOLUTE_NAMES: tuple[str, ...] = ("SDS", "PPG", "NaCl")
#: Mass-fraction ranges that a campaign explores.
DEFAULT_BOUNDS: Mapping[str, tuple[float, float]] = {
    "SDS": (0.0, 0.15),
    "PPG": (0.0, 0.10),
    "NaCl": (0.0, 0.05),
}
#: Where the model's physics is meant to hold; beyond it the truth refuses to answer.
VALIDITY_BOUNDS: Mapping[str, tuple[float, float]] = {
    "SDS": (0.0, 0.30),
    "PPG": (0.0, 0.20),
    "NaCl": (0.0, 0.10),
}

PHASES: tuple[str, ...] = (
    "spherical_micelles",
    "elongated_micelles",
    "lamellar",
    "polymer_solution",
    "polymer_clusters",
)
PHASE_MODELS: Mapping[str, str] = {
    "spherical_micelles": "core_shell_sphere",
    "elongated_micelles": "core_shell_cylinder",
    "lamellar": "lamellar_hg_stack_caille",
    "polymer_solution": "polymer_excl_volume",
    "polymer_clusters": "mass_fractal",
}
#: The phases on either side of the boundary that SANS sees and SAXS does not.
NEUTRON_ONLY_BOUNDARY: tuple[str, str] = ("polymer_solution", "polymer_clusters")

SPHERE, CYLINDER, LAMELLAR, POLYMER, CLUSTERS = range(5)


def solvent_for(probe: Probe | str) -> Component:
    """Each station's own solvent: light water for X-rays, heavy water for neutrons."""
    return D2O if Probe(probe) is Probe.NEUTRON else H2O


def cmc_molar(salt_molar: FloatArray) -> FloatArray:
    """CMC of SDS (mol/L) from the Corrin-Harkins relation, 8.2 mM in pure water.

    Solves log10(cmc) = a - 0.66 log10(cmc + [NaCl]) by Newton's method in
    log(cmc), which is monotonic and converges in a few steps from 8.2 mM.
    """
    a = -3.463
    y = np.full_like(salt_molar, math.log(8.2e-3))
    for _ in range(8):
        x = np.exp(y)
        g = y / math.log(10) - a + 0.66 * np.log10(x + salt_molar)
        dg = 1.0 / math.log(10) * (1.0 + 0.66 * x / (x + salt_molar))
        y = y - g / dg
    return np.asarray(np.exp(y), dtype=np.float64)


def cmc_mass_fraction(nacl: FloatArray) -> FloatArray:
    salt_molar = nacl / NACL.molar_mass_g_per_mol * 1e3
    return cmc_molar(salt_molar) * SDS.molar_mass_g_per_mol * 1e-3


def polymer_saturation(s: FloatArray, cmc: FloatArray) -> FloatArray:
    """Most PPG (mass fraction) the micelles of `s` SDS can bind; beyond it the polymer has its own region."""
    excess = np.clip(s - cmc, 0.0, None)
    return 1.0 * excess + 4.0 * excess**2


def cloud_curve(s: FloatArray, c: FloatArray) -> FloatArray:
    """PPG fraction beyond which the polymer clusters: salt lowers it, bound SDS raises it."""
    return 0.06 + 0.6 * s + 3.0 * s**2 - 0.6 * c - 4.0 * c**2


def rod_onset(s: FloatArray) -> FloatArray:
    """NaCl fraction above which micelles grow into rods; more SDS needs less salt."""
    return 0.004 + 0.030 * np.exp(-s / 0.07)


def lamellar_onset(c: FloatArray, p: FloatArray) -> FloatArray:
    """SDS fraction above which the lamellar phase forms; salt lowers it, bound polymer raises it."""
    return 0.14 - 1.0 * c + 6.0 * c**2 + 0.15 * p


def phase_codes_at(s: FloatArray, p: FloatArray, c: FloatArray) -> npt.NDArray[np.int64]:
    """Phase code (index into `PHASES`) at each composition: SDS, PPG and NaCl mass fractions, broadcast."""
    cmc = cmc_mass_fraction(c)
    p_sat = polymer_saturation(s, cmc)
    p_cloud = cloud_curve(s, c)
    micellar = (s > cmc) & (p <= p_sat)
    codes = np.where(p > p_cloud, CLUSTERS, POLYMER)
    lamellar = micellar & (s >= lamellar_onset(c, p))
    rods = micellar & ~lamellar & (c >= rod_onset(s))
    codes = np.where(micellar, SPHERE, codes)
    codes = np.where(rods, CYLINDER, codes)
    codes = np.where(lamellar, LAMELLAR, codes)
    return codes.astype(np.int64)
