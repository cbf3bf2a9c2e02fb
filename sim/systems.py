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

Contrast is computed, never typed in: every SLD comes from the components'
formulas and densities through periodictable, at the station's energy or
wavelength; the medium (solvent + dissolved salt + free unimers) is a
volume-weighted mixture. Volume fractions use each component's partial volume
(its `density_g_per_ml`), which is what sets the scattering; the pipetting
convention of `tandem.composition` (solutes add no volume) is a different
question and is not used here.

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

from tandem.components import (
    DEFAULT_NEUTRON_WAVELENGTH_A,
    DEFAULT_XRAY_ENERGY_KEV,
    Component,
    Components,
    Role,
)
from tandem.errors import InvalidCompositionError
from tandem.sim.truth import TruthPoint
from tandem.stations import Probe

FloatArray = npt.NDArray[np.float64]

#: Avogadro's number in 1/mol, times 1e-24 to turn g/mL into (g/mol)/Å³.
_N_A_PER_A3 = 0.602214076
#: (1e-6/Å²)² · Å³ = 1e-12 / Å = 1e-4 / cm: converts Δρ²·V to 1/cm.
_CONTRAST_TO_INV_CM = 1e-4

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

# --- molecular geometry of SDS (Tanford) ------------------------------------------------------
#: volume and fully extended length of the C12H25 chain
TAIL_VOLUME_A3 = 27.4 + 26.9 * 12
TAIL_LENGTH_A = 1.5 + 1.265 * 12
SDS_VOLUME_A3 = SDS.molar_mass_g_per_mol / (SDS.density_g_per_ml * _N_A_PER_A3)
HEAD_VOLUME_A3 = SDS_VOLUME_A3 - TAIL_VOLUME_A3
#: head-group layer: sulfate, bound counterions and hydration water
SHELL_THICKNESS_A = 6.5
#: area per head group in the bilayer, sets the bilayer's tail half-thickness
BILAYER_AREA_A2 = 32.0
PPG_CHAIN_VOLUME_A3 = PPG.molar_mass_g_per_mol / (PPG.density_g_per_ml * _N_A_PER_A3)
#: radius of gyration of a free PPG-1000 chain in water
PPG_RG_A = 9.5
#: shell water replaced by bound polymer when the micelles are saturated with it
SHELL_POLYMER_AT_SATURATION = 0.8
#: polymer volume fraction inside the clusters beyond the cloud curve (the rest is medium)
CLUSTER_POLYMER_FRACTION = 0.7


def _fragment(name: str, formula: str, volume_a3: float) -> Component:
    """A molecular fragment as a component, so its SLD comes from the same code path."""
    from periodictable import formula as pt_formula

    mass = float(pt_formula(formula).mass)
    return Component(name, formula, mass / (volume_a3 * _N_A_PER_A3), Role.SOLUTE)


SDS_TAIL = _fragment("SDS tail", "C12H25", TAIL_VOLUME_A3)
SDS_HEAD = _fragment("SDS head", "SO4Na", HEAD_VOLUME_A3)


def solvent_for(probe: Probe | str) -> Component:
    """Each station's own solvent: light water for X-rays, heavy water for neutrons."""
    return D2O if Probe(probe) is Probe.NEUTRON else H2O


@dataclass(frozen=True)
class Contrast:
    """SLDs (1e-6/Å²) of every species the structures are built from, for one probe."""

    probe: Probe
    solvent: float
    sds: float
    tail: float
    head: float
    ppg: float
    nacl: float

    @classmethod
    def compute(cls, probe: Probe, *, energy_kev: float, wavelength_a: float) -> Contrast:
        def sld(component: Component) -> float:
            if probe is Probe.XRAY:
                return component.xray_sld(energy_kev)
            return component.neutron_sld(wavelength_a)

        return cls(
            probe=probe,
            solvent=sld(solvent_for(probe)),
            sds=sld(SDS),
            tail=sld(SDS_TAIL),
            head=sld(SDS_HEAD),
            ppg=sld(PPG),
            nacl=sld(NACL),
        )


