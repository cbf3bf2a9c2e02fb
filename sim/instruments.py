"""Frozen models of the two stations: what they measure with, how well, and what it costs.

An `Instrument` holds what the twin needs to turn a structure into counts and
time: the probe and its energy or wavelength, named detector configurations
(geometry, collimation, flux on the sample), the sample cell (path length,
windows, their scattering and transmission), the detector (saturation, dark
counts), the limits a scan must respect, and the time each action costs. Those
parts are the values of `tandem.sim.instrument_parts`, importable from here too.

Numbers are typical of a modern SAXS beamline with a 1M photon-counting
detector (Pilatus-like) and of a reactor pinhole SANS instrument with a ³He
area detector. Transmissions are computed from the sample's composition:
photoabsorption for X-rays (periodictable's f2 at the station energy) and
coherent + incoherent + absorption cross-sections for neutrons.

The facts of each station (probe, energy or wavelength, solvent, detector geometries, limits,
time costs) come from its bundled instrument profile (`profiles/instruments/`, read by
`tandem.instrument_profile_file`), as a real station's come from its own; what only the twin needs
(cell, detector counting, collimation and flux, compressibility) is its `TwinPhysics`, here.

An instrument knows the components it may be given (`components`, the twin's
default system unless a campaign brings its own: `for_campaign`) and its
station's solvent, which is the rest of every sample.

**Who owns the flat scattering.** Everything flat that follows from the
composition alone belongs to the instrument (`flat_per_cm`), never to the
ground truth: for neutrons the incoherent scattering of *every* component,
solvent and solutes alike (its incoherent cross-section / 4π from its formula
and density, weighted by its volume fraction: hydrogen dominates it); for X-rays
the solvent's compressibility scattering (water's, the usual absolute standard),
weighted by the solvent's volume fraction. A truth describes structure only:
`tandem.sim.detector_image` renders it with `background` set to 0, so a truth
that also states its solutes' incoherent there (the default system does) does
not count it twice, and a truth over any other components gets its incoherent
without having to compute it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.components import Component, Components
from tandem.errors import InvalidCompositionError, TandemError
from tandem.geometry import HC_KEV_A
from tandem.instrument_profile import InstrumentProfile
from tandem.instrument_profile_file import bundled_profile
from tandem.sim.instrument_parts import (
    Collimation,
    DetectorConfiguration,
    DetectorModel,
    SampleCell,
    TimeCosts,
)
from tandem.sim.system_phases import DEFAULT_COMPONENTS
from tandem.stations import SANS, SAXS, Probe

FloatArray = npt.NDArray[np.float64]


class InstrumentError(TandemError, ValueError):
    """A request that the station cannot carry out as asked."""


class UnknownConfigurationError(InstrumentError):
    """A detector configuration name the station does not have."""


class ScanLimitError(InstrumentError):
    """An exposure or temperature outside what the station allows."""


@dataclass(frozen=True)
class Instrument:
    """A station's frozen instrument model."""

    station: str
    probe: Probe
    #: X-ray energy (keV) for SAXS; None for neutrons
    energy_kev: float | None
    wavelength_a: float
    solvent: Component
    configurations: Mapping[str, DetectorConfiguration]
    default_configuration: str
    cell: SampleCell
    detector: DetectorModel
    time_costs: TimeCosts
    exposure_limits_s: tuple[float, float]
    temperature_limits_c: tuple[float, float]
    #: X-rays: flat dΣ/dΩ (1/cm/sr) of the pure solvent from its compressibility (density
    #: fluctuations); neutrons: 0, their flat is the composition's incoherent (`flat_per_cm`)
    compressibility_flat_per_cm: float
    #: attenuation of the direct beam while transmission is measured (SANS) or diode efficiency (SAXS)
    transmission_beam_fraction: float = 1e-3
    components: Components = field(default=DEFAULT_COMPONENTS)

    # -- validation ----------------------------------------------------------------------------

    def configuration(self, name: str | None = None) -> DetectorConfiguration:
        key = self.default_configuration if name is None else name
        try:
            return self.configurations[key]
        except KeyError:
            raise UnknownConfigurationError(
                f"station {self.station!r} has no detector configuration {key!r}; "
                f"known: {', '.join(self.configurations)}"
            ) from None

    def check_exposure(self, exposure_s: float) -> float:
        lo, hi = self.exposure_limits_s
        if not (isinstance(exposure_s, int | float) and math.isfinite(exposure_s) and lo <= exposure_s <= hi):
            raise ScanLimitError(
                f"exposure at {self.station!r} must lie in [{lo}, {hi}] s, got {exposure_s!r}"
            )
        return float(exposure_s)

    def check_temperature(self, temperature_c: float) -> float:
        lo, hi = self.temperature_limits_c
        if not (
            isinstance(temperature_c, int | float)
            and math.isfinite(temperature_c)
            and lo <= temperature_c <= hi
        ):
            raise ScanLimitError(
                f"temperature at {self.station!r} must lie in [{lo}, {hi}] °C, got {temperature_c!r}"
            )
        return float(temperature_c)

    def for_campaign(self, components: Components, solvent: Component) -> Instrument:
        """This instrument for a campaign's own components, with `solvent` taking the rest of every sample."""
        if solvent.name not in components:
            raise InstrumentError(
                f"the solvent {solvent.name!r} of station {self.station!r} is not one of the components "
                f"({', '.join(components)}); add it to the components or choose one of them"
            )
        if components[solvent.name] != solvent:
            raise InstrumentError(
                f"the solvent {solvent} of station {self.station!r} differs from the component of that "
                f"name ({components[solvent.name]}); define it once"
            )
        if not solvent.is_liquid:
            raise InstrumentError(
                f"the solvent {solvent.name!r} of station {self.station!r} is a solute; "
                f"choose a liquid: {', '.join(c.name for c in components.liquids) or '(none)'}"
            )
        return replace(self, components=components, solvent=solvent)

    # -- physics -------------------------------------------------------------------------------

    def volume_fractions(self, composition: Mapping[str, float]) -> dict[str, float]:
        """Volume fraction of every component of the sample (the solvent included), from partial volumes.

        `composition` maps the non-solvent components to mass fractions; the solvent is the rest.
        """
        fractions = _with_solvent(composition, self.solvent, self.components)
        volumes = {n: w / self.components[n].density_g_per_ml for n, w in fractions.items()}
        total = math.fsum(volumes.values())
        return {n: v / total for n, v in volumes.items()}

    def attenuation_per_cm(self, composition: Mapping[str, float]) -> float:
        """Linear attenuation coefficient (1/cm) of the sample: solutes in this station's solvent."""
        return math.fsum(
            phi * self._attenuation_of(self.components[name])
            for name, phi in self.volume_fractions(composition).items()
        )

    def incoherent_per_cm(self, composition: Mapping[str, float]) -> float:
        """Incoherent dΣ/dΩ (1/cm/sr) of the sample for neutrons (0 for X-rays): every component's,
        solvent included, from its formula and density; the hydrogen in it is most of it."""
        if self.probe is not Probe.NEUTRON:
            return 0.0
        return math.fsum(
            phi * self.components[name].neutron_incoherent_per_cm_sr(self.wavelength_a)
            for name, phi in self.volume_fractions(composition).items()
        )

    def flat_per_cm(self, composition: Mapping[str, float]) -> float:
        """All flat dΣ/dΩ (1/cm/sr) of the sample that the twin adds to the truth's structure.

        Neutrons: the incoherent of every component. X-rays: the solvent's compressibility
        scattering, in proportion to its volume fraction (solutes' own is negligible beside it).
        """
        if self.probe is Probe.NEUTRON:
            return self.incoherent_per_cm(composition)
        return self.volume_fractions(composition)[self.solvent.name] * self.compressibility_flat_per_cm

    @property
    def solvent_flat_per_cm(self) -> float:
        """Flat dΣ/dΩ (1/cm/sr) of the pure solvent, what a blank shows above the empty cell."""
        return self.flat_per_cm({})

    def sample_transmission(self, composition: Mapping[str, float]) -> float:
        """Transmission of the sample alone (the cell's windows excluded)."""
        return math.exp(-self.attenuation_per_cm(composition) * self.cell.path_length_mm / 10.0)

    def _attenuation_of(self, component: Component) -> float:
        return _attenuation_per_cm(component, self.probe, self.energy_kev, self.wavelength_a)

    def q_resolution(self, configuration: str | DetectorConfiguration, q_inv_a: npt.ArrayLike) -> FloatArray:
        """1-σ pinhole resolution dq (1/Å) at each q: wavelength spread, collimation and pixel size."""
        config = (
            configuration
            if isinstance(configuration, DetectorConfiguration)
            else self.configuration(configuration)
        )
        return config.q_resolution(q_inv_a)

    def exposure_cost_s(self, exposure_s: float) -> float:
        """Station time of one exposure: shutter, counting and readout."""
        return 2.0 * self.time_costs.shutter_s + self.check_exposure(exposure_s) + self.time_costs.readout_s


