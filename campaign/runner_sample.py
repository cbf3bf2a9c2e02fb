"""One sample's plans on its station's rig, as the campaign loop runs them.

The empty cell is measured once per station and detector configuration (every later
sample there is reduced with it), then the sample plan runs with the arguments of the
sample's `tandem.sample_request.SampleRequest`, built by the campaign's rules
(`tandem.campaign.daemon_rules.sample_request`: the agent daemon queues the same
arguments) from the ledger entry's target and scan, the station's solvent as the balance
and its sample volume; the station fills its cell by its own rule.
On a real station each run records the calibration its profile names for the run's detector
configuration (the analysis reduces a run with the calibration it records), so a campaign that
moves between configurations reduces each with its own.
`entry_suggestion` turns a ledger entry back into its suggestion (the loop tells the agent
the samples still running as such).
"""

from __future__ import annotations

from typing import Any

from tandem.campaign.config import Campaign
from tandem.campaign.config.profiles import on_twin
from tandem.campaign.daemon_rules import sample_settings
from tandem.campaign.epics_lab import configuration_calibration
from tandem.campaign.ledger import LedgerEntry
from tandem.campaign.station_rig import StationRig
from tandem.composition import Composition
from tandem.plans.measurement import measure_empty_cell
from tandem.plans.sample import sample_plan
from tandem.sample_request import SampleRequest, SampleSettings
from tandem.suggestions import ScanParameters, Suggestion


class SamplePlans:
    """Runs the samples of `campaign`, remembering which empty cells are measured."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._settings: dict[str, SampleSettings] = sample_settings(campaign)
        self._empty_cells: set[tuple[str, str]] = set()
        self._calibrations: dict[tuple[str, str], dict[str, Any]] = {}

    def request(self, entry: LedgerEntry) -> SampleRequest:
        """The sample request of a ledger entry; the runner measures the empty cell itself (`_empty_cell`)."""
        return SampleRequest.at_station(
            self._settings,
            entry.station,
            entry.target,
            ScanParameters.from_dict(entry.scan),
            sample_uid=entry.sample_uid,
            campaign_id=self.campaign.id,
            decision_uid=entry.decision_uid,
            measure_empty_cell=False,
        )

    def run(self, rig: StationRig, entry: LedgerEntry) -> None:
        """Run the sample of `entry` on `rig` (its empty cell first if need be); raises if a plan fails."""
        request = self.request(entry)
        self._empty_cell(rig, request.scan.configuration)
        kwargs = {**request.to_plan_kwargs(), "md": self._calibration_md(rig.id, request.scan.configuration)}
        rig.RE(sample_plan(rig.station, rig.liquid_handler, rig.cell_loader, **kwargs))

    def _empty_cell(self, rig: StationRig, configuration: str) -> None:
        """Measure the empty cell once per detector configuration: every later sample there uses it."""
        key = (rig.id, configuration)
        if key in self._empty_cells:
            return
        scan = self.campaign.stations[rig.id].spec.scan
        rig.RE(
            measure_empty_cell(
                rig.station,
                scan.exposure_s.default,
                configuration=configuration,
                temperature_c=scan.temperature_c,
                md={"campaign_id": self.campaign.id, **self._calibration_md(rig.id, configuration)},
            )
        )
        self._empty_cells.add(key)

    def _calibration_md(self, station_id: str, configuration: str) -> dict[str, Any]:
        """What a run at a real station records of its configuration's calibration (the twin's analysis
        knows its own instruments' exactly: nothing)."""
        key = (station_id, configuration)
        if key not in self._calibrations:
            station = self.campaign.stations[station_id]
            on_the_twin = on_twin(station.instrument)
            calibration = None if on_the_twin else configuration_calibration(station, configuration)
            self._calibrations[key] = {} if calibration is None else {"calibration": calibration.to_dict()}
        return self._calibrations[key]


def entry_suggestion(campaign: Campaign, entry: LedgerEntry, agent: str) -> Suggestion:
    """The suggestion a ledger entry records (the solvent of its station the balance), as `agent` made it."""
    station = campaign.stations[entry.station]
    components = [*(campaign.components[n] for n in entry.target), station.solvent]
    target = Composition.from_mass_fractions(components, dict(entry.target), balance=station.solvent.name)
    return Suggestion(
        station=entry.station,
        target=target,
        scan=ScanParameters.from_dict(entry.scan),
        agent=agent,
        decision_uid=entry.decision_uid,
    )