@dataclass(frozen=True)
class StructureArrays:
    """The structure at N compositions: phase codes and every model's parameters as arrays."""

    phase: npt.NDArray[np.int64]
    parameters: Mapping[str, FloatArray]

    def phase_labels(self) -> npt.NDArray[np.str_]:
        return np.asarray(PHASES, dtype=np.str_)[self.phase]


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
        keys = _MODEL_PARAMETERS[model]
        params = {name: float(arrays.parameters[key][0]) for name, key in keys.items()}
        return TruthPoint(phase=phase, model=model, parameters=params)

    def phase_of(self, composition: Mapping[str, float]) -> str:
        s, p, c = self.fractions(composition)
        return PHASES[int(self.phase_codes(s, p, c)[0])]

    # -- vectorised physics --------------------------------------------------------------------

    def phase_codes(self, sds: Any, ppg: Any, nacl: Any) -> npt.NDArray[np.int64]:
        """Phase code (index into `PHASES`) at each composition; broadcasts its inputs."""
        s, p, c = np.broadcast_arrays(_as_array(sds), _as_array(ppg), _as_array(nacl))
        cmc = _cmc_mass_fraction(c)
        p_sat = _polymer_saturation(s, cmc)
        p_cloud = _cloud_curve(s, c)
        micellar = (s > cmc) & (p <= p_sat)
        codes = np.where(p > p_cloud, CLUSTERS, POLYMER)
        lamellar = micellar & (s >= _lamellar_onset(c, p))
        rods = micellar & ~lamellar & (c >= _rod_onset(s))
        codes = np.where(micellar, SPHERE, codes)
        codes = np.where(rods, CYLINDER, codes)
        codes = np.where(lamellar, LAMELLAR, codes)
        return codes.astype(np.int64)

    def evaluate(self, sds: Any, ppg: Any, nacl: Any, probe: Probe | str) -> StructureArrays:
        """Phase and model parameters of every phase's model at each composition.

        Only the parameters of the phase a point is in are meaningful at that
        point; the others are computed anyway (cheap, and branch-free).
        """
        rho = self.contrast(probe)
        s, p, c = (
            a.astype(np.float64) for a in np.broadcast_arrays(_as_array(sds), _as_array(ppg), _as_array(nacl))
        )
        state = _SampleState.of(s, p, c, rho)
        codes = self.phase_codes(s, p, c)
        params: dict[str, FloatArray] = {
            "background": self._incoherent_background(state.phi_sds, state.phi_ppg, rho.probe),
            "sld_solvent": state.sld_medium,
            "sld_core": np.full_like(s, rho.tail),
        }
        sphere_scale = _micelle_parameters(state, params)
        rod_scale = _rod_parameters(state, params)
        _lamellar_parameters(state, params)
        polymer_scale = _polymer_parameters(state, params)
        cluster_scale = _cluster_parameters(state, params)
        params["scale"] = np.select(
            [codes == SPHERE, codes == CYLINDER, codes == LAMELLAR, codes == POLYMER],
            [sphere_scale, rod_scale, np.ones_like(s), polymer_scale],
            cluster_scale,
        )
        return StructureArrays(phase=codes, parameters=params)

    def _incoherent_background(self, phi_sds: FloatArray, phi_ppg: FloatArray, probe: Probe) -> FloatArray:
        """Flat 1/cm from the hydrogen of the solutes (neutrons); X-rays: none worth modelling.

        The solvent's own flat scattering belongs to the blank, not to the
        structure, so only what the solutes add is counted here.
        """
        if probe is Probe.XRAY:
            return np.zeros_like(phi_sds)
        return (
            phi_sds * SDS.neutron_incoherent_per_cm_sr() + phi_ppg * PPG.neutron_incoherent_per_cm_sr()
        ).astype(np.float64)


