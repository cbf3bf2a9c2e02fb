"""An instrument profile: what a station is, as a file describes it (`InstrumentProfile`), and the
`InstrumentFacts` a campaign checks its stations against (`ProfileFacts`, built from one).

A profile names the station's probe and solvent, its energy or wavelength, its detector
configurations (geometry as `tandem.geometry.DetectorGeometry` knows it, the q range each
covers, a calibration file), its exposure and temperature limits, the time each step takes,
its backend (the digital twin or EPICS) with its PV prefixes, and its robot. The model is
pure: it reads no file and imports no part above the core, so the twin, the devices and the
campaign all build on it. Reading a profile file with line numbers, and checking what the
schema cannot see (calibration files, the q range against the geometry), is
`tandem.instrument_profile_file`.

The twin's two stations are the bundled profiles `saxs` and `sans` (`profiles/instruments/`);
the twin's physics that no real station states (its cell, detector and collimation models) stays
in `tandem.sim`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tandem.components import Component, Components, Role
from tandem.errors import TandemError
from tandem.geometry import HC_KEV_A, DetectorGeometry
from tandem.stations import Probe

#: The robot backends a profile may name, the one list of them: `tandem.robots.pylabrobot_registry` makes
#: the PyLabRobot ones by these names (its software-only chatterbox, the OT-2 over its HTTP API, the OT-2
#: backend with its HTTP calls recorded, Hamilton's STAR, STARlet and Vantage and Tecan's EVO over USB,
#: PyLabRobot's software STAR), `simulated` is the twin's own robot.
ROBOT_BACKENDS: tuple[str, ...] = (
    "chatterbox",
    "opentrons_ot2",
    "opentrons_ot2_chatterbox",
    "hamilton_star",
    "hamilton_starlet",
    "hamilton_star_chatterbox",
    "hamilton_vantage",
    "tecan_evo",
    "simulated",
)
#: a station's PV prefix on EPICS when its profile names none; the station id is upper-cased into it
STATION_PREFIX = "TANDEM:{station}:"
#: a station's cell loader's PV prefix when its profile names none (as `tandem.campaign.rig` serves it)
CELL_LOADER_PREFIX = "TANDEM:{station}:CL:"


def default_prefixes(station_id: str) -> tuple[str, str]:
    """tandem's PV prefixes of a station and its cell loader when nothing names them."""
    upper = station_id.upper()
    return STATION_PREFIX.format(station=upper), CELL_LOADER_PREFIX.format(station=upper)


#: a pair read from a YAML list: strict about the numbers, not about the list being a tuple
_Pair = Annotated[tuple[float, float], Field(strict=False)]


class ProfileError(TandemError, ValueError):
    """An instrument profile asked for something it does not hold (a configuration it lacks)."""


class _Strict(BaseModel):
    # strict: a number written as text ("1000") is refused, not read as one
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _ordered(pair: tuple[float, float], what: str, *, positive: bool = False) -> tuple[float, float]:
    lo, hi = pair
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} must be finite numbers, got [{lo:g}, {hi:g}]")
    if positive and lo <= 0:
        raise ValueError(f"{what} must be positive, got a minimum of {lo:g}")
    if lo >= hi:
        raise ValueError(f"{what} [{lo:g}, {hi:g}] is empty: give [min, max] with min below max")
    return pair


class SolventSpec(_Strict):
    """The liquid that takes the rest of every sample unless a campaign names another."""

    #: its name, as the campaign's components name it (H2O, D2O, ...)
    name: str = Field(min_length=1)
    #: its chemical formula (periodictable's syntax)
    formula: str = Field(min_length=1)
    #: its density in g/mL
    density_g_per_ml: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _parses(self) -> SolventSpec:
        self.component()  # a formula periodictable cannot read fails here, at the solvent's line
        return self

    def component(self) -> Component:
        try:
            return Component(self.name, self.formula, self.density_g_per_ml, Role.LIQUID)
        except TandemError as exc:
            raise ValueError(str(exc)) from None


class DetectorSpec(_Strict):
    """Where the detector is and what it is, in a configuration (`tandem.geometry.DetectorGeometry`)."""

    #: pixels along x (columns)
    n_pixels_x: int = Field(gt=0)
    #: pixels along y (rows)
    n_pixels_y: int = Field(gt=0)
    #: pixel pitch in mm
    pixel_size_mm: float = Field(gt=0, allow_inf_nan=False)
    #: sample to detector distance in mm
    distance_mm: float = Field(gt=0, allow_inf_nan=False)
    #: beam centre in pixels along x, fractional, from the first pixel's corner
    beam_center_x_px: float = Field(allow_inf_nan=False)
    #: beam centre in pixels along y
    beam_center_y_px: float = Field(allow_inf_nan=False)
    #: radius of the beam stop on the detector, in mm
    beamstop_radius_mm: float = Field(ge=0, allow_inf_nan=False)


