"""Soak: a long twin campaign killed with SIGKILL at random steps, resumed each time (issue 13).

Runs `tandem campaign` on the demo campaign with a budget of `--samples`, arming one kill point
(`tandem.campaign.kill_points`) per process: a random step of a sample (the decision, the robot's
mixing, the exposure, the run's end, the Tiled write, the analysis, the ledger) at a random pass,
so that the `--kills` kills spread over the campaign. Each killed process is resumed with
`tandem campaign resume` and the next kill point armed; the last one runs to the end of the budget.

Then it audits the catalog (`tandem.campaign.audit`) and prints what must all be 0 — samples lost,
measured twice, beyond the budget, runs left open — and the wall-time cost of recovery: how long a
resumed process takes from its start to its first new decision (servers, IOCs, the agent rebuilt
and told every result) against a fresh start, and the samples cut off mid-run by the kills (run
again as new samples).

Usage: python bench/bench_soak.py [--samples 300] [--kills 15] [--seed 0] [--data DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tandem.campaign.audit import audit_campaign
from tandem.campaign.bundled import DEMO_FOLDER
from tandem.campaign.kill_points import KILL_AT_ENV, KILL_POINTS
from tandem.campaign.ledger import Ledger
from tandem.tiled_server import EmbeddedTiledServer

DEMO = DEMO_FOLDER
CAMPAIGN_ID = "soak"
#: `tandem campaign`'s exit status when it stopped because its stations kept failing (a lab out of tips
#: ends so): the campaign ended by itself, and its record is audited as any other
FAILURES_EXIT = 3


def _soak_deck(source: Path, target: Path) -> Path:
    """The demo deck with consumables for a long campaign: the demo's run out of 1000 µL tips after
    about 270 samples (measured: the breaker then stops the campaign). A lab restocks; here the racks,
    stocks and plates are simply larger."""
    deck = yaml.safe_load(source.read_text())
    for rack in deck["tip_racks"]:
        rack["n_tips"] *= 10
    for stock in deck["stocks"]:
        stock["volume_ul"] *= 10
        stock["capacity_ul"] *= 10
    for plate in deck["plates"]:
        plate["rows"], plate["columns"] = 16, 24
    target.write_text(yaml.safe_dump(deck))
    return target


def _campaign_file(folder: Path, samples: int) -> Path:
    spec = yaml.safe_load((DEMO / "demo.yaml").read_text())
    for station in spec["stations"].values():
        name = Path(station["deck"]).name
        station["deck"] = str(_soak_deck(DEMO / name, folder / name))
    spec["id"] = CAMPAIGN_ID
    spec["stop"] = {"max_samples": samples}
    path = folder / "soak.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _kill_schedule(seed: int, kills: int, samples: int) -> list[tuple[str, int]]:
    """Random kill points whose passes spread the kills over the campaign (about samples/kills apart)."""
    rng = random.Random(seed)
    spacing = max(1, samples // (kills + 1))
    return [(rng.choice(list(KILL_POINTS)), rng.randint(1, 2 * spacing - 1)) for _ in range(kills)]


def _run(config: Path, data: Path, resume: bool, kill_at: str | None) -> tuple[int, float, float]:
    """One process of the campaign: its exit status, its start (epoch seconds) and wall seconds."""
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_ENV}
    if kill_at is not None:
        env[KILL_AT_ENV] = kill_at
    verb = "resume" if resume else "run"
    command = [sys.executable, "-P", "-m", "tandem.cli", "campaign", verb, str(config), "--data", str(data)]
    started, t0 = time.time(), time.perf_counter()
    process = subprocess.run(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if process.returncode not in (0, FAILURES_EXIT, -signal.SIGKILL):
        sys.stderr.write(process.stderr.decode()[-3000:])
        raise SystemExit(f"the campaign process failed with status {process.returncode}")
    return process.returncode, started, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=300, help="sample budget (default 300)")
    parser.add_argument("--kills", type=int, default=15, help="kills, one per process (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill schedule (default 0)")
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tandem-soak-"))
    data = args.data or folder / "data"
    config = _campaign_file(folder, args.samples)
    schedule = _kill_schedule(args.seed, args.kills, args.samples)
    starts: list[tuple[float, bool]] = []  # (process start, resumed?)
    fired: list[str] = []
    total_started = time.perf_counter()
    for n, (point, at) in enumerate([*schedule, (None, 0)]):
        kill_at = None if point is None else f"{point}:{at}"
        status, started, wall_s = _run(config, data, resume=n > 0, kill_at=kill_at)
        starts.append((started, n > 0))
        outcome = {0: "finished", FAILURES_EXIT: "stopped: its stations kept failing"}.get(status, "killed")
        print(f"process {n + 1}: {kill_at or 'no kill point'} -> {outcome} after {wall_s:.1f} s", flush=True)
        if status in (0, FAILURES_EXIT):
            break
        fired.append(kill_at or "")
    total_s = time.perf_counter() - total_started

    with EmbeddedTiledServer(data / "tiled") as endpoint:
        client = endpoint.connect()
        audit = audit_campaign(client, CAMPAIGN_ID)
        decided = sorted(e.decided_at for e in Ledger.open(client, CAMPAIGN_ID).entries())
    # a process's start-up cost: from its start to the first decision it made
    to_first: list[tuple[float, bool]] = []
    for started, resumed in starts:
        first = next((t for t in decided if t >= started), None)
        if first is not None:
            to_first.append((first - started, resumed))
    fresh = [s for s, resumed in to_first if not resumed]
    resumed = [s for s, was in to_first if was]
    figures: dict[str, Any] = {
        "samples": args.samples,
        "kills_fired": len(fired),
        "kill_points": fired,
        "audit": audit.to_dict(),
        "wall_s": total_s,
        "fresh_start_to_first_decision_s": fresh[0] if fresh else None,
        "resume_to_first_decision_s": {
            "median": statistics.median(resumed) if resumed else None,
            "max": max(resumed, default=None),
        },
    }
    print(json.dumps(figures, indent=2))
    print(
        f"\n{len(fired)} kills; lost {audit.lost}, measured twice {audit.repeated}, "
        f"over budget {audit.over_budget}, runs left open {audit.runs_open}, "
        f"samples cut off and run again {audit.interrupted}; "
        f"{audit.samples} samples in {total_s / 60:.1f} min"
    )
    if resumed and fresh:
        print(
            f"recovery: a resumed process decides {statistics.median(resumed):.1f} s after its start "
            f"(median; max {max(resumed):.1f} s), a fresh one {fresh[0]:.1f} s"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    if audit.problems:
        raise SystemExit("the campaign broke a promise: " + "; ".join(audit.problems))


if __name__ == "__main__":
    main()