@dataclass(frozen=True)
class _SampleState:
    """What every phase's structure is computed from, at N compositions."""

    s: FloatArray
    p: FloatArray
    c: FloatArray
    rho: Contrast
    phi_sds: FloatArray
    phi_ppg: FloatArray
    #: volume fraction of SDS in aggregates (above the CMC)
    phi_sds_agg: FloatArray
    ionic_molar: FloatArray
    sld_medium: FloatArray
    #: fraction of the head layer's water replaced by bound polymer
    bound: FloatArray

    @classmethod
    def of(cls, s: FloatArray, p: FloatArray, c: FloatArray, rho: Contrast) -> _SampleState:
        solvent = solvent_for(rho.probe)
        # volumes (mL per g of sample) from partial volumes
        v_solvent = (1.0 - s - p - c) / solvent.density_g_per_ml
        v_sds = s / SDS.density_g_per_ml
        v_ppg = p / PPG.density_g_per_ml
        v_salt = c / NACL.density_g_per_ml
        volume = v_solvent + v_sds + v_ppg + v_salt
        salt_molar = (c / NACL.molar_mass_g_per_mol) / (volume * 1e-3)
        cmc_molar = _cmc_molar(salt_molar)
        cmc = cmc_molar * SDS.molar_mass_g_per_mol * 1e-3 * volume
        p_sat = _polymer_saturation(s, cmc)
        return cls(
            s=s,
            p=p,
            c=c,
            rho=rho,
            phi_sds=v_sds / volume,
            phi_ppg=v_ppg / volume,
            phi_sds_agg=np.clip(s - cmc, 0.0, None) / SDS.density_g_per_ml / volume,
            ionic_molar=salt_molar + cmc_molar,
            # the medium: the solvent with the salt dissolved in it
            sld_medium=(v_solvent * rho.solvent + v_salt * rho.nacl) / (v_solvent + v_salt),
            bound=SHELL_POLYMER_AT_SATURATION * np.clip(p / np.maximum(p_sat, 1e-12), 0.0, 1.0),
        )


def _core_radius(state: _SampleState) -> FloatArray:
    """Screening lets the head groups pack closer and the core approach the extended chain length."""
    return 15.2 + 1.4 * (1.0 - np.exp(-state.ionic_molar / 0.2))


def _micelle_parameters(state: _SampleState, params: dict[str, FloatArray]) -> FloatArray:
    """Spherical micelles: a core of tails, a shell of heads, bound polymer and medium."""
    r_core = _core_radius(state)
    n_agg = (4.0 / 3.0) * np.pi * r_core**3 / TAIL_VOLUME_A3
    v_particle = (4.0 / 3.0) * np.pi * (r_core + SHELL_THICKNESS_A) ** 3
    shell_volume = v_particle - (4.0 / 3.0) * np.pi * r_core**3
    params["radius"] = r_core
    params["thickness"] = np.full_like(r_core, SHELL_THICKNESS_A)
    params["radius_pd"] = np.full_like(r_core, 0.1)
    params["sld_shell"] = _shell_sld(n_agg * HEAD_VOLUME_A3 / shell_volume, state)
    return state.phi_sds_agg / (n_agg * SDS_VOLUME_A3) * v_particle


def _rod_parameters(state: _SampleState, params: dict[str, FloatArray]) -> FloatArray:
    """Rods: the micelles' cross-section chemistry; length grows with screening and with SDS."""
    r_rod = _core_radius(state) - 0.5
    excess_salt = np.clip(state.c - _rod_onset(state.s), 0.0, None)
    length = np.minimum(50.0 * np.exp(excess_salt / 0.007 + state.s / 0.05), 3000.0)
    core_volume = np.pi * r_rod**2 * length
    rod_volume = np.pi * (r_rod + SHELL_THICKNESS_A) ** 2 * (length + 2 * SHELL_THICKNESS_A)
    n_agg = core_volume / TAIL_VOLUME_A3
    params["cyl_radius"] = r_rod
    params["length"] = length
    params["cyl_sld_shell"] = _shell_sld(n_agg * HEAD_VOLUME_A3 / (rod_volume - core_volume), state)
    return state.phi_sds_agg / (n_agg * SDS_VOLUME_A3) * rod_volume


