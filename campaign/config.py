"""Campaign files: what a closed-loop campaign explores, with which labs, agent and budget.

A campaign file is YAML (see ``docs/how-to/campaigns.md`` and
``campaign/demo/demo.yaml``)::

    id: demo
    space:
      bounds: {SDS: [0, 0.15], PPG: [0, 0.10], NaCl: [0, 0.05]}
    stations:
      saxs: {deck: saxs_deck.yaml, scan: {exposure_s: {min: 0.1, max: 10, default: 1}}}
      sans: {deck: sans_deck.yaml, scan: {exposure_s: {min: 60, max: 1800, default: 300}}}
    agent: {kind: multi_probe, seed: 1}
    stop: {max_samples: 60}

`load_campaign` reads and checks everything a campaign needs before any server
starts: the schema (unknown keys, types, ranges), then what the schema cannot see —
that each station's stocks hold every component the bounds need, that the stocks
can make every corner of the space, that scan settings are within the instrument's
limits, that the ground truth imports and answers. Every problem is collected into
one `CampaignConfigError`, each line of which points at the file, line and key and
says what to change.
"""

from __future__ import annotations

import difflib
import importlib
import json
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.breaker import BreakerSettings
from tandem.components import Component, Components
from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.files import read_text
from tandem.robots.deck import Deck
from tandem.robots.deck_file import ComponentModel, DeckFile
from tandem.robots.recipe import InfeasibleRecipeError, InvalidRecipeRequestError, solve_recipe
from tandem.sim.instruments import INSTRUMENTS, Instrument
from tandem.sim.systems import DEFAULT_COMPONENTS
from tandem.sim.truth import GroundTruth, TruthError, TruthPoint, load_truth
from tandem.stations import Probe
from tandem.suggestions import ScanParameters

from .reach import Halfspace, SpaceTooLargeError, closest_mixture, explain_unreachable, polytope_vertices

if TYPE_CHECKING:
    from tandem.agents.region import FeasibleRegion, StockCheck

DEFAULT_TRUTH = "tandem.sim.systems:default_system"
#: failed samples in a row after which a campaign stops, unless its file says otherwise
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
#: Exposures on the default ladder between a station's shortest and longest (both included).
EXPOSURE_LADDER_STEPS = 4
#: At most this many unreachable corners are reported per station; the rest are counted.
MAX_CORNERS_REPORTED = 3
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
#: the whole numbers a campaign record can hold (Tiled stores it as JSON with 64-bit integers)
_INT64 = (-(2**63), 2**63 - 1)

Path_ = tuple[str | int, ...]


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file: where, what, and what to change."""

    source: str
    key: str
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        hint = f" — {self.hint}" if self.hint else ""
        return f"{where}: {self.key or '(top level)'}: {self.message}{hint}"


class CampaignConfigError(TandemError, ValueError):
    """A campaign file that cannot run; `problems` holds every problem found, each with its place."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        n = len(self.problems)
        head = "the campaign file has 1 problem" if n == 1 else f"the campaign file has {n} problems"
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


# --- the schema -------------------------------------------------------------------------------


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
    #: the twin's instrument model; the station id by default
    instrument: str | None = None
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


# --- the resolved campaign --------------------------------------------------------------------


@dataclass(frozen=True)
class Station:
    """One station of a campaign, with its deck built and its instrument known."""

    id: str
    spec: StationSpec
    instrument: Instrument
    solvent: Component
    deck: Deck
    #: the deck as data (the file's contents when it came from a file), for provenance
    deck_file: DeckFile
    deck_path: Path | None = None

    @property
    def probe(self) -> Probe:
        return self.instrument.probe

    @property
    def configurations(self) -> tuple[str, ...]:
        return tuple(self.spec.scan.configurations or self.instrument.configurations)

    @property
    def default_configuration(self) -> str:
        chosen = self.spec.scan.default_configuration
        if chosen is not None:
            return chosen
        default = self.instrument.default_configuration
        return default if default in self.configurations else self.configurations[0]

    @property
    def exposure_range_s(self) -> tuple[float, float]:
        return self.spec.scan.exposure_s.min, self.spec.scan.exposure_s.max

    @property
    def exposure_choices_s(self) -> tuple[float, ...]:
        """Exposures an agent may pick: the file's `choices`, else min, default, max and a ladder between."""
        exposure = self.spec.scan.exposure_s
        if exposure.choices:
            return tuple(sorted(set(exposure.choices)))
        ladder = np.geomspace(exposure.min, exposure.max, EXPOSURE_LADDER_STEPS)
        rounded = {float(f"{x:.3g}") for x in ladder[1:-1]}
        return tuple(sorted(rounded | {exposure.min, exposure.default, exposure.max}))

    def scan_parameters(
        self, exposure_s: float | None = None, configuration: str | None = None
    ) -> ScanParameters:
        """Scan parameters at this station: the defaults unless told otherwise."""
        return ScanParameters(
            exposure_s=self.spec.scan.exposure_s.default if exposure_s is None else exposure_s,
            configuration=configuration or self.default_configuration,
            temperature_c=self.spec.scan.temperature_c,
            n_frames=self.spec.scan.n_frames,
        )


