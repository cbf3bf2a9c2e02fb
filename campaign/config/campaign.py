"""The loaded campaign: `Campaign` (the checked file plus the objects it names) and its `CampaignStation`s.

Built by `load` once every check has passed, so nothing here checks the file
again; what is here answers the questions the runner, the agents and the report
ask of a campaign (its grid, its feasible region, each station's scan choices,
the twin's ground truth) and writes it back out as data (`Campaign.to_dict`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from tandem.components import Component, Components
from tandem.composition import Composition
from tandem.instrument import InstrumentFacts
from tandem.instrument_profile import ProfileFacts
from tandem.robots.deck import Deck
from tandem.robots.deck_file import DeckFile
from tandem.stations import Probe
from tandem.suggestions import ScanParameters

from .schema import AgentSpec, CampaignFile, FaultsSpec, SpaceSpec, StationSpec, StopSpec, TwinSpec

if TYPE_CHECKING:
    from tandem.agents.region import FeasibleRegion, StockCheck

    from .twin import GroundTruth

#: Exposures on the default ladder between a station's shortest and longest (both included).
EXPOSURE_LADDER_STEPS = 4


#: the instrument a station carries: anything with the facts a campaign asks of one (the twin's
#: `tandem.sim.instruments.Instrument`, or a real station's profile)
InstrumentT_co = TypeVar("InstrumentT_co", bound=InstrumentFacts, covariant=True)


@dataclass(frozen=True)
class CampaignStation(Generic[InstrumentT_co]):
    """One station of a campaign, with its deck built and its instrument known.

    A bare `CampaignStation` (as `Campaign.stations` holds) leaves the instrument's type open: the
    twin's wiring (rig, runner, session) still reads the twin's `Instrument` from it, until it
    takes that from `tandem.sim` itself; everything else asks only `InstrumentFacts`.
    """

    id: str
    spec: StationSpec
    instrument: InstrumentT_co
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
    stations: Mapping[str, CampaignStation]
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
            from .twin import twin_truth

            self._truth.append(twin_truth(self.twin.truth))
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
        """JSON-ready, self-contained form (decks and profiles inline): `load_campaign_data` reads it back."""
        data = self.spec.model_dump(mode="json", exclude_none=True)
        for sid, station in self.stations.items():
            data["stations"][sid]["deck"] = station.deck_file.model_dump(mode="json", exclude_none=True)
            if isinstance(station.instrument, ProfileFacts):
                # a station's profile is stored inline too, so the record reads back on any machine
                data["stations"][sid]["instrument"] = station.instrument.as_data()
        if self.spec.components is None:
            data["components"] = [
                {"name": c.name, "formula": c.formula, "density_g_per_ml": c.density_g_per_ml, "role": c.role}
                for c in self.components.values()
            ]
        return json.loads(json.dumps(data))


__all__ = ["Campaign", "CampaignStation"]
