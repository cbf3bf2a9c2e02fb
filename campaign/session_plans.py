"""The station's plans, with its devices and the campaign's defaults filled in, for `RE(...)`.

Between `prepare` and `rinse` a `StationPlans` remembers which sample is where, so
`load()` loads the last prepared sample and `measure_sample()` records the sample
in the cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bluesky.plan_stubs as bps

from tandem.campaign.session_config import SessionConfigError
from tandem.campaign.station_rig import StationRig
from tandem.plans import measurement, preparation
from tandem.plans import sample as sample_plans
from tandem.sample_request import SampleRequest, cell_load_volume_ul
from tandem.samples import Sample
from tandem.suggestions import ScanParameters

if TYPE_CHECKING:
    from tandem.plans.measurement import MsgGenerator


class StationPlans:
    """The station's plans with its devices and the campaign's defaults filled in.

    Each method returns a plan for `RE(...)`. Between `prepare` and `rinse` the
    session remembers which sample is where, so `load()` loads the last prepared
    sample and `measure_sample()` records the sample in the cell.
    """

    def __init__(self, rig: StationRig, *, campaign_id: str = "manual") -> None:
        self._rig = rig
        self.campaign_id = campaign_id
        scan = rig.campaign_station.spec.scan
        self.default_exposure_s = scan.exposure_s.default
        self.default_configuration = rig.campaign_station.default_configuration
        self.default_temperature_c = scan.temperature_c
        self.default_volume_ul = rig.campaign_station.spec.sample_volume_ul
        #: the liquid that takes the rest of every sample
        self.solvent = rig.campaign_station.solvent.name
        #: the last sample prepared, and the sample in the cell (None: empty)
        self.prepared: Sample | None = None
        self.in_cell: Sample | None = None

    def _scan_kwargs(
        self, configuration: str | None, temperature_c: float | None
    ) -> dict[str, str | float | None]:
        return {
            "configuration": configuration or self.default_configuration,
            "temperature_c": self.default_temperature_c if temperature_c is None else temperature_c,
        }

    def prepare(
        self,
        target: dict[str, float],
        total_volume_ul: float | None = None,
        *,
        balance: str | None = None,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[Sample]:
        """Pipette `target` (mass fractions; `balance`, by default the solvent, the rest), as a run."""
        volume = self.default_volume_ul if total_volume_ul is None else total_volume_ul
        sample: Sample = yield from preparation.prepare_sample(
            self._rig.liquid_handler,
            target,
            volume,
            balance=balance or self.solvent,
            campaign_id=self.campaign_id,
            md=md,
        )
        self.prepared = sample
        return sample

    def load(self, volume_ul: float | None = None, *, md: dict[str, Any] | None = None) -> MsgGenerator[None]:
        """Load the last prepared sample into the cell, as a run.

        By default as much as the sample plan loads: `tandem.sample_request.cell_load_volume_ul`.
        """
        if self.prepared is None:
            raise SessionConfigError("nothing to load: prepare a sample first, `RE(prepare({'SDS': 0.05}))`")
        sample = self.prepared
        volume = volume_ul
        if volume is None:  # the station's rule, with this cell's capacity
            capacity_ul = yield from bps.rd(self._rig.cell_loader.cell_capacity)
            total_ul = sample.target.total_volume_ul or self.default_volume_ul
            volume = cell_load_volume_ul(total_ul, float(capacity_ul))
        yield from preparation.load_sample(self._rig.cell_loader, volume, sample=sample.to_dict(), md=md)
        # the station records what is in the beam (the twin also needs it to know what it sees)
        yield from bps.mv(self._rig.station.sample, _beam_record(sample))
        self.in_cell = sample
        self.prepared = None

    def rinse(self, n_cycles: int = 2, dry_s: float = 30.0) -> MsgGenerator[None]:
        """Rinse and dry the cell, as a run; the cell is empty afterwards."""
        yield from preparation.rinse_cell(self._rig.cell_loader, n_cycles, dry_s)
        yield from bps.mv(self._rig.station.sample, None)
        self.in_cell = None

    def measure_empty_cell(
        self,
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        n_frames: int = 1,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[str]:
        """Frames of the empty cell: the background the next sample runs are reduced with."""
        if self.in_cell is not None:
            raise SessionConfigError(
                f"the cell holds sample {self.in_cell.uid}: `RE(rinse())` before measuring the empty cell"
            )
        return (
            yield from measurement.measure_empty_cell(
                self._rig.station,
                self._exposure(exposure_s),
                n_frames=n_frames,
                md=md,
                **self._scan_kwargs(configuration, temperature_c),  # type: ignore[arg-type]
            )
        )

    def measure_transmission(
        self,
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[str]:
        """Transmission of what is in the cell now."""
        return (
            yield from measurement.measure_transmission(
                self._rig.station,
                self._exposure(exposure_s),
                md={**self._cell_md(), **(md or {})},
                **self._scan_kwargs(configuration, temperature_c),  # type: ignore[arg-type]
            )
        )

    def measure_sample(
        self,
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        n_frames: int = 1,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[str]:
        """Transmission and scattering frames of the sample in the cell; analysed when the run closes."""
        return (
            yield from measurement.measure_sample(
                self._rig.station,
                self._exposure(exposure_s),
                n_frames=n_frames,
                md={**self._cell_md(), **(md or {})},
                **self._scan_kwargs(configuration, temperature_c),  # type: ignore[arg-type]
            )
        )

    def sample_plan(
        self,
        target: dict[str, float],
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        n_frames: int = 1,
        balance: str | None = None,
        total_volume_ul: float | None = None,
        md: dict[str, Any] | None = None,
        **options: Any,
    ) -> MsgGenerator[str]:
        """The whole sample in one run, as the agent queues it: prepare, load, measure, rinse.

        Its arguments are a `SampleRequest`'s, as the campaign runner's and the agent's are;
        `options` may name the request's `load_volume_ul`, `measure_empty_cell`, `sample_uid`
        and `decision_uid`, and the plan's rinse and timeout arguments.
        """
        if self.in_cell is not None:
            raise SessionConfigError(
                f"the cell holds sample {self.in_cell.uid}: `RE(rinse())` before running a sample plan"
            )
        request = SampleRequest(
            sample_uid=options.pop("sample_uid", None) or SampleRequest.new_sample_uid(),
            campaign_id=self.campaign_id,
            station=self._rig.id,
            target=target,
            balance=balance or self.solvent,
            scan=ScanParameters(
                self._exposure(exposure_s),
                configuration or self.default_configuration,
                self.default_temperature_c if temperature_c is None else float(temperature_c),
                n_frames,
            ),
            total_volume_ul=self.default_volume_ul if total_volume_ul is None else total_volume_ul,
            decision_uid=options.pop("decision_uid", None),
            load_volume_ul=options.pop("load_volume_ul", None),
            measure_empty_cell=options.pop("measure_empty_cell", True),
        )
        rig = self._rig
        kwargs = request.to_plan_kwargs()
        return (
            yield from sample_plans.sample_plan(
                rig.station, rig.liquid_handler, rig.cell_loader, **kwargs, md=md, **options
            )
        )

    def _exposure(self, exposure_s: float | None) -> float:
        return self.default_exposure_s if exposure_s is None else float(exposure_s)

    def _cell_md(self) -> dict[str, Any]:
        if self.in_cell is None:
            return {}
        record = self.in_cell.to_dict()
        return {
            "sample_uid": self.in_cell.uid,
            "campaign_id": self.in_cell.campaign_id,
            "sample": record,
            "target": record["target"],
            "realized": record["realized"],
        }

    def as_namespace(self) -> dict[str, Callable[..., Any]]:
        return {
            "prepare": self.prepare,
            "load": self.load,
            "rinse": self.rinse,
            "measure_empty_cell": self.measure_empty_cell,
            "measure_transmission": self.measure_transmission,
            "measure_sample": self.measure_sample,
            "sample_plan": self.sample_plan,
        }


def _beam_record(sample: Sample) -> dict[str, Any]:
    composition = sample.realized or sample.target
    return {"uid": sample.uid, "mass_fractions": dict(composition.mass_fractions)}
