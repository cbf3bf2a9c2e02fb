"""Ground truths for campaign tests over components the twin's default system does not know.

`nonionic_oil` is a small C12E5 / decane system in water (light at the SAXS station, heavy at
the SANS station): spherical micelles of the surfactant, swollen by the oil they take up into
microemulsion droplets, and rods where the surfactant is plentiful and the oil scarce. Its SLDs
come from the components' formulas and densities (`Component.xray_sld`, `neutron_sld`); its
flat scattering is left to the twin's instrument, which computes every component's incoherent.

`names_no_model` and `misspells_a_parameter` answer what the twin cannot draw, for the
campaign-file check to refuse. `fails_at_the_station` answers the campaign-file check and the
report's map (called from the main thread) but raises for every measurement, which the twin's
stations make from their worker threads: a campaign with it must stop on its failures.

The campaign's `components:` and the decks come from `campaign_files`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tandem.components import DEFAULT_NEUTRON_WAVELENGTH_A, DEFAULT_XRAY_ENERGY_KEV, Component, Role
from tandem.sim.truth import TruthPoint
from tandem.stations import Probe

H2O = Component("H2O", "H2O", 0.997, Role.LIQUID)
D2O = Component("D2O", "D2O", 1.104, Role.LIQUID)
C12E5 = Component("C12E5", "C22H46O6", 0.97, Role.LIQUID)
DECANE = Component("decane", "C10H22", 0.73, Role.LIQUID)
COMPONENTS = (H2O, D2O, C12E5, DECANE)
BOUNDS = {"C12E5": (0.0, 0.10), "decane": (0.0, 0.04)}


def _sld(component: Component, probe: Probe) -> float:
    if probe is Probe.XRAY:
        return component.xray_sld(DEFAULT_XRAY_ENERGY_KEV)
    return component.neutron_sld(DEFAULT_NEUTRON_WAVELENGTH_A)


def nonionic_oil(composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
    """The C12E5 / decane system: micelles, swollen droplets or rods, by composition."""
    probe = Probe(probe)
    unknown = set(composition) - set(BOUNDS)
    if unknown:
        raise ValueError(f"unknown component(s) {sorted(unknown)}; this system knows {sorted(BOUNDS)}")
    surfactant = float(composition.get("C12E5", 0.0))
    oil = float(composition.get("decane", 0.0))
    solvent = D2O if probe is Probe.NEUTRON else H2O
    # volume fractions of the scatterers (the solvent's density sets the rest)
    phi_s = surfactant / C12E5.density_g_per_ml * solvent.density_g_per_ml
    phi_o = oil / DECANE.density_g_per_ml * solvent.density_g_per_ml
    rho_solvent = _sld(solvent, probe)
    if surfactant < 0.005:
        # too little surfactant for aggregates: what little there is scatters as dissolved chains
        return TruthPoint(
            "dilute",
            "polymer_excl_volume",
            {"scale": max(phi_s + phi_o, 1e-4) * 0.05, "background": 0.0, "rg": 12.0, "porod_exp": 1.7},
        )
    if oil < 0.25 * surfactant and surfactant > 0.06:
        return TruthPoint(
            "rods",
            "cylinder",
            {
                "scale": phi_s,
                "background": 0.0,
                "radius": 22.0,
                "length": 200.0 + 4000.0 * (surfactant - 0.06),
                "sld": _sld(C12E5, probe),
                "sld_solvent": rho_solvent,
            },
        )
    swelling = oil / (oil + surfactant)
    phase = "droplets" if swelling > 0.2 else "micelles"
    sld = (1.0 - swelling) * _sld(C12E5, probe) + swelling * _sld(DECANE, probe)
    return TruthPoint(
        phase,
        "sphere",
        {
            "scale": phi_s + phi_o,
            "background": 0.0,
            "radius": 25.0 + 40.0 * swelling,
            "radius_pd": 0.1,
            "sld": sld,
            "sld_solvent": rho_solvent,
        },
    )


def fails_at_the_station(composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
    """`nonionic_oil` for the file check and the report; an error for every measurement."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("the truth cannot answer here (a test truth that fails every measurement)")
    return nonionic_oil(composition, probe)