@dataclass(frozen=True)
class Campaign:
    """A checked campaign: the file's values plus the objects they name (components, decks, instruments)."""

    spec: CampaignFile
    components: Components
    stations: Mapping[str, Station]
    source: Path | None = None
    _truth: list[GroundTruth] = field(default_factory=list, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name or self.spec.id

    @property
    def space(self) -> SpaceSpec:
        return self.spec.space

    @property
    def agent(self) -> AgentSpec:
        return self.spec.agent

    @property
    def stop(self) -> StopSpec:
        return self.spec.stop

    @property
    def faults(self) -> FaultsSpec:
        return self.spec.faults

    @property
    def twin(self) -> TwinSpec:
        return self.spec.twin

    @property
    def solutes(self) -> tuple[str, ...]:
        """The agent-space axes: the bounded components, in the file's order."""
        return tuple(self.space.bounds)

    @property
    def max_total(self) -> float:
        """The tightest cap on the sum of all solutes that the constraints state (1 without one)."""
        caps = [
            c.max
            for c in self.space.constraints
            if c.max is not None
            and set(c.coefficients) == set(self.solutes)
            and all(v == 1 for v in c.coefficients.values())
        ]
        return min([1.0, *caps])

    def truth(self) -> GroundTruth:
        """The twin's ground truth (imported once)."""
        if not self._truth:
            self._truth.append(load_truth(self.twin.truth))
        return self._truth[0]

    def constraint_violation(self, fractions: Mapping[str, float]) -> str | None:
        """None if `fractions` (solute mass fractions) satisfy every constraint, else the first broken one."""
        for constraint in self.space.constraints:
            why = constraint.violation(fractions)
            if why is not None:
                return why
        return None

    def grid(self, points_per_axis: int | None = None) -> np.ndarray:
        """An ``N x d`` grid of solute mass fractions over the bounds, constraints respected."""
        n = points_per_axis or self.spec.report.grid_points_per_axis
        axes = [np.linspace(*self.space.bounds[name], n) for name in self.solutes]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
        keep = points.sum(axis=1) <= 1.0
        for constraint in self.space.constraints:
            coef = np.array([constraint.coefficients.get(name, 0.0) for name in self.solutes])
            value = points @ coef
            if constraint.max is not None:
                keep &= value <= constraint.max + 1e-12
            if constraint.min is not None:
                keep &= value >= constraint.min - 1e-12
        return np.asarray(points[keep], dtype=np.float64)

    def feasible_region(self, stock_check: StockCheck | None = None) -> FeasibleRegion:
        """The agents' `FeasibleRegion`: bounds, sum cap, and a check of the other constraints and stocks."""
        from tandem.agents.region import FeasibleRegion

        def check(station: str, target: Composition) -> str | None:
            why = self.constraint_violation(target.mass_fractions)
            if why is None and stock_check is not None:
                why = stock_check(station, target)
            return why

        default_solvent = next(iter(self.stations.values())).solvent
        return FeasibleRegion(
            components=Components(self.components[n] for n in self.solutes),
            bounds=dict(self.space.bounds),
            default_solvent=default_solvent,
            solvents={sid: s.solvent for sid, s in self.stations.items()},
            max_total=self.max_total,
            stock_check=check,
            measured_tolerance=self.space.tolerance,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, self-contained form (decks inline), which `load_campaign_data` reads back."""
        data = self.spec.model_dump(mode="json", exclude_none=True)
        for sid, station in self.stations.items():
            data["stations"][sid]["deck"] = station.deck_file.model_dump(mode="json", exclude_none=True)
        if self.spec.components is None:
            data["components"] = [
                {"name": c.name, "formula": c.formula, "density_g_per_ml": c.density_g_per_ml, "role": c.role}
                for c in self.components.values()
            ]
        return json.loads(json.dumps(data))


# --- loading ----------------------------------------------------------------------------------


def load_campaign(path: str | Path) -> Campaign:
    """Read and check a campaign file; raise `CampaignConfigError` with every problem found."""
    path = Path(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise CampaignConfigError(
            [
                Problem(
                    str(path), "", f"cannot read the campaign file: {exc.strerror or exc}", "check the path"
                )
            ]
        ) from None
    data, marks = _read_yaml(text, str(path))
    return _build(data, marks, base=path.parent, source_path=path)


def load_campaign_data(
    data: Mapping[str, Any], *, source: str = "campaign", base: Path | None = None
) -> Campaign:
    """Check a campaign given as data (for example `Campaign.to_dict()` read back from Tiled)."""
    return _build(dict(data), _Marks(source), base=base or Path.cwd(), source_path=None)


def _build(data: Any, marks: _Marks, *, base: Path, source_path: Path | None) -> Campaign:
    if not isinstance(data, dict):
        raise CampaignConfigError(
            [
                marks.problem(
                    (),
                    "a campaign file is a mapping of keys (id, space, stations, agent, stop, ...)",
                    "see campaign/demo/demo.yaml",
                )
            ]
        )
    huge = _huge_integers(data, (), marks)
    try:
        spec = CampaignFile.model_validate(data)
    except ValidationError as exc:
        problems = [_schema_problem(err, marks, CampaignFile) for err in exc.errors()]
        raise CampaignConfigError(_merged(problems, huge)) from None
    if huge:
        raise CampaignConfigError(huge)
    checker = _Checker(spec, marks, base)
    campaign = checker.run(source_path)
    if checker.problems:
        raise CampaignConfigError(checker.problems)
    assert campaign is not None
    return campaign


def _huge_integers(data: Any, path: Path_, marks: _Marks) -> list[Problem]:
    """A problem for each whole number in `data` too large to store (settings and inline decks too)."""
    if isinstance(data, bool):
        return []
    if isinstance(data, int):
        if _INT64[0] <= data <= _INT64[1]:
            return []
        return [marks.problem(path, f"{data} is too large a number to store", "use a smaller value")]
    children: Any = ()
    if isinstance(data, dict):
        children = data.items()
    elif isinstance(data, list):
        children = enumerate(data)
    return [
        problem
        for key, value in children
        for problem in _huge_integers(value, (*path, key if isinstance(key, int) else str(key)), marks)
    ]


def _merged(first: Sequence[Problem], then: Sequence[Problem]) -> list[Problem]:
    """`first`, then the problems of `then` at a key `first` does not already name."""
    named = {p.key for p in first}
    return [*first, *(p for p in then if p.key not in named)]


# --- YAML with places -------------------------------------------------------------------------


@dataclass
class _Marks:
    """Where each key and value of a YAML document is (1-based line and column)."""

    source: str
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def resolve(self, loc: Sequence[Any]) -> Path_:
        """The longest prefix of `loc` in the document (pydantic's union tags are skipped)."""
        path: Path_ = ()
        for element in loc:
            step = element if isinstance(element, int) else str(element)
            if (*path, step) in self.values:
                path = (*path, step)
        return path

    def place(self, path: Path_, *, key: bool = False) -> tuple[int, int] | None:
        while True:
            table = self.keys if key else self.values
            if path in table:
                return table[path]
            if not path:
                return None
            path, key = path[:-1], True

    def problem(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> Problem:
        place = self.place(path, key=key)
        return Problem(
            self.source,
            _dotted(path),
            message,
            hint,
            line=place[0] if place else None,
            column=place[1] if place else None,
        )


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _read_yaml(text: str, source: str) -> tuple[Any, _Marks]:
    marks = _Marks(source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise CampaignConfigError(
            [Problem(source, "", f"not valid YAML: {exc.problem or exc}", "fix the syntax", line, col)]
        ) from None
    except yaml.YAMLError as exc:
        raise CampaignConfigError([Problem(source, "", f"not valid YAML: {exc}", "fix the syntax")]) from None
    finally:
        loader.dispose()
    duplicates: list[Problem] = []
    if node is not None:
        marks.values[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
        _walk(node, (), marks, duplicates)
    if duplicates:
        raise CampaignConfigError(duplicates)
    return data, marks


def _walk(node: yaml.Node, path: Path_, marks: _Marks, duplicates: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                duplicates.append(
                    Problem(
                        marks.source, _dotted(child), "this key appears twice", "keep one of them", line, col
                    )
                )
            seen.add(key)
            marks.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            marks.values[child] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            _walk(value_node, child, marks, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks.values[(*path, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            marks.keys[(*path, i)] = marks.values[(*path, i)]
            _walk(item, (*path, i), marks, duplicates)


# --- schema errors, in words ------------------------------------------------------------------


def _schema_problem(
    err: Mapping[str, Any], marks: _Marks, root: type[BaseModel], prefix: Path_ = ()
) -> Problem:
    loc: Path_ = (*prefix, *err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        path = marks.resolve(loc)
        allowed = _allowed_keys(root, tuple(err["loc"][:-1]))
        unknown = str(loc[-1])
        close = difflib.get_close_matches(unknown, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        hint += f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
        return marks.problem(path, f"unknown key {unknown!r}", hint, key=True)
    if kind == "missing":
        parent = marks.resolve(loc[:-1])
        return marks.problem(
            (*parent, str(loc[-1])), f"required key {loc[-1]!r} is missing", f"add {loc[-1]!r} here", key=True
        )
    path = marks.resolve(loc)
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return marks.problem(path, f"{err['msg']}{shown}", "change the value")


def _allowed_keys(root: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys a mapping at `loc` may hold, by walking the models' annotations."""
    current: Any = root
    for element in loc:
        current = _unwrap(current, element)
        if current is None:
            return []
    current = _unwrap(current, None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any, element: Any) -> Any:
    """One step down `annotation` along `element` (a field, a key or an index); None if lost."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(models[0], element) if len(models) == 1 else None
    if element is None:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(str(element))
        return None if info is None else info.annotation
    if origin is list and isinstance(element, int):
        return typing.get_args(annotation)[0]
    if origin is dict:
        return typing.get_args(annotation)[1]
    return None


# --- what the schema cannot see ---------------------------------------------------------------


_DECK_WHERE = re.compile(r"^(\w+)\[(\d+)\]")

_AGENT_SETTINGS: Mapping[AgentKind, str] = {
    AgentKind.PHASE_MAPPING: "tandem.agents.phase_mapping:PhaseMappingSettings",
    AgentKind.MULTI_PROBE: "tandem.agents.multi_probe:MultiProbeSettings",
    AgentKind.OPTIMISATION: "tandem.agents.optimisation:OptimisationSettings",
}


class _Checker:
    """Collects every semantic problem of a schema-valid campaign file."""

    def __init__(self, spec: CampaignFile, marks: _Marks, base: Path) -> None:
        self.spec = spec
        self.marks = marks
        self.base = base
        self.problems: list[Problem] = []

    def add(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> None:
        self.problems.append(self.marks.problem(path, message, hint, key=key))

    def run(self, source_path: Path | None) -> Campaign | None:
        components = self._components()
        if components is None:
            return None
        space_ok = self._space(components)
        stations: dict[str, Station] = {}
        for sid, station_spec in self.spec.stations.items():
            station = self._station(sid, station_spec, components)
            if station is not None:
                stations[sid] = station
        if space_ok and len(stations) == len(self.spec.stations):
            self._reach(components, stations)
        self._agent()
        self._stop()
        campaign = Campaign(self.spec, components, stations, source_path)
        if space_ok and stations:
            self._twin(campaign)
        return None if self.problems else campaign

    # components and space --------------------------------------------------------------------

    def _components(self) -> Components | None:
        if self.spec.components is None:
            return DEFAULT_COMPONENTS
        built: list[Component] = []
        for i, c in enumerate(self.spec.components):
            try:
                built.append(Component(c.name, c.formula, c.density_g_per_ml, c.role))
            except TandemError as exc:
                self.add(("components", i), str(exc), "fix this component")
        try:
            return Components(built) if len(built) == len(self.spec.components) else None
        except TandemError as exc:
            self.add(("components",), str(exc), "give each component once")
            return None

    def _space(self, components: Components) -> bool:
        ok = True
        solvents = {self._solvent_name(sid, s) for sid, s in self.spec.stations.items()}
        for name, (lo, hi) in self.spec.space.bounds.items():
            path: Path_ = ("space", "bounds", name)
            if name not in components:
                self.add(
                    path,
                    f"unknown component {name!r}",
                    f"known components: {', '.join(components)}",
                    key=True,
                )
                ok = False
            elif name in solvents:
                self.add(
                    path,
                    f"{name!r} is a station's solvent: it takes the rest of every sample and has no bounds",
                    "remove it from the bounds",
                    key=True,
                )
                ok = False
            if not (0.0 <= lo < hi <= 1.0):
                self.add(
                    path, f"bounds must satisfy 0 <= lower < upper <= 1, got [{lo:g}, {hi:g}]", "change them"
                )
                ok = False
        for i, constraint in enumerate(self.spec.space.constraints):
            path = ("space", "constraints", i)
            if constraint.min is None and constraint.max is None:
                self.add(path, "a constraint needs a 'min' or a 'max'", "add one", key=True)
                ok = False
            for name in constraint.coefficients:
                if name not in self.spec.space.bounds:
                    self.add(
                        (*path, "coefficients", name),
                        f"{name!r} has no bounds in space.bounds",
                        f"constrain only bounded components: {', '.join(self.spec.space.bounds)}",
                        key=True,
                    )
                    ok = False
        if ok and not self._vertices():
            self.add(
                ("space",),
                "the constraints leave no composition inside the bounds (and the solutes below 1 in total)",
                "loosen the constraints or widen the bounds",
                key=True,
            )
            ok = False
        return ok

    def _vertices(self) -> list[dict[str, float]]:
        halfspaces = [h for c in self.spec.space.constraints for h in c.halfspaces()]
        names = list(self.spec.space.bounds)
        try:
            return polytope_vertices(names, self.spec.space.bounds, halfspaces)
        except SpaceTooLargeError:
            return [dict.fromkeys(names, 0.0)]  # too many to enumerate: check the origin only

    def _solvent_name(self, sid: str, spec: StationSpec) -> str:
        if spec.solvent is not None:
            return spec.solvent
        instrument = INSTRUMENTS.get(spec.instrument or sid)
        return instrument.solvent.name if instrument is not None else ""

    # stations --------------------------------------------------------------------------------

    def _station(self, sid: str, spec: StationSpec, components: Components) -> Station | None:
        where: Path_ = ("stations", sid)
        name = spec.instrument or sid
        instrument = INSTRUMENTS.get(name)
        if instrument is None:
            self.add(
                (*where, "instrument") if spec.instrument else where,
                f"the twin has no instrument {name!r}",
                f"name the station (or its 'instrument') one of: {', '.join(INSTRUMENTS)}",
                key=spec.instrument is None,
            )
            return None
        if spec.probe is not None and spec.probe is not instrument.probe:
            self.add(
                (*where, "probe"),
                f"instrument {name!r} uses {instrument.probe.value}, not {spec.probe.value}",
                f"set probe: {instrument.probe.value} or leave it out",
            )
        solvent = self._station_solvent(where, spec, instrument, components)
        self._scan(where, spec.scan, instrument)
        built = self._deck(where, spec)
        if solvent is None or built is None:
            return None
        deck_file, deck, deck_path = built
        if not self._deck_matches(where, deck, solvent, components):
            return None
        # the twin measures the campaign's own components (attenuation, incoherent) in this station's solvent
        return Station(
            sid, spec, instrument.for_campaign(components, solvent), solvent, deck, deck_file, deck_path
        )

    def _station_solvent(
        self, where: Path_, spec: StationSpec, instrument: Instrument, components: Components
    ) -> Component | None:
        name = spec.solvent or instrument.solvent.name
        path = (*where, "solvent") if spec.solvent else where
        if name not in components:
            self.add(
                path,
                f"the solvent {name!r} is not a campaign component",
                f"add it to 'components' or choose one of: {', '.join(c.name for c in components.liquids)}",
                key=spec.solvent is None,
            )
            return None
        solvent = components[name]
        if not solvent.is_liquid:
            self.add(path, f"the solvent {name!r} is a solute", "a solvent must be a liquid component")
            return None
        return solvent

    def _scan(self, where: Path_, scan: ScanSpec, instrument: Instrument) -> None:
        path: Path_ = (*where, "scan")
        known = list(instrument.configurations)
        allowed = scan.configurations or known
        for i, config in enumerate(scan.configurations or ()):
            if config not in known:
                self.add(
                    (*path, "configurations", i),
                    f"instrument {instrument.station!r} has no configuration {config!r}",
                    f"use one of: {', '.join(known)}",
                )
        if scan.default_configuration is not None and scan.default_configuration not in allowed:
            self.add(
                (*path, "default_configuration"),
                f"{scan.default_configuration!r} is not an allowed configuration",
                f"use one of: {', '.join(c for c in allowed if c in known)}",
            )
        lo, hi = instrument.exposure_limits_s
        exposure = scan.exposure_s
        for key in ("min", "max", "default"):
            value = getattr(exposure, key)
            if not lo <= value <= hi:
                self.add(
                    (*path, "exposure_s", key),
                    f"exposure {value:g} s is outside what {instrument.station!r} allows "
                    f"({lo:g} to {hi:g} s)",
                    f"choose a value between {lo:g} and {hi:g}",
                )
        for i, choice in enumerate(exposure.choices or ()):
            if not exposure.min <= choice <= exposure.max:
                self.add(
                    (*path, "exposure_s", "choices", i),
                    f"the choice {choice:g} s lies outside [{exposure.min:g}, {exposure.max:g}] s",
                    "choose exposures between min and max",
                )
        if exposure.min > exposure.max:
            self.add(
                (*path, "exposure_s"), f"min {exposure.min:g} s is above max {exposure.max:g} s", "swap them"
            )
        elif not exposure.min <= exposure.default <= exposure.max:
            self.add(
                (*path, "exposure_s", "default"),
                f"the default {exposure.default:g} s lies outside [{exposure.min:g}, {exposure.max:g}] s",
                "choose a default between min and max",
            )
        t_lo, t_hi = instrument.temperature_limits_c
        if not t_lo <= scan.temperature_c <= t_hi:
            self.add(
                (*path, "temperature_c"),
                f"{scan.temperature_c:g} °C is outside what {instrument.station!r} allows "
                f"({t_lo:g} to {t_hi:g} °C)",
                f"choose a temperature between {t_lo:g} and {t_hi:g} °C",
            )

    def _deck(self, where: Path_, spec: StationSpec) -> tuple[DeckFile, Deck, Path | None] | None:
        path: Path_ = (*where, "deck")
        if isinstance(spec.deck, str):
            deck_path = (self.base / spec.deck).resolve()
            try:
                text = read_text(deck_path)
            except OSError as exc:
                self.add(
                    path,
                    f"cannot read deck file {str(deck_path)!r}: {exc.strerror or exc}",
                    "give a path relative to the campaign file, or the deck inline",
                )
                return None
            try:
                data, marks = _read_yaml(text, str(deck_path))
            except CampaignConfigError as exc:
                self.problems += exc.problems
                return None
            prefix: Path_ = ()
        else:
            deck_path, data, marks, prefix = None, spec.deck, self.marks, path
        try:
            deck_file = DeckFile.model_validate(data)
        except ValidationError as exc:
            self.problems += [_schema_problem(e, marks, DeckFile, prefix) for e in exc.errors()]
            return None
        try:
            deck = deck_file.to_deck()
        except TandemError as exc:
            message = str(exc)
            match = _DECK_WHERE.match(message)
            at: Path_ = (*prefix, match.group(1), int(match.group(2))) if match else prefix
            self.problems.append(marks.problem(at, message, "fix the deck"))
            return None
        return deck_file, deck, deck_path

    def _deck_matches(self, where: Path_, deck: Deck, solvent: Component, components: Components) -> bool:
        """The deck must define the campaign's components as the campaign does, and stock each one needed."""
        ok = True
        needed = [n for n, (_lo, hi) in self.spec.space.bounds.items() if hi > 0] + [solvent.name]
        for name in needed:
            if name in deck.components and deck.components[name] != components[name]:
                self.add(
                    (*where, "deck"),
                    f"the deck defines {name!r} as {_describe(deck.components[name])}, the campaign as "
                    f"{_describe(components[name])}",
                    f"use the same formula, density and role for {name!r} in both",
                )
                ok = False
        for name in needed:
            if not any(s.composition.mass_fraction(name) > 0 for s in deck.stocks):
                what = "the solvent" if name == solvent.name else f"up to {self.spec.space.bounds[name][1]:g}"
                self.add(
                    (*where, "deck"),
                    f"no stock on this deck holds {name!r}, which the campaign needs ({what})",
                    f"add a stock with {name!r} to the deck, or remove {name!r} from space.bounds"
                    if name != solvent.name
                    else f"add a stock of {name!r}",
                )
                ok = False
        return ok

    def _reach(self, components: Components, stations: Mapping[str, Station]) -> None:
        vertices = self._vertices()
        tolerance = self.spec.space.tolerance
        for sid, station in stations.items():
            solvent = station.solvent.name
            stocks = {s.name: s.composition.mass_fractions for s in station.deck.stocks}
            unreachable = []
            for vertex in vertices:
                target = {**vertex, solvent: max(0.0, 1.0 - math.fsum(vertex.values()))}
                closest = closest_mixture(stocks, target)
                if closest.distance > tolerance:
                    unreachable.append((closest.distance, vertex, target, closest))
                else:
                    self._recipe(sid, station, components, vertex)
            # the corners missed by the most first: they say what the stocks lack
            unreachable.sort(key=lambda item: -item[0])
            for _distance, vertex, target, closest in unreachable[:MAX_CORNERS_REPORTED]:
                why, hint = explain_unreachable(stocks, target, closest, solvent=solvent)
                self.add(
                    ("stations", sid, "deck"),
                    f"no mixture of the stocks at {sid!r} makes the corner ({_corner(vertex)}) "
                    f"of the space: {why}",
                    hint,
                )
            if len(unreachable) > MAX_CORNERS_REPORTED:
                self.add(
                    ("stations", sid, "deck"),
                    f"... and {len(unreachable) - MAX_CORNERS_REPORTED} more corners of the space "
                    f"that {sid!r} cannot make",
                )

    def _recipe(
        self, sid: str, station: Station, components: Components, vertex: Mapping[str, float]
    ) -> None:
        """A corner the stocks reach must also be pipettable (volumes, inventory, wells, tips)."""
        comps = Components([*(components[n] for n in vertex), station.solvent])
        target = Composition.from_mass_fractions(comps, vertex, balance=station.solvent.name)
        try:
            solve_recipe(
                station.deck,
                target,
                total_volume_ul=station.spec.sample_volume_ul,
                tolerance=self.spec.space.tolerance,
                allow_dilution=True,
            )
        except (InfeasibleRecipeError, InvalidRecipeRequestError) as exc:
            reasons = "; ".join(r.message for r in getattr(exc, "reasons", ())) or str(exc)
            self.add(
                ("stations", sid, "deck"),
                f"the robot at {sid!r} cannot make the corner ({_corner(vertex)}) "
                f"of {station.spec.sample_volume_ul:g} µL: {reasons}",
                "change the stocks, pipettes or sample_volume_ul, or narrow the bounds",
            )

    # agent, stop, twin -----------------------------------------------------------------------

    def _agent(self) -> None:
        agent = self.spec.agent
        if agent.kind is AgentKind.OPTIMISATION and agent.objective is None:
            self.add(
                ("agent",),
                "an optimisation agent needs an objective",
                "add objective: {feature: <analysis feature>, goal: target, target: <value>}",
                key=True,
            )
        if agent.objective is not None:
            objective = agent.objective
            if agent.kind is not AgentKind.OPTIMISATION:
                self.add(
                    ("agent", "objective"),
                    f"a {agent.kind.value} agent takes no objective",
                    "remove it, or use kind: optimisation",
                    key=True,
                )
            if objective.goal == "target" and objective.target is None:
                self.add(
                    ("agent", "objective"),
                    "goal 'target' needs a target value",
                    "add target: <value>",
                    key=True,
                )
        if agent.settings:
            self._agent_settings(agent)

    def _agent_settings(self, agent: AgentSpec) -> None:
        spec = _AGENT_SETTINGS.get(agent.kind)
        path: Path_ = ("agent", "settings")
        if spec is None:
            self.add(path, f"a {agent.kind.value} agent has no settings", "remove 'settings'", key=True)
            return
        module_name, _, attr = spec.partition(":")
        try:
            settings_type: Any = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            return  # this agent kind is not installed here; the campaign runner reports that itself
        fields = getattr(settings_type, "__dataclass_fields__", None) or getattr(
            settings_type, "model_fields", {}
        )
        for key in agent.settings:
            if fields and key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.add(
                    (*path, key),
                    f"unknown setting {key!r} for a {agent.kind.value} agent",
                    hint + f"allowed: {', '.join(fields)}",
                    key=True,
                )
                return
        build = getattr(settings_type, "from_dict", settings_type)
        try:
            build(agent.settings) if build is not settings_type else build(**agent.settings)
        except (TypeError, ValueError) as exc:
            self.add(path, f"bad settings for a {agent.kind.value} agent: {exc}", "change the values")

    def _stop(self) -> None:
        stop = self.spec.stop
        if stop.max_samples is None and stop.max_station_hours is None:
            self.add(
                ("stop",),
                "a campaign needs a sample budget or a beamtime budget, or it never ends",
                "add max_samples or max_station_hours",
                key=True,
            )

    def _twin(self, campaign: Campaign) -> None:
        path: Path_ = ("twin", "truth")
        try:
            truth = campaign.truth()
        except TruthError as exc:
            self.add(path, str(exc), "name an importable 'module:callable' such as " + DEFAULT_TRUTH)
            return
        vertices = self._vertices()
        centre = {n: float(np.mean([v[n] for v in vertices])) for n in campaign.solutes}
        for probe in dict.fromkeys(s.probe for s in campaign.stations.values()):
            try:
                point = truth(centre, probe)
                phase = point.phase
            except Exception as exc:  # any failure of user code is a verdict on the file
                self.add(
                    path,
                    f"{self.spec.twin.truth} fails at the centre of the space ({probe.value}): "
                    f"{type(exc).__name__}: {exc}",
                    "check that it takes (composition mass fractions, probe) and returns a TruthPoint",
                )
                return
            if not isinstance(phase, str) or not phase:
                self.add(
                    path,
                    f"{self.spec.twin.truth} returned no phase label ({point!r})",
                    "return a TruthPoint with a phase name",
                )
                return
            why = _unrenderable(point)
            if why is not None:
                self.add(
                    path,
                    f"{self.spec.twin.truth} at the centre of the space ({probe.value}): {why[0]}",
                    why[1],
                )
                return


def _unrenderable(point: object) -> tuple[str, str] | None:
    """Why the twin could not draw a truth's answer (what was wrong, what would do), or None."""
    from tandem.sim.scattering import ScatteringError, model_parameter_names

    if not isinstance(point, TruthPoint):
        return f"returned a {type(point).__name__}, not a TruthPoint", "return tandem.sim.truth.TruthPoint"
    try:
        known = model_parameter_names(point.model)
    except ScatteringError as exc:
        return str(exc), "name a sasmodels model, such as sphere, cylinder or core_shell_sphere"
    unknown = sorted(set(point.parameters) - known)
    if unknown:
        return (
            f"model {point.model!r} has no parameter(s) {', '.join(map(repr, unknown))}",
            f"use its parameters: {', '.join(sorted(known))}",
        )
    return None


def _corner(vertex: Mapping[str, float]) -> str:
    return ", ".join(f"{n}={w:.4g}" for n, w in vertex.items())


def _describe(component: Component) -> str:
    return f"{component.formula}, {component.density_g_per_ml:g} g/mL, {component.role.value}"


__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_FAILURES",
    "DEFAULT_TRUTH",
    "AgentKind",
    "AgentSpec",
    "Campaign",
    "CampaignConfigError",
    "CampaignFile",
    "CostSpec",
    "ExposureSpec",
    "FaultsSpec",
    "LinearConstraint",
    "ObjectiveSpec",
    "Problem",
    "ReportSpec",
    "ScanSpec",
    "SpaceSpec",
    "Station",
    "StationSpec",
    "StopSpec",
    "TwinSpec",
    "load_campaign",
    "load_campaign_data",
]