@cache
def _attenuation_per_cm(
    component: Component, probe: Probe, energy_kev: float | None, wavelength_a: float
) -> float:
    if probe is Probe.XRAY:
        from periodictable import xsf

        energy = energy_kev if energy_kev is not None else HC_KEV_A / wavelength_a
        _rho, irho = xsf.xray_sld(component.formula, density=component.density_g_per_ml, energy=energy)
        # μ = 4πβ/λ and irho = 2πβ/λ², so μ = 2λ·irho; 1e-6/Å² · Å = 1e-6/Å = 100/cm
        return 2.0 * wavelength_a * float(irho) * 100.0
    from periodictable import nsf

    result: Any = nsf.neutron_scattering(
        component.formula, density=component.density_g_per_ml, wavelength=wavelength_a
    )
    coherent, absorption, incoherent = result[1]
    return float(coherent) + float(absorption) + float(incoherent)


def _with_solvent(
    composition: Mapping[str, float], solvent: Component, components: Components
) -> dict[str, float]:
    fractions: dict[str, float] = {}
    for name, raw in composition.items():
        if name not in components or name == solvent.name:
            others = [n for n in components if n != solvent.name]
            raise InvalidCompositionError(
                f"unknown solute {name!r}; known: {', '.join(others)} "
                f"(the solvent {solvent.name} is the rest)"
            )
        w = float(raw)
        if not (math.isfinite(w) and 0.0 <= w <= 1.0):
            raise InvalidCompositionError(f"mass fraction of {name!r} must lie in [0, 1], got {raw!r}")
        fractions[name] = w
    rest = 1.0 - math.fsum(fractions.values())
    if rest < 0.0:
        raise InvalidCompositionError(
            f"solute mass fractions add up to {1.0 - rest:.6g}; they must leave room for the solvent (<= 1)"
        )
    fractions[solvent.name] = rest
    return fractions


