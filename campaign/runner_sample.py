"""One sample's plans on its station's rig, as the campaign loop runs them.

The empty cell is measured once per station and detector configuration (every later
sample there is reduced with it), then the sample plan runs with the arguments the
campaign gives it: the ledger entry's target and scan, the station's solvent as the
balance, its sample volume, and half of it (at most 300 µL) loaded into the cell.
"""

from __future__ import annotations

from tandem.campaign.config import Campaign
from tandem.campaign.ledger import LedgerEntry
from tandem.campaign.rig import StationRig
from tandem.plans.measurement import measure_empty_cell
from tandem.plans.sample import sample_plan


class SamplePlans:
    """Runs the samples of `campaign`, remembering which empty cells are measured."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._empty_cells: set[tuple[str, str]] = set()

    def run(self, rig: StationRig, entry: LedgerEntry) -> None:
        """Run the sample of `entry` on `rig` (its empty cell first if need be); raises if a plan fails."""
        spec = self.campaign.stations[entry.station]
        self._empty_cell(rig, str(entry.scan.get("configuration") or spec.default_configuration))
        rig.RE(
            sample_plan(
                rig.station,
                rig.liquid_handler,
                rig.cell_loader,
                dict(entry.target),
                float(entry.scan["exposure_s"]),
                configuration=entry.scan.get("configuration"),
                temperature_c=entry.scan.get("temperature_c"),
                n_frames=int(entry.scan.get("n_frames", 1)),
                balance=spec.solvent.name,
                campaign_id=self.campaign.id,
                decision_uid=entry.decision_uid,
                sample_uid=entry.sample_uid,
                total_volume_ul=spec.spec.sample_volume_ul,
                load_volume_ul=min(spec.spec.sample_volume_ul / 2, 300.0),
                measure_empty_cell=False,
            )
        )

    def _empty_cell(self, rig: StationRig, configuration: str) -> None:
        """Measure the empty cell once per detector configuration: every later sample there uses it."""
        key = (rig.id, configuration)
        if key in self._empty_cells:
            return
        spec = self.campaign.stations[rig.id]
        rig.RE(
            measure_empty_cell(
                rig.station,
                spec.spec.scan.exposure_s.default,
                configuration=configuration,
                temperature_c=spec.spec.scan.temperature_c,
                md={"campaign_id": self.campaign.id},
            )
        )
        self._empty_cells.add(key)
