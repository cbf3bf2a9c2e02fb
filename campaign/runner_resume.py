"""Resuming a campaign: its folder checked, its ledger settled, its stations put back as they were.

Everything that matters is in Tiled, so a campaign killed at any point resumes from
there. A folder is taken only for the campaign it holds (`claim_folder`,
`check_catalog_holds`). Runs a stop left open are closed (exit status abort). Each
ledger entry not done is settled (`settle_ledger`): a sample decided and never started
is run now, the same sample; one whose run closed before the stop gets its entry from
that run; one cut off mid-run went to waste, and its decision is run again as a new
sample. Each station's clock gets back its busy time and its deck the inventory of its
last sample (`restore_stations`, from what `deck_inventory` recorded).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tandem.analysis.pipeline import Analyzer
from tandem.campaign.config import Campaign
from tandem.campaign.ledger import INTERRUPTED_REASON, Ledger, LedgerEntry, SampleStatus
from tandem.campaign.runner_completion import failure, sample_runs
from tandem.campaign.station_rig import StationRig
from tandem.catalog import Catalog, RawRun
from tandem.catalog_layout import CAMPAIGNS, TiledContainer
from tandem.components import Component
from tandem.composition import Composition
from tandem.data_folder import check_data_folder, claim_data_folder, marked_campaign
from tandem.errors import TandemError


class CampaignRunError(TandemError, RuntimeError):
    """The campaign cannot run or resume (for example, resuming a campaign that is not in the catalog)."""


def claim_folder(directory: Path, campaign_id: str, *, resume: bool) -> None:
    """Take `directory` for the campaign: a new one needs a folder without a catalog, a resumed one its
    own catalog. A folder refused is left as it was."""
    check_data_folder(directory)  # a folder tandem did not make: refused, nothing written
    catalog_exists = (directory / "tiled").exists()
    if resume and not catalog_exists:
        raise CampaignRunError(f"nothing to resume: {directory} holds no campaign catalog")
    if not resume and catalog_exists:
        raise CampaignRunError(
            f"{directory} holds a campaign already: resume it (`tandem campaign resume`) or name a new folder"
        )
    held = marked_campaign(directory)
    if resume and held is not None and held != campaign_id:
        raise _other_campaign(directory, held, campaign_id)
    claim_data_folder(directory, campaign_id=campaign_id)


def check_catalog_holds(client: TiledContainer, directory: Path, campaign_id: str) -> None:
    """Refuse to resume `campaign_id` in a catalog that does not hold it."""
    # a folder without a marker naming its campaign (older ones) is checked in its catalog
    held = list(client[CAMPAIGNS]) if CAMPAIGNS in client else []
    if campaign_id not in held:
        raise _other_campaign(directory, held, campaign_id)


def _other_campaign(directory: Path, held: str | Sequence[str], campaign_id: str) -> CampaignRunError:
    held_ids = [held] if isinstance(held, str) else list(held)
    named = ", ".join(repr(h) for h in held_ids) or "no campaign"
    return CampaignRunError(
        f"{directory} holds campaign {named}, not {campaign_id!r}: resuming there would start campaign "
        f"{campaign_id!r} beside it and replace its report. Resume {named} with its own campaign file, "
        f"or run {campaign_id!r} in a new folder"
    )


def settle_ledger(
    campaign_id: str, ledger: Ledger, catalog: Catalog, analyzer: Analyzer
) -> tuple[dict[str, LedgerEntry], list[LedgerEntry]]:
    """Close the runs a stop left open and settle every ledger entry not done.

    Returns the entries by sample uid, in ledger order (done, recovered from their run, or
    interrupted), and the samples to run (again).
    """
    for run in catalog.iter_runs(campaign_id=campaign_id):
        if not run.is_closed:
            catalog.close_interrupted(run, INTERRUPTED_REASON)
    entries: dict[str, LedgerEntry] = {}
    redo: list[LedgerEntry] = []
    for entry in ledger.entries():
        if entry.done:
            entries[entry.sample_uid] = entry
            continue
        runs = sample_runs(catalog, entry.sample_uid)
        if not runs:
            redo.append(entry)  # decided, never started: run it now, same sample
            continue
        closed = [r for r in runs if r.reason != INTERRUPTED_REASON]  # not the ones closed just now
        if closed:  # the run ended before the stop, only its ledger entry was not written
            done = _recovered(entry, closed[0], analyzer)
            ledger.update(done)
            entries[done.sample_uid] = done
            continue
        # started but never finished: that sample went to waste (its run was closed above, exit status
        # abort); its decision is run again as a new sample
        interrupted = replace(entry, status=SampleStatus.INTERRUPTED, reason=INTERRUPTED_REASON)
        ledger.update(interrupted)
        entries[interrupted.sample_uid] = interrupted
        again = replace(entry, sample_uid=str(uuid.uuid4()), decided_at=time.time())
        ledger.add(again)
        redo.append(again)
    return entries, redo


def _recovered(entry: LedgerEntry, run: RawRun, analyzer: Analyzer) -> LedgerEntry:
    """The ledger entry of a sample whose run closed before the campaign stopped."""
    note = "recovered from its run after the campaign stopped; its station time was not recorded"
    if not run.succeeded:
        return replace(
            entry, status=SampleStatus.FAILED, run_uid=run.uid, end_s=entry.start_s, reason=run.reason
        )
    record = analyzer.analyze(run.uid)  # the node written before the stop, or a new one
    status = SampleStatus.MEASURED if record.ok else SampleStatus.FAILED
    reason = note if record.ok else f"{failure(record)}; {note}"
    return replace(entry, status=status, run_uid=run.uid, end_s=entry.start_s, reason=reason)


def restore_stations(
    campaign: Campaign, rigs: Mapping[str, StationRig], entries: Iterable[LedgerEntry]
) -> None:
    """Each station's busy time so far, its clock at its last sample's end and its deck as that left it."""
    known = list(entries)
    for sid, rig in rigs.items():
        finished = [e for e in known if e.station == sid and e.end_s is not None]
        for entry in finished:  # the station's busy time so far: beamtime and utilisation go on from it
            for kind, start_s, end_s in entry.activities:
                rig.clock.record(kind, start_s, end_s)
        if finished:
            last = max(finished, key=lambda e: e.end_s or 0.0)
            # station time goes on from the last sample's end; an empty interval says so without
            # waiting (a wall clock waits in `idle_until`, a virtual one jumps: either way, no time spent)
            rig.clock.record("resumed", last.end_s or 0.0, last.end_s or 0.0)
            if last.inventory:
                _restore_inventory(rig, last.inventory, campaign.stations[sid].solvent)


def deck_inventory(rig: StationRig) -> dict[str, Any]:
    """What the ledger keeps of the deck after a sample, for a resume to put it back."""
    deck = rig.liquid_handler.deck
    return {
        "stocks_ul": {s.name: s.volume_ul for s in deck.stocks},
        "tips_used": {r.slot: r.n_used for r in deck.tip_racks},
        "wells_ul": {w.slot: w.volume_ul for w in deck.wells if not w.is_empty},
    }


def _restore_inventory(rig: StationRig, inventory: Mapping[str, Any], solvent: Component) -> None:
    """Put the deck back as the ledger left it: stock volumes, tips used, wells taken.

    A taken well is refilled with its volume of solvent: only that it is taken, and
    how full, matters to the recipes that follow.
    """
    deck = rig.liquid_handler.deck
    for name, volume in inventory.get("stocks_ul", {}).items():
        deck = deck.with_stock_volume(name, float(volume))
    used = inventory.get("tips_used", {})
    deck = replace(
        deck, tip_racks=tuple(replace(r, n_used=int(used.get(r.slot, r.n_used))) for r in deck.tip_racks)
    )
    for slot, volume in inventory.get("wells_ul", {}).items():
        deck = deck.with_well_contents(slot, Composition.pure(solvent, total_volume_ul=float(volume)))
    with rig.liquid_handler.inventory.operation() as pending:
        pending.deck = deck