class ConfigurationSpec(_Strict):
    """One named detector configuration: geometry, the q range it covers, its calibration."""

    #: the detector's geometry in this configuration
    detector: DetectorSpec
    #: the q range (1/Å) this configuration covers, [min, max]; by default what its geometry reaches
    #: (the beam stop's edge to the detector's farthest corner)
    q_range_inv_a: _Pair | None = None
    #: a calibration file for this configuration, relative to the profile file: JSON as
    #: `tandem analyze --calibration` reads it, `{station: {detector_efficiency, open_beam_ratio, ...}}`
    calibration: str | None = Field(default=None, min_length=1)

    @field_validator("q_range_inv_a")
    @classmethod
    def _q_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        return None if value is None else _ordered(value, "the q range", positive=True)


class TimeCostsSpec(_Strict):
    """Station time each step takes, in seconds (temperature: a rate and a settling time)."""

    #: loading a sample into the cell (transfer line, rinse excluded)
    sample_load_s: float = Field(ge=0, allow_inf_nan=False)
    #: moving to another detector configuration
    configuration_change_s: float = Field(ge=0, allow_inf_nan=False)
    #: one transmission measurement
    transmission_s: float = Field(ge=0, allow_inf_nan=False)
    #: reading a frame out of the detector
    readout_s: float = Field(ge=0, allow_inf_nan=False)
    #: opening or closing the shutter
    shutter_s: float = Field(ge=0, allow_inf_nan=False)
    #: how fast the sample environment heats or cools, in °C per minute
    temperature_rate_c_per_min: float = Field(gt=0, allow_inf_nan=False)
    #: waiting for the temperature to settle after a change
    temperature_settle_s: float = Field(ge=0, allow_inf_nan=False)

    def temperature_change_s(self, from_c: float, to_c: float) -> float:
        if from_c == to_c:
            return 0.0
        return abs(to_c - from_c) / self.temperature_rate_c_per_min * 60.0 + self.temperature_settle_s


class EpicsSpec(_Strict):
    """Where the station answers on Channel Access (backend `epics`)."""

    #: PV prefix of the station's devices; `TANDEM:<STATION>:` by default
    station_prefix: str | None = Field(default=None, min_length=1)
    #: PV prefix of its cell loader; `TANDEM:<STATION>:CL:` by default
    cell_loader_prefix: str | None = Field(default=None, min_length=1)


class RobotSpec(_Strict):
    """The station's liquid handler: a backend by name, and that backend's own options."""

    #: one of `chatterbox` (PyLabRobot, software only), `opentrons_ot2`, `opentrons_ot2_chatterbox`,
    #: `hamilton_star`, `hamilton_starlet`, `hamilton_star_chatterbox` (PyLabRobot's software STAR),
    #: `hamilton_vantage`, `tecan_evo`, `simulated` (the twin's own robot)
    backend: str
    #: passed to the backend (for the OT-2, for example, its host and port)
    options: dict[str, Any] = Field(default_factory=dict, strict=False)

    @field_validator("backend")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ROBOT_BACKENDS:
            raise ValueError(f"unknown robot backend {value!r}; known: {', '.join(ROBOT_BACKENDS)}")
        return value


