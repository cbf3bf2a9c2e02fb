"""Build a campaign's agent from its file: the one place agent kinds meet campaign settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tandem.agents.base import AgentBase
from tandem.agents.baselines import RandomAgent, SpaceFillingAgent
from tandem.agents.information_per_second import StationCost
from tandem.agents.multi_probe import MultiProbeAgent
from tandem.agents.multi_probe_model import MultiProbeSettings
from tandem.agents.optimisation import Objective, OptimisationAgent, OptimisationSettings
from tandem.agents.phase_mapping import PhaseMappingAgent, PhaseMappingSettings
from tandem.agents.protocol import Agent
from tandem.agents.region import FeasibleRegion, StockCheck, stock_check_from
from tandem.campaign.config import AgentKind, Campaign, CampaignStation
from tandem.composition import Composition
from tandem.robots.recipe import solve_recipe
from tandem.robots.recipe_feasibility import InfeasibleRecipeError
from tandem.stations import Probe
from tandem.suggestions import ScanParameters

#: station seconds of pipetting a sample, outside the instrument's own costs (measured on the twin)
PIPETTING_OVERHEAD_S = 90.0


def stock_check(campaign: Campaign) -> StockCheck:
    """Can `station`'s deck make `target` at its sample volume, as the sample plan would make it?

    The check solves the recipe exactly as `sample_plan` will (no serial dilution, the
    plan's tolerance), so that a suggestion that passes it does not fail at the station.
    """
    stations = campaign.stations

    def solve(station_id: str, target: Composition) -> object:
        station = stations[station_id]
        full = _with_solvent(target, station)
        return solve_recipe(
            station.deck,
            full,
            total_volume_ul=station.spec.sample_volume_ul,
            tolerance=campaign.space.tolerance,
            allow_dilution=False,
        )

    return stock_check_from(solve, InfeasibleRecipeError)


def _with_solvent(target: Composition, station: CampaignStation) -> Composition:
    if station.solvent.name in target.components:
        return target
    fractions = {n: w for n, w in target.mass_fractions.items() if n != station.solvent.name}
    components = [*(target.components[n] for n in fractions), station.solvent]
    return Composition.from_mass_fractions(components, fractions, balance=station.solvent.name)


def station_cost(station: CampaignStation, cheapest_per_hour: float) -> StationCost:
    """What one measurement costs at `station`, from its instrument's time costs and the file's prices."""
    costs = station.instrument.time_costs
    overhead_s = (
        PIPETTING_OVERHEAD_S
        + 2 * costs.sample_load_s  # load, then rinse and dry
        + costs.transmission_s
        + 2 * costs.readout_s
        + 4 * costs.shutter_s
    )
    return StationCost(
        station=station.id,
        probe=station.probe,
        overhead_s=overhead_s,
        exposures_s=station.exposure_choices_s,
        # the exposure at which counting noise on a label is as large as its own ambiguity: the
        # station's usual exposure (the shortest would make the agent shy of counting longer)
        reference_exposure_s=station.spec.scan.exposure_s.default,
        configuration=station.default_configuration,
        relative_price=station.spec.costs.per_station_hour / cheapest_per_hour,
    )


#: features named so are parameters of the best model fit (`AnalysisRecord.scalar_features`)
FIT_FEATURE_PREFIX = "fit_"


def agent_learns_from_fits(campaign: Campaign) -> bool:
    """Whether the campaign's agent reads fitted model parameters, not only labels and curve features.

    Only such an agent has to wait for a result's model fits; the others learn from what analysis
    makes readable before the fits are done.
    """
    objective = campaign.agent.objective
    if AgentKind(campaign.agent.kind) is not AgentKind.OPTIMISATION or objective is None:
        return False
    return objective.feature.startswith(FIT_FEATURE_PREFIX)


def build_agent(campaign: Campaign, region: FeasibleRegion | None = None) -> Agent:
    """The agent the campaign file asks for, over the campaign's feasible region."""
    agent = _build_agent(campaign, region)
    # every agent chooses through `AgentBase`, which holds the rule; not every constructor takes it
    if isinstance(agent, AgentBase):
        agent.replicates = campaign.agent.replicates
    return agent


def _build_agent(campaign: Campaign, region: FeasibleRegion | None) -> Agent:
    region = region or campaign.feasible_region(stock_check(campaign))
    spec = campaign.agent
    settings: Mapping[str, Any] = spec.settings
    stations: dict[str, Probe] = {sid: s.probe for sid, s in campaign.stations.items()}
    scans: dict[str, ScanParameters] = {sid: s.scan_parameters() for sid, s in campaign.stations.items()}
    kind = AgentKind(spec.kind)
    if kind is AgentKind.MULTI_PROBE:
        cheapest = min(station.spec.costs.per_station_hour for station in campaign.stations.values())
        costs = [station_cost(station, cheapest) for station in campaign.stations.values()]
        return MultiProbeAgent(region, costs, seed=spec.seed, settings=MultiProbeSettings.from_dict(settings))
    if kind is AgentKind.PHASE_MAPPING:
        return PhaseMappingAgent(
            region,
            stations=stations,
            scans=scans,
            seed=spec.seed,
            settings=PhaseMappingSettings.from_dict(settings),
        )
    if kind is AgentKind.OPTIMISATION:
        objective_spec = spec.objective
        assert objective_spec is not None  # the campaign loader refuses an optimisation agent without one
        objective = Objective(
            feature=objective_spec.feature,
            target=objective_spec.target if objective_spec.goal == "target" else None,
            minimise=objective_spec.goal == "minimise",
        )
        return OptimisationAgent(
            region,
            objective,
            stations=stations,
            scans=scans,
            seed=spec.seed,
            settings=OptimisationSettings.from_dict(settings),
        )
    baseline = RandomAgent if kind is AgentKind.RANDOM else SpaceFillingAgent
    return baseline(region, stations=stations, scans=scans, seed=spec.seed)
