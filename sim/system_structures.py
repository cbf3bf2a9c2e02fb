"""The scattering structure of each phase of the default system, with its contrast.

At N compositions (`SampleState`: volume fractions, ionic strength, the medium's
SLD, the polymer bound to the micelles) this builds the parameters of every
phase's sasmodels model (`structure_parameters`): core-shell spheres and
cylinders from SDS's molecular geometry, swollen bilayer stacks, PPG coils
swelling as the cloud curve nears, fractal clusters of polymer-rich droplets;
`MODEL_PARAMETERS` names them for each model.

Contrast is computed, never typed in: every SLD comes from the components'
formulas and densities through periodictable, at the station's energy or
wavelength (`Contrast`); the medium (solvent + dissolved salt + free unimers) is
a volume-weighted mixture. Volume fractions use each component's partial volume
(its `density_g_per_ml`), which is what sets the scattering; the pipetting
convention of `tandem.composition` (solutes add no volume) is a different
question and is not used here. Which phase a composition is in is
`tandem.sim.system_phases`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tandem.components import Component, Role
from tandem.sim.system_phases import (
    CYLINDER,
    LAMELLAR,
    NACL,
    PHASES,
    POLYMER,
    PPG,
    SDS,
    SPHERE,
    FloatArray,
    cloud_curve,
    cmc_molar,
    polymer_saturation,
    rod_onset,
    solvent_for,
)
from tandem.stations import Probe

#: Avogadro's number in 1/mol, times 1e-24 to turn g/mL into (g/mol)/Å³.
_N_A_PER_A3 = 0.602214076
#: (1e-6/Å²)² · Å³ = 1e-12 / Å = 1e-4 / cm: converts Δρ²·V to 1/cm.
_CONTRAST_TO_INV_CM = 1e-4

# --- molecular geometry of SDS (Tanford) ------------------------------------------------------
#: volume of the C12H25 chain; its fully extended length, 1.5 + 1.265·12 = 16.7 Å, caps the core radius
TAIL_VOLUME_A3 = 27.4 + 26.9 * 12
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


@dataclass(frozen=True)
class SampleState:
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
    def of(cls, s: FloatArray, p: FloatArray, c: FloatArray, rho: Contrast) -> SampleState:
        solvent = solvent_for(rho.probe)
        # volumes (mL per g of sample) from partial volumes
        v_solvent = (1.0 - s - p - c) / solvent.density_g_per_ml
        v_sds = s / SDS.density_g_per_ml
        v_ppg = p / PPG.density_g_per_ml
        v_salt = c / NACL.density_g_per_ml
        volume = v_solvent + v_sds + v_ppg + v_salt
        salt_molar = (c / NACL.molar_mass_g_per_mol) / (volume * 1e-3)
        cmc_mol_per_l = cmc_molar(salt_molar)
        cmc = cmc_mol_per_l * SDS.molar_mass_g_per_mol * 1e-3 * volume
        p_sat = polymer_saturation(s, cmc)
        return cls(
            s=s,
            p=p,
            c=c,
            rho=rho,
            phi_sds=v_sds / volume,
            phi_ppg=v_ppg / volume,
            phi_sds_agg=np.clip(s - cmc, 0.0, None) / SDS.density_g_per_ml / volume,
            ionic_molar=salt_molar + cmc_mol_per_l,
            # the medium: the solvent with the salt dissolved in it
            sld_medium=(v_solvent * rho.solvent + v_salt * rho.nacl) / (v_solvent + v_salt),
            bound=SHELL_POLYMER_AT_SATURATION * np.clip(p / np.maximum(p_sat, 1e-12), 0.0, 1.0),
        )


def structure_parameters(state: SampleState, codes: npt.NDArray[np.int64]) -> dict[str, FloatArray]:
    """Every phase's model parameters at each composition, and the `scale` of the phase it is in (`codes`).

    Only the parameters of the phase a point is in are meaningful at that
    point; the others are computed anyway (cheap, and branch-free).
    """
    s, rho = state.s, state.rho
    params: dict[str, FloatArray] = {
        "background": _incoherent_background(state.phi_sds, state.phi_ppg, rho.probe),
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
    return params


def _incoherent_background(phi_sds: FloatArray, phi_ppg: FloatArray, probe: Probe) -> FloatArray:
    """Flat 1/cm from the hydrogen of the solutes (neutrons); X-rays: none worth modelling.

    The solvent's own flat scattering belongs to the blank, not to the
    structure, so only what the solutes add is counted here.
    """
    if probe is Probe.XRAY:
        return np.zeros_like(phi_sds)
    return (
        phi_sds * SDS.neutron_incoherent_per_cm_sr() + phi_ppg * PPG.neutron_incoherent_per_cm_sr()
    ).astype(np.float64)


def _core_radius(state: SampleState) -> FloatArray:
    """Screening lets the head groups pack closer and the core approach the extended chain length."""
    return 15.2 + 1.4 * (1.0 - np.exp(-state.ionic_molar / 0.2))


def _micelle_parameters(state: SampleState, params: dict[str, FloatArray]) -> FloatArray:
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


def _rod_parameters(state: SampleState, params: dict[str, FloatArray]) -> FloatArray:
    """Rods: the micelles' cross-section chemistry; length grows with screening and with SDS."""
    r_rod = _core_radius(state) - 0.5
    excess_salt = np.clip(state.c - rod_onset(state.s), 0.0, None)
    length = np.minimum(50.0 * np.exp(excess_salt / 0.007 + state.s / 0.05), 3000.0)
    core_volume = np.pi * r_rod**2 * length
    rod_volume = np.pi * (r_rod + SHELL_THICKNESS_A) ** 2 * (length + 2 * SHELL_THICKNESS_A)
    n_agg = core_volume / TAIL_VOLUME_A3
    params["cyl_radius"] = r_rod
    params["length"] = length
    params["cyl_sld_shell"] = _shell_sld(n_agg * HEAD_VOLUME_A3 / (rod_volume - core_volume), state)
    return state.phi_sds_agg / (n_agg * SDS_VOLUME_A3) * rod_volume


