"""The sample plan an agent queues: prepare → load → measure (empty cell, transmission, scattering) → rinse.

Order, and why:

1. Check everything that can be checked without moving: scan parameters
   against the station's limits, the target against the deck, the recipe
   against the inventory. A refusal emits no document and moves nothing.
2. Set the station up (detector configuration, temperature) while nothing is
   pipetted yet, so a station that cannot get there wastes no sample.
3. Pipette; the realized composition is known only now. A pipetting failure is
   recorded as a failed run of its own.
4. Open the run. Its start document carries the sample (uid, campaign, target,
   realized), the decision uid, the recipe, the station and probe, the scan
   parameters and the detector geometry.
5. Empty cell frames (stream ``empty_cell``), load the cell (``load``), record
   what is in the beam on the station's sample device, transmission
   (``transmission``), scattering frames (``primary``).
6. Rinse (``rinse``) — also when a measurement failed, so the next sample does
   not meet this one; the run then ends with exit status ``fail`` and the reason.
"""

# No `from __future__ import annotations`: the queue server reads these annotations as objects.
import logging
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from tandem.plans import device_check
from tandem.plans.measurement import (
    EMPTY_CELL_STREAM,
    SAMPLE_STREAM,
    MsgGenerator,
    acquire_frames,
    acquire_transmission,
    check_scan,
    measurement_md,
    scan_parameters,
    set_up,
    translate_failures,
    transmission_exposure_s,
)
from tandem.plans.preparation import (
    PREPARATION_STREAM,
    load_stub,
    pipette_stub,
    plan_recipe,
    rinse_stub,
    target_composition,
)
from tandem.protocols import CellLoaderDevice, LiquidHandlerDevice, StationDevices
from tandem.robots.deck import Deck
from tandem.sample_request import cell_load_volume_ul
from tandem.samples import Sample, SampleState

logger = logging.getLogger(__name__)


def sample_plan(
    station: StationDevices,
    liquid_handler: LiquidHandlerDevice[Deck],
    cell_loader: CellLoaderDevice,
    target: dict[str, float],
    exposure_s: float,
    *,
    configuration: str | None = None,
    temperature_c: float | None = None,
    n_frames: int = 1,
    balance: str | None = None,
    campaign_id: str = "manual",
    decision_uid: str | None = None,
    sample_uid: str | None = None,
    total_volume_ul: float = 300.0,
    load_volume_ul: float | None = None,
    measure_empty_cell: bool = True,
    n_rinse_cycles: int = 2,
    dry_s: float = 30.0,
    load_timeout_s: float = 120.0,
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Make `target` (mass fractions, `balance` the rest), measure it on `station`; return the run uid.

    `load_volume_ul` None loads what the station's rule says (`tandem.sample_request.cell_load_volume_ul`:
    half the sample, at most what this cell holds). Arguments usually come from a
    `tandem.sample_request.SampleRequest` (`to_plan_kwargs()`).
    """
    station = device_check.station(station)
    lh, loader = device_check.liquid_handler(liquid_handler), device_check.cell_loader(cell_loader)
    scan = scan_parameters(station, exposure_s, configuration, temperature_c, n_frames)
    check_scan(station, scan)
    composition = target_composition(lh, target, balance).with_total_volume(total_volume_ul)
    sample = Sample.new(campaign_id, composition)
    if sample_uid:
        sample = Sample(uid=sample_uid, campaign_id=campaign_id, target=composition)
    recipe = plan_recipe(lh, sample.target, total_volume_ul)
    if load_volume_ul is None:
        # the cell's capacity is the station's to know: read it before anything moves
        capacity_ul = yield from bps.rd(loader.cell_capacity)
        load_volume_ul = cell_load_volume_ul(total_volume_ul, float(capacity_ul))

    geometry = yield from translate_failures(set_up(station, scan), station)
    base_md: dict[str, Any] = {
        "plan_name": "sample_plan",
        **measurement_md(station, scan, geometry),
        "decision_uid": decision_uid,
        "recipe": recipe.to_dict(),
        "load_volume_ul": load_volume_ul,
        **dict(md or {}),
    }
    try:
        realized = yield from pipette_stub(lh, recipe)
    except Exception as exc:
        failed = sample.moved("deck", SampleState.FAILED)
        failed_md = {**base_md, **_sample_md(failed), "failure": f"{type(exc).__name__}: {exc}"}
        yield from bpp.run_wrapper(_raise(exc), md=failed_md)
        raise  # pragma: no cover - run_wrapper re-raises
    sample = sample.prepared(realized, f"{lh.name}/{recipe.destination}")
    loaded = sample.moved(f"{station.name}/cell", SampleState.LOADED)
    cell_used = False

    def measure() -> MsgGenerator[None]:
        nonlocal cell_used
        yield from bps.trigger_and_read([lh], name=PREPARATION_STREAM)
        yield from bps.mv(station.detector.exposure_time, scan.exposure_s)
        if measure_empty_cell:
            yield from bps.mv(station.sample, None)
            yield from acquire_frames(station, EMPTY_CELL_STREAM, scan.n_frames)
        cell_used = True
        yield from load_stub(loader, load_volume_ul, load_timeout_s)
        yield from bps.mv(station.sample, {"uid": sample.uid, "mass_fractions": realized.mass_fractions})
        yield from acquire_transmission(station, transmission_exposure_s(station, scan))
        yield from acquire_frames(station, SAMPLE_STREAM, scan.n_frames)

    def rinse() -> MsgGenerator[None]:
        if cell_used:
            yield from rinse_stub(loader, n_rinse_cycles, dry_s)
            yield from bps.mv(station.sample, None)

    def rinse_after_failure(exc: BaseException) -> MsgGenerator[None]:
        try:
            yield from rinse()
        except Exception as rinse_exc:
            logger.error("%s: could not rinse the cell after %r: %s", station.name, exc, rinse_exc)

    body = bpp.contingency_wrapper(
        translate_failures(measure(), station), except_plan=rinse_after_failure, else_plan=rinse
    )
    uid: str = yield from bpp.run_wrapper(body, md={**base_md, **_sample_md(loaded)})
    return uid


def _sample_md(sample: Sample) -> dict[str, Any]:
    record = sample.to_dict()
    return {
        "sample_uid": sample.uid,
        "campaign_id": sample.campaign_id,
        "sample": record,
        "target": record["target"],
        "realized": record["realized"],
    }


def _raise(exc: BaseException) -> MsgGenerator[None]:
    raise exc
    yield  # pragma: no cover - makes this a generator