@dataclass(frozen=True)
class TwinPhysics:
    """What the twin needs of a station beyond its profile: the physics no real station's profile states.

    A real station measures these (its calibration file holds what analysis needs of them); the twin
    must know them to draw counts: the cell and its windows, the detector's counting, each
    configuration's collimation and flux, the solvent's compressibility scattering (X-rays), and the
    beam's attenuation while transmission is measured.
    """

    cell: SampleCell
    detector: DetectorModel
    #: per configuration of the profile: its pinhole collimation and the flux on the sample (1/s)
    collimations: Mapping[str, tuple[Collimation, float]]
    compressibility_flat_per_cm: float
    transmission_beam_fraction: float


def twin_instrument(profile: InstrumentProfile, physics: TwinPhysics) -> Instrument:
    """The twin's `Instrument` of a station: the facts from its profile, the physics from `physics`."""
    missing = [name for name in profile.configurations if name not in physics.collimations]
    if missing:
        raise InstrumentError(
            f"the twin has no collimation for configuration(s) {', '.join(missing)} of {profile.name!r}; "
            f"it knows: {', '.join(physics.collimations)}"
        )
    configurations = {
        name: DetectorConfiguration(
            name=name,
            geometry=profile.geometry(name),
            collimation=physics.collimations[name][0],
            flux_per_s=physics.collimations[name][1],
        )
        for name in profile.configurations
    }
    facts = profile.facts()
    return Instrument(
        station=profile.name,
        probe=profile.probe,
        energy_kev=profile.energy_kev,
        wavelength_a=profile.beam_wavelength_a,
        solvent=facts.solvent,
        configurations=configurations,
        default_configuration=facts.default_configuration,
        cell=physics.cell,
        detector=physics.detector,
        time_costs=TimeCosts(**profile.time_costs.model_dump()),
        exposure_limits_s=profile.exposure_limits_s,
        temperature_limits_c=profile.temperature_limits_c,
        compressibility_flat_per_cm=physics.compressibility_flat_per_cm,
        transmission_beam_fraction=physics.transmission_beam_fraction,
    )


