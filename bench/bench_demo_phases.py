"""Does phase finding cost the demo's map anything? The demo campaign twice, in one run (issue 12).

    python bench/bench_demo_phases.py [--samples 60] [--seeds 1]

Runs the bundled demo campaign (`campaign/demo/demo.yaml`: SDS / PPG / NaCl, SAXS and SANS
linked, the multi-probe agent) as `make demo` does, once as shipped — the agent learns the phases
that `tandem.analysis.phases` finds in the curves — and once fed the true phases instead (each
probe told the phase as that probe can see it: X-rays cannot tell the two polymer phases apart).
Everything else is the same: stations, robot, frames, reduction, agent, seed. Prints the map
accuracy against the truth (the report's grid, Hungarian-matched) after the last sample, the
phases found, and the phase events, for both.

The truth-fed run replaces `CampaignPhases` in the runner with a stand-in that reads the twin's
truth: a bench-only device, never on a campaign's code path.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import tandem.campaign.runner as runner_module
from tandem.analysis.phases import PhaseFinding
from tandem.analysis.store import AnalysisRecord
from tandem.campaign import load_campaign, load_campaign_data
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.phases import CampaignPhases
from tandem.campaign.runner import CampaignRunner
from tandem.observations import Observation
from tandem.sim.zoo import zoo_system
from tandem.stations import Probe

DEMO = DEMO_CAMPAIGN


class TruthPhases:
    """Stands in for `CampaignPhases`: each result is told the phase its probe can see, from the truth."""

    def __init__(self, agent: Any, write: Any, settings: Any = None) -> None:
        self.system = zoo_system("default")
        self.labels: dict[str, str] = {}

    def restore(self, state: dict[str, Any]) -> None:
        """Nothing to keep: the truth does not change."""

    @property
    def finding(self) -> PhaseFinding:
        return PhaseFinding(dict(self.labels), dict(self.labels), {}, {})

    def learn(self, results: Sequence[tuple[AnalysisRecord, Observation]]) -> list[Observation]:
        out = []
        for _record, obs in results:
            if not obs.ok:
                out.append(obs)
                continue
            probe = Probe(obs.probe)
            phase = self.system(dict(obs.composition), probe).phase
            name = self.system.seen_as(probe)[phase]
            self.labels[obs.run_uid] = name
            out.append(replace(obs, label=name, label_probabilities={name: 1.0}))
        return out


def run(samples: int, seed: int, truth: bool) -> dict[str, Any]:
    spec = load_campaign(DEMO).to_dict()
    spec["stop"]["max_samples"] = samples
    spec["agent"]["seed"] = seed
    spec["id"] = f"demo-phases-{'truth' if truth else 'found'}-{seed}"
    campaign = load_campaign_data(spec, source=str(DEMO))
    original = runner_module.CampaignPhases
    runner_module.CampaignPhases = TruthPhases if truth else KeptPhases  # type: ignore[misc,assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-demo-phases-") as folder:
            started = time.perf_counter()
            runner = CampaignRunner(campaign, Path(folder) / "data")
            outcome = runner.run()
            seconds = time.perf_counter() - started
    finally:
        runner_module.CampaignPhases = original  # type: ignore[misc]
    accuracies = [(i + 1, e.accuracy) for i, e in enumerate(outcome.entries) if e.accuracy is not None]
    return {
        "phases": _confusion(KeptPhases.last) if not truth and KeptPhases.last else {},
        "mode": "true phases" if truth else "phases found",
        "seed": seed,
        "accuracy": accuracies[-1][1] if accuracies else None,
        "curve": accuracies,
        "samples": len(outcome.entries),
        "seconds": seconds,
    }


class KeptPhases(CampaignPhases):
    """The campaign's own phase finding, kept for the confusion table after the campaign ends."""

    last: CampaignPhases | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        KeptPhases.last = self


def _confusion(phases: CampaignPhases) -> dict[str, dict[str, int]]:
    """For each probe and phase found: how many of its runs lie in each true phase (as that probe sees)."""
    finding = phases.finding
    system = zoo_system("default")
    table: dict[str, dict[str, int]] = {}
    for uid, name in finding.labels.items():
        probe = phases.finder._probe_of[uid]
        composition = phases.finder._compositions[uid]
        truth = system.seen_as(probe)[system(composition, probe).phase]
        row = table.setdefault(f"{probe.value} {name} ({finding.probe_labels[uid]})", {})
        row[truth] = row.get(truth, 0) + 1
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=60, help="sample budget per campaign (default 60)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="agent seeds (the demo's is 1)")
    parser.add_argument("--one", choices=["found", "truth"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        # one campaign per process: Channel Access and the IOCs are set up once per process
        print(json.dumps(run(args.samples, args.seeds[0], args.one == "truth")))
        return
    for seed in args.seeds:
        for mode in ("found", "truth"):
            command = [sys.executable, __file__, "--one", mode, "--samples", str(args.samples)]
            command += ["--seeds", str(seed)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"seed {seed} {mode}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            curve = ", ".join(f"{n}: {a:.3f}" for n, a in row["curve"][-4:])
            print(
                f"seed {seed} {row['mode']:>12}: map accuracy {row['accuracy']:.3f} after "
                f"{row['samples']} samples ({row['seconds']:.0f} s; last points {curve})",
                flush=True,
            )
            for phase, counts in sorted(row.get("phases", {}).items()):
                print(f"    {phase}: {counts}", flush=True)


if __name__ == "__main__":
    main()
