"""Software overhead per sample of a closed-loop campaign on the twin (issue 6).

Runs the bundled demo campaign with the time scale at 0 (no simulated waiting)
for a sample budget, then reads each sample's wall-clock timings back from the
campaign ledger in Tiled and prints the median (and 90th percentile) per stage:

* plans    — the sample plan in the RunEngine: recipe, simulated robot, the cell
             loader over Channel Access, detector frames (callbacks excluded)
* tiled    — the Tiled writer's callbacks and the ledger writes
* analysis — reduction, features, fits and labels, in the RunEngine's callback
* agent    — telling the agent new results and its decision, with its record
* progress — the live map accuracy against the truth (reporting, not the loop)

Usage: python bench/bench_campaign.py [--samples 100] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tandem.campaign import load_campaign, load_campaign_data
from tandem.campaign.ledger import Ledger
from tandem.campaign.runner import CampaignRunner
from tandem.tiled_server import EmbeddedTiledServer

DEMO = Path(__file__).resolve().parents[1] / "examples" / "campaigns" / "demo.yaml"
STAGES = ("plans", "tiled", "analysis", "agent", "progress")


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

    started = time.perf_counter()
    outcome = CampaignRunner(campaign, data).run()
    wall_s = time.perf_counter() - started
    with EmbeddedTiledServer(data / "tiled") as endpoint:
        entries = [e for e in Ledger.open(endpoint.connect(), campaign.id).entries() if e.timings_s]

    print(f"{len(entries)} samples in {wall_s:.0f} s wall ({outcome.stop_reason}); data in {data}")
    print(f"{'stage':<10} {'median s':>9} {'p90 s':>8} {'mean s':>8}")
    for stage in STAGES:
        _row(stage, [e.timings_s.get(stage, 0.0) for e in entries])
    _row("total", [sum(v for k, v in e.timings_s.items() if k != "progress") for e in entries])
    print("(total excludes progress: the live accuracy display, not part of the loop)")


def _row(stage: str, values: list[float]) -> None:
    median, mean = statistics.median(values), statistics.fmean(values)
    print(f"{stage:<10} {median:9.3f} {_p90(values):8.3f} {mean:8.3f}")


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


if __name__ == "__main__":
    main()