def _lamellar_parameters(state: _SampleState, params: dict[str, FloatArray]) -> None:
    """Bilayers swollen by the medium: the repeat distance follows the swelling law d = δ/φ."""
    half_tail = TAIL_VOLUME_A3 / BILAYER_AREA_A2
    per_molecule = BILAYER_AREA_A2 * (half_tail + SHELL_THICKNESS_A)
    phi_bilayer = np.clip(state.phi_sds_agg * per_molecule / SDS_VOLUME_A3, 1e-6, 0.95)
    s, c = state.s, state.c
    params["length_tail"] = np.full_like(s, half_tail)
    params["length_head"] = np.full_like(s, SHELL_THICKNESS_A)
    params["d_spacing"] = 2 * (half_tail + SHELL_THICKNESS_A) / phi_bilayer
    # small, imperfect stacks in a dilute, swollen phase
    params["Nlayers"] = np.clip(np.round(6.0 + 50.0 * s), 3, 30)
    # softer stacks (larger Caillé η) when diluted or screened
    params["Caille_parameter"] = np.clip(0.08 + 3.0 * c + 1.2 * (0.15 - s), 0.05, 0.6)
    params["sld"] = np.full_like(s, state.rho.tail)
    head_fill = HEAD_VOLUME_A3 / (BILAYER_AREA_A2 * SHELL_THICKNESS_A)
    params["sld_head"] = _shell_sld(np.full_like(s, head_fill), state)


def _complex(state: _SampleState) -> tuple[FloatArray, FloatArray, FloatArray]:
    """PPG chains with the SDS they bind: volume fraction, SDS share and contrast."""
    rho = state.rho
    phi = state.phi_ppg + state.phi_sds
    sds_share = state.phi_sds / np.maximum(phi, 1e-12)
    sld = sds_share * rho.sds + (1 - sds_share) * rho.ppg
    return phi, sds_share, sld - state.sld_medium


def _polymer_parameters(state: _SampleState, params: dict[str, FloatArray]) -> FloatArray:
    """Chains in solution; concentration fluctuations grow as the cloud curve nears."""
    phi, sds_share, delta = _complex(state)
    complex_volume = PPG_CHAIN_VOLUME_A3 / np.maximum(1.0 - sds_share, 0.05)
    p_cloud = _cloud_curve(state.s, state.c)
    to_cloud = np.clip((p_cloud - state.p) / p_cloud, 0.0, 1.0)
    # bound SDS charges the chain and swells it
    swelling = 1.0 + 1.5 * np.clip(sds_share, 0.0, 1.0)
    fluctuation = (1.0 + 0.6 / (to_cloud + 0.12)) / (1.0 + 0.6 / 1.12)
    params["rg"] = PPG_RG_A * swelling * fluctuation
    # from a swollen coil (ν = 0.588) far from the cloud curve to a theta coil (ν = 1/2) on it
    params["porod_exp"] = 1.0 / (0.5 + 0.088 * to_cloud)
    return phi * delta**2 * complex_volume * fluctuation**2 / (1.0 + 5.0 * phi) * _CONTRAST_TO_INV_CM


