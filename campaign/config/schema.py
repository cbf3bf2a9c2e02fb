"""The campaign file as written: the pydantic models of every section, with their ranges.

The schema checks what a model can see — unknown keys, types, ranges — and
nothing that needs the stocks, the instruments or the ground truth (`checker`
and the `*_checks` modules do). The models are frozen: a loaded campaign is not
edited in place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tandem.breaker import BreakerSettings
from tandem.reach import Halfspace
from tandem.robots.deck_file import ComponentModel
from tandem.stations import Probe

#: the twin's ground truth when the file names none
DEFAULT_TRUTH = "tandem.sim.systems:default_system"
#: failed samples in a row after which a campaign stops, unless its file says otherwise
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
#: Ranges of the file's counts, beyond which a value is a typo rather than a plan (a year of samples
#: at a minute each is half a million). Checked when the file is loaded, before any server starts.
MAX_SAMPLES = 1_000_000
MAX_FRAMES = 10_000
#: seeds are what numpy's and torch's generators both take
MAX_SEED = 2**32 - 1
#: real seconds per simulated second: slower than real time by more than this is a typo
MAX_TIME_SCALE = 100.0
#: a set-aside station is retried within a week at the latest
MAX_RETRY_AFTER_MIN = 7 * 24 * 60.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinearConstraint(_Strict):
    """``min <= sum(coefficients[c] * w[c]) <= max`` over mass fractions of bounded components."""

    coefficients: dict[str, float] = Field(min_length=1)
    min: float | None = None
    max: float | None = None

    def value(self, fractions: Mapping[str, float]) -> float:
        return math.fsum(c * float(fractions.get(n, 0.0)) for n, c in self.coefficients.items())

    def violation(self, fractions: Mapping[str, float], tolerance: float = 1e-9) -> str | None:
        """None if `fractions` satisfy the constraint, else how they break it."""
        v = self.value(fractions)
        if self.max is not None and v > self.max + tolerance:
            return f"{self.describe()} is {v:.4g}, above its maximum {self.max:g}"
        if self.min is not None and v < self.min - tolerance:
            return f"{self.describe()} is {v:.4g}, below its minimum {self.min:g}"
        return None

    def describe(self) -> str:
        terms = [f"{'' if c == 1 else f'{c:g}·'}{n}" for n, c in self.coefficients.items()]
        return " + ".join(terms)

    def halfspaces(self) -> list[Halfspace]:
        out = []
        if self.max is not None:
            out.append(Halfspace(dict(self.coefficients), self.max))
        if self.min is not None:
            out.append(Halfspace({n: -c for n, c in self.coefficients.items()}, -self.min))
        return out


class SpaceSpec(_Strict):
    """The composition space: mass-fraction bounds of the non-solvent components, and constraints."""

    bounds: dict[str, tuple[float, float]] = Field(min_length=1)
    constraints: list[LinearConstraint] = Field(default_factory=list)
    #: how close (largest mass-fraction difference) a recipe must come to its target
    tolerance: float = Field(default=1e-3, gt=0, lt=0.1, allow_inf_nan=False)


class ExposureSpec(_Strict):
    min: float = Field(gt=0, allow_inf_nan=False)
    max: float = Field(gt=0, allow_inf_nan=False)
    default: float = Field(gt=0, allow_inf_nan=False)
    #: the exposures an agent may choose from; a geometric ladder from min to max by default
    choices: list[float] | None = Field(default=None, min_length=1)


class ScanSpec(_Strict):
    """What the agent may choose at a station, and the defaults."""

    exposure_s: ExposureSpec
    #: detector configurations the agent may use; all of the instrument's when absent
    configurations: list[str] | None = Field(default=None, min_length=1)
    default_configuration: str | None = None
    temperature_c: float = Field(default=25.0, allow_inf_nan=False)
    n_frames: int = Field(default=1, ge=1, le=MAX_FRAMES)


class CostSpec(_Strict):
    #: what an hour of this station costs relative to the others (the agent values information per cost)
    per_station_hour: float = Field(default=1.0, gt=0, allow_inf_nan=False)


class StationSpec(_Strict):
    #: a deck file (YAML, path relative to the campaign file) or the deck inline
    deck: str | dict[str, Any]
    scan: ScanSpec
    #: the station's instrument: a name (the twin's `saxs` and `sans` unless `load_campaign` is given
    #: others; the station id by default), a profile file (a path ending in .yaml, relative to the
    #: campaign file), or a profile inline (see [the instrument profile](instrument-profile.md))
    instrument: str | dict[str, Any] | None = None
    #: must agree with the instrument's probe; left out, the instrument's
    probe: Probe | None = None
    #: the liquid that takes the rest of every sample; the instrument's usual solvent by default
    solvent: str | None = None
    sample_volume_ul: float = Field(default=500.0, gt=0, allow_inf_nan=False)
    costs: CostSpec = CostSpec()
    #: this station's own beamtime budget (hours of station time)
    max_hours: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class AgentKind(StrEnum):
    PHASE_MAPPING = "phase_mapping"
    OPTIMISATION = "optimisation"
    MULTI_PROBE = "multi_probe"
    RANDOM = "random"
    SPACE_FILLING = "space_filling"


class ObjectiveSpec(_Strict):
    """The scalar an optimisation agent works on: an analysis feature, maximised, minimised or matched."""

    feature: str = Field(min_length=1)
    goal: Literal["maximise", "minimise", "target"] = "target"
    target: float | None = Field(default=None, allow_inf_nan=False)


class AgentSpec(_Strict):
    kind: AgentKind
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    #: suggestions asked for at once per free station
    batch_size: int = Field(default=1, ge=1, le=64)
    #: passed to the agent's settings (for example `n_initial` of the phase-mapping agent)
    settings: dict[str, Any] = Field(default_factory=dict)
    objective: ObjectiveSpec | None = None
    #: may the agent measure a composition again at a probe that has measured it? (default: never)
    replicates: bool = False


class StopSpec(_Strict):
    """When the campaign ends: whichever criterion is met first."""

    max_samples: int | None = Field(default=None, ge=1, le=MAX_SAMPLES)
    #: station time summed over every station, in hours
    max_station_hours: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    #: stop once the mean confidence (most likely label's probability) over the map's grid reaches this
    target_confidence: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    #: stop once this many samples in a row have failed: a campaign whose samples keep failing
    #: (a truth that cannot answer, stocks that ran out) would otherwise spend its budget on failures
    max_consecutive_failures: int = Field(default=DEFAULT_MAX_CONSECUTIVE_FAILURES, ge=1, le=MAX_SAMPLES)


class FaultsSpec(_Strict):
    """How the campaign treats a station whose samples keep failing (see `tandem.breaker`)."""

    #: a station whose last this-many samples failed is set aside: the other stations get the budget
    set_aside_after_failures: int = Field(default=3, ge=1, le=MAX_SAMPLES)
    #: minutes (station time on the twin, wall-clock time for the daemon) before a set-aside station
    #: gets one trial sample; every station set aside at once stops the campaign
    retry_after_min: float = Field(default=30.0, gt=0, le=MAX_RETRY_AFTER_MIN, allow_inf_nan=False)

    def breaker_settings(self) -> BreakerSettings:
        return BreakerSettings(
            failures_to_trip=self.set_aside_after_failures, retry_after_s=self.retry_after_min * 60.0
        )


class TwinSpec(_Strict):
    #: the ground truth as `module:callable` (see `tandem.sim.truth`)
    truth: str = DEFAULT_TRUTH
    #: real seconds per simulated second; 0 never waits
    time_scale: float = Field(default=0.0, ge=0, le=MAX_TIME_SCALE, allow_inf_nan=False)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)


class ReportSpec(_Strict):
    #: points per composition axis of the predicted map's grid (and of the accuracy score)
    grid_points_per_axis: int = Field(default=15, ge=2, le=101)


class CampaignFile(_Strict):
    """The whole campaign file, as written."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    name: str = ""
    description: str = ""
    #: every component the campaign talks about; the twin's (H2O, D2O, SDS, PPG, NaCl) by default
    components: list[ComponentModel] | None = None
    space: SpaceSpec
    stations: dict[str, StationSpec] = Field(min_length=1)
    agent: AgentSpec
    stop: StopSpec
    faults: FaultsSpec = FaultsSpec()
    twin: TwinSpec = TwinSpec()
    report: ReportSpec = ReportSpec()


__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_FAILURES",
    "DEFAULT_TRUTH",
    "MAX_SAMPLES",
    "MAX_SEED",
    "AgentKind",
    "AgentSpec",
    "CampaignFile",
    "CostSpec",
    "ExposureSpec",
    "FaultsSpec",
    "LinearConstraint",
    "ObjectiveSpec",
    "ReportSpec",
    "ScanSpec",
    "SpaceSpec",
    "StationSpec",
    "StopSpec",
    "TwinSpec",
]