#: The SAXS station's physics: a 1.5 mm quartz capillary, a photon-counting detector, 2 m of collimation.
SAXS_PHYSICS = TwinPhysics(
    cell=SampleCell(path_length_mm=1.5, transmission=0.93, flat_per_sr=2e-5, porod_per_sr=2e-12),
    detector=DetectorModel(max_counts=2**20 - 1, dark_counts_per_s=0.0, efficiency=0.9),
    collimations=dict.fromkeys(
        ("short", "long"),
        (Collimation(length_mm=2000.0, source_aperture_radius_mm=0.1, sample_aperture_radius_mm=0.1), 5e11),
    ),
    # water's isothermal compressibility scattering at 20-25 °C, the usual SAXS absolute standard
    compressibility_flat_per_cm=0.0165,
    transmission_beam_fraction=1e-3,
)

#: The SANS station's physics: 2 mm quartz cells, a ³He detector, collimation as long as the detector is far.
SANS_PHYSICS = TwinPhysics(
    cell=SampleCell(path_length_mm=2.0, transmission=0.92, flat_per_sr=5e-4, porod_per_sr=5e-11),
    detector=DetectorModel(max_counts=2**32 - 1, dark_counts_per_s=1e-4, efficiency=0.8),
    collimations={
        name: (
            Collimation(length_mm=length_mm, source_aperture_radius_mm=15.0, sample_aperture_radius_mm=5.0),
            flux_per_s,
        )
        for name, length_mm, flux_per_s in (
            ("short", 2000.0, 2e7),
            ("middle", 5000.0, 6e6),
            ("long", 12000.0, 1.5e6),
        )
    },
    # neutrons: the flat is the sample's incoherent, computed from its composition (`flat_per_cm`)
    compressibility_flat_per_cm=0.0,
    transmission_beam_fraction=1e-2,
)

#: The SAXS station: the bundled profile `saxs` (12 keV, a 1M photon-counting detector at 1 or 3 m).
SAXS_INSTRUMENT = twin_instrument(bundled_profile(SAXS).profile, SAXS_PHYSICS)
#: The SANS station: the bundled profile `sans` (6 Å, a 128×128 ³He detector at 1.5, 5 or 12 m).
SANS_INSTRUMENT = twin_instrument(bundled_profile(SANS).profile, SANS_PHYSICS)

INSTRUMENTS: Mapping[str, Instrument] = {SAXS: SAXS_INSTRUMENT, SANS: SANS_INSTRUMENT}


def instrument_for(station: str) -> Instrument:
    """The instrument model of a station of the default linked lab."""
    try:
        return INSTRUMENTS[station]
    except KeyError:
        raise InstrumentError(
            f"no instrument model for station {station!r}; known: {', '.join(INSTRUMENTS)}"
        ) from None