def _cluster_parameters(state: _SampleState, params: dict[str, FloatArray]) -> FloatArray:
    """Beyond the cloud curve: fractal clusters of polymer-rich droplets, denser the deeper in."""
    phi, _share, delta = _complex(state)
    depth = np.tanh(np.clip((state.p - _cloud_curve(state.s, state.c)) / 0.03, 0.0, None))
    r0 = 25.0 + 15.0 * depth
    dim = 2.1 + 0.5 * depth
    params["fractal_radius"] = r0
    params["fractal_dim_mass"] = dim
    params["cutoff_length"] = 250.0 + 500.0 * depth
    phi_droplets = np.clip(phi / CLUSTER_POLYMER_FRACTION, 0.0, 0.9)
    delta_droplet = CLUSTER_POLYMER_FRACTION * delta
    v0 = (4.0 / 3.0) * np.pi * r0**3
    # sasmodels' mass-fractal S(q) times D/r0^D is Teixeira's S(q): absolute scale from φ, Δρ², V0
    return phi_droplets * delta_droplet**2 * v0 * dim / r0**dim * _CONTRAST_TO_INV_CM


#: For each model: sasmodels parameter name -> key in `StructureArrays.parameters`.
_MODEL_PARAMETERS: Mapping[str, Mapping[str, str]] = {
    "core_shell_sphere": {
        k: k
        for k in (
            "scale",
            "background",
            "radius",
            "radius_pd",
            "thickness",
            "sld_core",
            "sld_shell",
            "sld_solvent",
        )
    },
    "core_shell_cylinder": {
        "scale": "scale",
        "background": "background",
        "radius": "cyl_radius",
        "thickness": "thickness",
        "length": "length",
        "sld_core": "sld_core",
        "sld_shell": "cyl_sld_shell",
        "sld_solvent": "sld_solvent",
    },
    "lamellar_hg_stack_caille": {
        k: k
        for k in (
            "scale",
            "background",
            "length_tail",
            "length_head",
            "Nlayers",
            "d_spacing",
            "Caille_parameter",
            "sld",
            "sld_head",
            "sld_solvent",
        )
    },
    "polymer_excl_volume": {k: k for k in ("scale", "background", "rg", "porod_exp")},
    "mass_fractal": {
        "scale": "scale",
        "background": "background",
        "radius": "fractal_radius",
        "fractal_dim_mass": "fractal_dim_mass",
        "cutoff_length": "cutoff_length",
    },
}


def _shell_sld(phi_head: FloatArray, state: _SampleState) -> FloatArray:
    """Head groups fill `phi_head`; of the rest, `state.bound` is polymer and the remainder medium."""
    phi_head = np.clip(phi_head, 0.0, 1.0)
    rho, bound = state.rho, state.bound
    return phi_head * rho.head + (1.0 - phi_head) * (bound * rho.ppg + (1.0 - bound) * state.sld_medium)


def _cmc_molar(salt_molar: FloatArray) -> FloatArray:
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


def _cmc_mass_fraction(nacl: FloatArray) -> FloatArray:
    salt_molar = nacl / NACL.molar_mass_g_per_mol * 1e3
    return _cmc_molar(salt_molar) * SDS.molar_mass_g_per_mol * 1e-3


def _polymer_saturation(s: FloatArray, cmc: FloatArray) -> FloatArray:
    """Most PPG (mass fraction) the micelles of `s` SDS can bind; beyond it the polymer has its own region."""
    excess = np.clip(s - cmc, 0.0, None)
    return 1.0 * excess + 4.0 * excess**2


def _cloud_curve(s: FloatArray, c: FloatArray) -> FloatArray:
    """PPG fraction beyond which the polymer clusters: salt lowers it, bound SDS raises it."""
    return 0.06 + 0.6 * s + 3.0 * s**2 - 0.6 * c - 4.0 * c**2


def _rod_onset(s: FloatArray) -> FloatArray:
    """NaCl fraction above which micelles grow into rods; more SDS needs less salt."""
    return 0.004 + 0.030 * np.exp(-s / 0.07)


def _lamellar_onset(c: FloatArray, p: FloatArray) -> FloatArray:
    """SDS fraction above which the lamellar phase forms; salt lowers it, bound polymer raises it."""
    return 0.14 - 1.0 * c + 6.0 * c**2 + 0.15 * p


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