def _lamellar_parameters(state: SampleState, params: dict[str, FloatArray]) -> None:
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


def _complex(state: SampleState) -> tuple[FloatArray, FloatArray, FloatArray]:
    """PPG chains with the SDS they bind: volume fraction, SDS share and contrast."""
    rho = state.rho
    phi = state.phi_ppg + state.phi_sds
    sds_share = state.phi_sds / np.maximum(phi, 1e-12)
    sld = sds_share * rho.sds + (1 - sds_share) * rho.ppg
    return phi, sds_share, sld - state.sld_medium


def _polymer_parameters(state: SampleState, params: dict[str, FloatArray]) -> FloatArray:
    """Chains in solution; concentration fluctuations grow as the cloud curve nears."""
    phi, sds_share, delta = _complex(state)
    complex_volume = PPG_CHAIN_VOLUME_A3 / np.maximum(1.0 - sds_share, 0.05)
    p_cloud = cloud_curve(state.s, state.c)
    to_cloud = np.clip((p_cloud - state.p) / p_cloud, 0.0, 1.0)
    # bound SDS charges the chain and swells it
    swelling = 1.0 + 1.5 * np.clip(sds_share, 0.0, 1.0)
    fluctuation = (1.0 + 0.6 / (to_cloud + 0.12)) / (1.0 + 0.6 / 1.12)
    params["rg"] = PPG_RG_A * swelling * fluctuation
    # from a swollen coil (ν = 0.588) far from the cloud curve to a theta coil (ν = 1/2) on it
    params["porod_exp"] = 1.0 / (0.5 + 0.088 * to_cloud)
    return phi * delta**2 * complex_volume * fluctuation**2 / (1.0 + 5.0 * phi) * _CONTRAST_TO_INV_CM


def _cluster_parameters(state: SampleState, params: dict[str, FloatArray]) -> FloatArray:
    """Beyond the cloud curve: fractal clusters of polymer-rich droplets, denser the deeper in."""
    phi, _share, delta = _complex(state)
    depth = np.tanh(np.clip((state.p - cloud_curve(state.s, state.c)) / 0.03, 0.0, None))
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
MODEL_PARAMETERS: Mapping[str, Mapping[str, str]] = {
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


def _shell_sld(phi_head: FloatArray, state: SampleState) -> FloatArray:
    """Head groups fill `phi_head`; of the rest, `state.bound` is polymer and the remainder medium."""
    phi_head = np.clip(phi_head, 0.0, 1.0)
    rho, bound = state.rho, state.bound
    return phi_head * rho.head + (1.0 - phi_head) * (bound * rho.ppg + (1.0 - bound) * state.sld_medium)
