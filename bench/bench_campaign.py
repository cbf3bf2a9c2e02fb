"""Software overhead per sample of a closed-loop campaign on the twin (issue 6).

Runs the bundled demo campaign with the time scale at 0 (no simulated waiting)
for a sample budget, then reads each sample's wall-clock timings back from the
campaign ledger in Tiled and prints them by stage.

The figure that matters is the wall time per sample: the loop's wall time (from
its first decision until every result is in Tiled) over the samples. The loop
does some work itself and hands the rest to background threads, so the stages
are reported in two groups, and only the first adds up to the wall time:

the loop (main thread; its stages add up to `loop`, the sample's wall time)
* agent    — telling the agent new results and its decision
* wait     — waiting for a result the decision needs (its analysis still running)
* ledger   — the decision record and the decided sample, written before it runs
* plans    — the sample plan in the RunEngine: recipe, simulated robot, the cell
             loader over Channel Access, detector frames (documents handed over)
* progress — the live map accuracy against the truth (reporting)

in the background (their own threads, overlapping the loop and each other)
* tiled    — the station's Tiled writer, writing the sample's runs
* analysis — the labelling thread: reduction, features, label (what `wait` waits for)
* fits     — the fitting thread: the analysed node written, the model fits, the node completed

Usage: python bench/bench_campaign.py [--samples 100] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tandem.analysis.store import AnalysisStore
from tandem.campaign import load_campaign, load_campaign_data
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.ledger import Ledger, LedgerEntry, SampleStatus
from tandem.campaign.runner import CampaignRunner
from tandem.catalog import Catalog
from tandem.tiled_server import EmbeddedTiledServer

DEMO = DEMO_CAMPAIGN
LOOP_STAGES = ("agent", "wait", "ledger", "plans", "progress")
BACKGROUND_STAGES = ("tiled", "analysis", "fits")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=100, help="sample budget (default 100)")
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: a temporary one)")
    args = parser.parse_args()

    demo = load_campaign(DEMO)
    spec = demo.to_dict()
    spec["id"] = "bench-campaign"
    spec["stop"] = {"max_samples": args.samples}
    campaign = load_campaign_data(spec, source="bench", base=DEMO.parent)
    data = args.data or Path(tempfile.mkdtemp(prefix="tandem-bench-")) / "campaign"

    load_before = os.getloadavg()
    cpu_before = os.times()
    started = time.perf_counter()
    outcome = CampaignRunner(campaign, data).run()
    wall_s = time.perf_counter() - started
    cpu_after = os.times()
    load_after = os.getloadavg()
    with EmbeddedTiledServer(data / "tiled") as endpoint:
        client = endpoint.connect()
        entries = [e for e in Ledger.open(client, campaign.id).entries() if e.timings_s]
        problems = _check(client, campaign.id, entries)

    n = len(entries)
    print(f"{n} samples ({outcome.stop_reason}); data in {data}")
    print(
        f"wall {wall_s:.0f} s, of which the loop {outcome.loop_s:.0f} s (the rest: Tiled, IOCs): "
        f"{outcome.loop_s / max(n, 1):.2f} s per sample"
    )
    print(f"load average (1, 5, 15 min) before {_load(load_before)}, after {_load(load_after)}")
    # the child processes are counted once they have exited: the Tiled server and the IOCs, stopped
    # when the campaign ends (the Tiled server's share is most of it)
    own_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    children_s = (cpu_after.children_user + cpu_after.children_system) - (
        cpu_before.children_user + cpu_before.children_system
    )
    print(
        f"CPU per sample: this process {own_s / max(n, 1):.2f} s, its child processes (Tiled server, "
        f"IOCs) {children_s / max(n, 1):.2f} s, on {os.cpu_count()} cores"
    )
    print(f"{'stage':<10} {'median s':>9} {'p90 s':>8} {'mean s':>8}")
    print("-- the loop (adds up to the wall time per sample)")
    for stage in LOOP_STAGES:
        _row(stage, [e.timings_s.get(stage, 0.0) for e in entries])
    _row("loop", [e.timings_s.get("loop", 0.0) for e in entries])
    print("-- in the background (own threads, overlapping the loop)")
    for stage in BACKGROUND_STAGES:
        _row(stage, [e.timings_s.get(stage, 0.0) for e in entries])
    _row("all work", [sum(v for k, v in e.timings_s.items() if k != "loop") for e in entries])
    print(
        "consistency: "
        + ("every measured sample has one closed run and a complete node" if not problems else "")
    )
    for problem in problems:
        print(f"  PROBLEM: {problem}")


def _check(client: Any, campaign_id: str, entries: list[LedgerEntry]) -> list[str]:
    """What the ledger says against what Tiled holds: no result the store does not have."""
    store = AnalysisStore(client)
    runs = Catalog(client).runs(campaign_id=campaign_id, plan_name="sample_plan", exit_status="success")
    per_sample = Counter(run.sample_uid for run in runs)
    problems = [f"sample {uid} has {k} runs" for uid, k in per_sample.items() if k != 1]
    for entry in entries:
        if entry.status is SampleStatus.MEASURED:
            if per_sample.get(entry.sample_uid) != 1:
                problems.append(f"measured sample {entry.sample_uid} has no closed run")
            if entry.run_uid is None or not store.is_done(entry.run_uid):
                problems.append(f"measured sample {entry.sample_uid} has no complete analysed node")
        elif entry.status is not SampleStatus.FAILED:
            problems.append(f"sample {entry.sample_uid} has no result ({entry.status.value})")
    return problems


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.1f}" for v in load)


def _row(stage: str, values: list[float]) -> None:
    median, mean = statistics.median(values), statistics.fmean(values)
    print(f"{stage:<10} {median:9.3f} {_p90(values):8.3f} {mean:8.3f}")


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


if __name__ == "__main__":
    main()