class InstrumentProfile(_Strict):
    """A station, as its profile file describes it."""

    #: the instrument's name (the station it serves; calibration files hold an entry by this name)
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    #: what the station is, in words
    description: str = ""
    #: what the station scatters
    probe: Annotated[Probe, Field(strict=False)]
    #: X-ray energy in keV (X-rays: this or `wavelength_a`)
    energy_kev: float | None = Field(default=None, gt=0, allow_inf_nan=False, validate_default=True)
    #: wavelength in Å (neutrons: required; X-rays: this or `energy_kev`)
    wavelength_a: float | None = Field(default=None, gt=0, allow_inf_nan=False, validate_default=True)
    #: relative wavelength spread (FWHM): ~1e-4 behind a crystal monochromator, ~0.1 behind a
    #: velocity selector
    wavelength_spread: float = Field(default=1e-4, ge=0, lt=1)
    #: the station's usual solvent
    solvent: SolventSpec
    #: the detector configurations, by name
    configurations: dict[str, ConfigurationSpec] = Field(min_length=1)
    #: the configuration used when a campaign names none; the first one by default
    default_configuration: str | None = Field(default=None, validate_default=True)
    #: shortest and longest exposure the station allows, in s: [min, max]
    exposure_limits_s: _Pair
    #: lowest and highest sample temperature, in °C: [min, max]
    temperature_limits_c: _Pair
    #: station time each step takes
    time_costs: TimeCostsSpec
    #: what drives the station: `twin` (the digital twin's simulated devices) or `epics` (a real line)
    backend: Literal["twin", "epics"]
    #: PV prefixes (backend `epics`)
    epics: EpicsSpec = EpicsSpec()
    #: the liquid handler that mixes the station's samples
    robot: RobotSpec

    @field_validator("energy_kev")
    @classmethod
    def _energy(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("probe") is Probe.NEUTRON:
            raise ValueError("a neutron station has no X-ray energy: give its wavelength_a instead")
        return value

    @field_validator("wavelength_a")
    @classmethod
    def _wavelength(cls, value: float | None, info: ValidationInfo) -> float | None:
        probe, energy = info.data.get("probe"), info.data.get("energy_kev")
        if probe is Probe.NEUTRON and value is None:
            raise ValueError("a neutron station needs its wavelength_a (Å)")
        # an energy that failed its own check is not in `info.data`: it is reported once, there
        if probe is Probe.XRAY and "energy_kev" in info.data and (value is None) == (energy is None):
            raise ValueError("an X-ray station needs exactly one of energy_kev (keV) and wavelength_a (Å)")
        return value

    @field_validator("default_configuration")
    @classmethod
    def _default(cls, value: str | None, info: ValidationInfo) -> str | None:
        known = info.data.get("configurations")
        if value is not None and known is not None and value not in known:
            raise ValueError(f"no configuration named {value!r}; use one of: {', '.join(known)}")
        return value

    @field_validator("exposure_limits_s")
    @classmethod
    def _exposures(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _ordered(value, "the exposure limits", positive=True)

    @field_validator("temperature_limits_c")
    @classmethod
    def _temperatures(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _ordered(value, "the temperature limits")

    @property
    def beam_wavelength_a(self) -> float:
        """The wavelength (Å), from the energy for X-rays given in keV."""
        if self.wavelength_a is not None:
            return self.wavelength_a
        assert self.energy_kev is not None  # the validators see to it
        return HC_KEV_A / self.energy_kev

    def geometry(self, configuration: str) -> DetectorGeometry:
        """The detector geometry of `configuration`, as runs record it and analysis reduces with it."""
        detector = self.configuration(configuration).detector
        return DetectorGeometry(
            wavelength_a=self.beam_wavelength_a,
            wavelength_spread=self.wavelength_spread,
            **detector.model_dump(),
        )

    def configuration(self, name: str) -> ConfigurationSpec:
        try:
            return self.configurations[name]
        except KeyError:
            known = ", ".join(self.configurations)
            raise ProfileError(
                f"profile {self.name!r} has no configuration {name!r}; known: {known}"
            ) from None

    def q_range_inv_a(self, configuration: str) -> tuple[float, float]:
        """The q range (1/Å) `configuration` covers: the profile's, else what its geometry reaches."""
        stated = self.configuration(configuration).q_range_inv_a
        if stated is not None:
            return stated
        geometry = self.geometry(configuration)
        return geometry.q_min_inv_a, geometry.q_max_inv_a

    def facts(self, base: Path | None = None) -> ProfileFacts:
        """What a campaign asks of this station; `base` is the folder its relative paths start from."""
        return ProfileFacts(self, base)


@dataclass(frozen=True)
class ProfileFacts:
    """A profile as `tandem.instrument.InstrumentFacts`: what a campaign checks its station against."""

    profile: InstrumentProfile
    #: the folder the profile's relative paths (calibration files) start from; None: inline, no folder
    base: Path | None = None

    @property
    def station(self) -> str:
        return self.profile.name

    @property
    def probe(self) -> Probe:
        return self.profile.probe

    @property
    def solvent(self) -> Component:
        return self.profile.solvent.component()

    @property
    def configurations(self) -> Mapping[str, ConfigurationSpec]:
        return self.profile.configurations

    @property
    def default_configuration(self) -> str:
        return self.profile.default_configuration or next(iter(self.profile.configurations))

    @property
    def exposure_limits_s(self) -> tuple[float, float]:
        return self.profile.exposure_limits_s

    @property
    def temperature_limits_c(self) -> tuple[float, float]:
        return self.profile.temperature_limits_c

    @property
    def time_costs(self) -> TimeCostsSpec:
        return self.profile.time_costs

    @property
    def backend(self) -> Literal["twin", "epics"]:
        return self.profile.backend

    def for_campaign(self, components: Components, solvent: Component) -> ProfileFacts:
        # a profile states facts only: it needs nothing of the campaign's components
        return self

    def calibration_path(self, configuration: str) -> Path | None:
        """The calibration file of `configuration` (absolute when the profile came from a file)."""
        name = self.profile.configuration(configuration).calibration
        if name is None:
            return None
        return Path(name) if self.base is None else self.base / name

    def as_data(self) -> dict[str, Any]:
        """The profile as data with its calibration files' paths absolute: what a stored campaign inlines."""
        data = self.profile.model_dump(mode="json", exclude_none=True)
        for name in self.profile.configurations:
            path = self.calibration_path(name)
            if path is not None:
                data["configurations"][name]["calibration"] = str(path)
        return data

    def prefixes(self, station_id: str | None = None) -> tuple[str, str]:
        """The station's and its cell loader's PV prefixes: the profile's, else the tandem defaults."""
        station, cell_loader = default_prefixes(station_id or self.profile.name)
        epics = self.profile.epics
        return epics.station_prefix or station, epics.cell_loader_prefix or cell_loader


__all__ = [
    "CELL_LOADER_PREFIX",
    "ROBOT_BACKENDS",
    "STATION_PREFIX",
    "ConfigurationSpec",
    "DetectorSpec",
    "EpicsSpec",
    "InstrumentProfile",
    "ProfileError",
    "ProfileFacts",
    "RobotSpec",
    "SolventSpec",
    "TimeCostsSpec",
    "default_prefixes",
]