def names_no_model(composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
    """A truth whose model sasmodels does not have: the campaign-file check must say so."""
    return TruthPoint("micelles", "no_such_model", {"scale": 0.01})


def misspells_a_parameter(composition: Mapping[str, float], probe: Probe | str, /) -> TruthPoint:
    """A truth that gives `sphere` a parameter it does not have: the campaign-file check must say so."""
    return TruthPoint("micelles", "sphere", {"scale": 0.01, "raduis": 30.0})


def _component(c: Component) -> dict[str, Any]:
    return {
        "name": c.name,
        "formula": c.formula,
        "density_g_per_ml": c.density_g_per_ml,
        "role": c.role.value,
    }


def _deck(solvent: Component) -> dict[str, Any]:
    """A deck of C12E5 and decane stocks in `solvent`, with the demo's pipettes and plates."""
    return {
        "name": f"nonionic-{solvent.name.lower()}",
        "components": [_component(c) for c in (solvent, C12E5, DECANE)],
        "pipettes": [
            {"name": "p20", "min_volume_ul": 1, "max_volume_ul": 20, "tip_type": "tip_20ul"},
            {"name": "p300", "min_volume_ul": 20, "max_volume_ul": 300, "tip_type": "tip_300ul"},
            {"name": "p1000", "min_volume_ul": 100, "max_volume_ul": 1000, "tip_type": "tip_1000ul"},
        ],
        "tip_racks": [
            {"slot": "7", "tip_type": "tip_20ul", "n_tips": 96},
            {"slot": "9", "tip_type": "tip_300ul", "n_tips": 96},
            {"slot": "11", "tip_type": "tip_1000ul", "n_tips": 96},
        ],
        "stocks": [
            {
                "name": "solvent",
                "slot": "1",
                "volume_ul": 45000,
                "capacity_ul": 50000,
                "dead_volume_ul": 1000,
                "balance": solvent.name,
            },
            {
                "name": "c12e5_30wt",
                "slot": "2",
                "volume_ul": 30000,
                "capacity_ul": 50000,
                "dead_volume_ul": 1000,
                "composition": {"C12E5": "30 wt%"},
                "balance": solvent.name,
            },
            {
                "name": "decane_neat",
                "slot": "3",
                "volume_ul": 30000,
                "capacity_ul": 50000,
                "dead_volume_ul": 1000,
                "balance": "decane",
            },
        ],
        "plates": [{"slot": "4", "rows": 8, "columns": 12, "well_capacity_ul": 2000, "dead_volume_ul": 20}],
    }


def campaign_files(
    folder: Path,
    *,
    campaign_id: str,
    truth: str = "twin_truths:nonionic_oil",
    max_samples: int = 6,
    max_consecutive_failures: int | None = None,
) -> Path:
    """A two-station campaign over C12E5 / decane with its decks, written to `folder`; its path."""
    for name, solvent in (("saxs_deck.yaml", H2O), ("sans_deck.yaml", D2O)):
        (folder / name).write_text(yaml.safe_dump(_deck(solvent), sort_keys=False))
    stop: dict[str, Any] = {"max_samples": max_samples}
    if max_consecutive_failures is not None:
        stop["max_consecutive_failures"] = max_consecutive_failures
    spec = {
        "id": campaign_id,
        "components": [_component(c) for c in COMPONENTS],
        "space": {"bounds": {k: list(v) for k, v in BOUNDS.items()}},
        "stations": {
            "saxs": {
                "solvent": "H2O",
                "deck": "saxs_deck.yaml",
                "sample_volume_ul": 300,
                "scan": {"exposure_s": {"min": 0.1, "max": 10, "default": 1}},
            },
            "sans": {
                "solvent": "D2O",
                "deck": "sans_deck.yaml",
                "sample_volume_ul": 600,
                "scan": {"exposure_s": {"min": 60, "max": 1800, "default": 300}},
                "costs": {"per_station_hour": 10},
            },
        },
        "agent": {"kind": "space_filling", "seed": 1},
        "stop": stop,
        "twin": {"truth": truth, "time_scale": 0, "seed": 3},
        "report": {"grid_points_per_axis": 6},
    }
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
