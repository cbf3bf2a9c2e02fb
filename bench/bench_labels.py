"""Phase-label accuracy on the twin: per probe, across probes, and as a campaign grows (issue 6).

    SAS_DLL_PATH=$PWD/.venv/sasmodels-kernels .venv/bin/python bench/bench_labels.py \
        [--samples 240] [--seed 0] [--checkpoints 20 40 60 120 240] [--cache /tmp/bench-labels]

What it does:

1. Compositions of the demo campaign's space (`campaign/demo/demo.yaml`: its bounds and its
   "at least 75 % solvent" constraint): half drawn at random, half within a few thousandths of mass
   fraction of a phase boundary (found by bisection between two random points of different phases),
   because that is where an active agent spends its samples.
2. A campaign-like sequence of runs: 70 % SAXS, 30 % SANS; half of the SANS runs at a composition SAXS
   measured before (an agent looking at a SAXS label with neutrons), the rest at new compositions.
   Each run's exposure is drawn from the demo's exposure ladder of its station, at the station's
   default detector configuration.
3. Each run's curve is made as the pipeline makes it: the twin renders a sample frame and an empty-cell
   frame (`tandem.sim.detector_image`), and `reduce_exposure` turns them into I(q) in 1/cm with the
   twin's calibration.
4. The runs are labelled as the analysis pipeline labels them: after every run, `assign_labels` on all
   runs so far with the previous labels (so name stability is exercised as in a campaign). At each
   checkpoint it prints the accuracy of the labels against the truth after the best one-to-one matching
   of label names to phases (`tandem.campaign.metrics.match_labels`, as the campaign report matches):

   - xray: SAXS runs against the five phases as the twin renders them;
   - (merged): SAXS runs against a truth with the two polymer phases as one, "polymer (x-ray)" (PPG is
     nearly contrast-matched for X-rays; but the SDS bound in the polymer-rich clusters is not, and
     most of them show clearly at SAXS);
   - neutron: SANS runs against the five phases;
   - combined: all runs with one matching (and its merged variant): a label that stands for one phase
     at one station and another phase at the other cannot score here;
   - renames: how many times an earlier run's label changed when a later run arrived.

The truth is read only here, to score; the labeller never sees it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tandem.analysis.curves import Curve
from tandem.analysis.labels import LabelInput, assign_labels
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.config import Campaign, load_campaign
from tandem.campaign.metrics import match_labels
from tandem.sim.reduced_curve import twin_curve
from tandem.sim.system_phases import NEUTRON_ONLY_BOUNDARY, SOLUTE_NAMES
from tandem.sim.systems import phases_of

DEMO = DEMO_CAMPAIGN
XRAY_MERGED = "polymer (x-ray)"
SANS_SHARE = 0.3
SANS_AT_SAXS_SITE = 0.5
#: how close to a boundary a "near boundary" composition lies, in mass fraction along the bisection line
NEAR_BOUNDARY = (0.001, 0.006)


@dataclass(frozen=True)
class Run:
    uid: str
    station: str
    probe: str
    composition: Mapping[str, float]
    exposure_s: float
    phase: str
    curve: Curve

    @property
    def merged_truth(self) -> str:
        """The phase with the two polymer phases as one for X-rays (PPG is contrast-matched for them)."""
        if self.probe == "xray" and self.phase in NEUTRON_ONLY_BOUNDARY:
            return XRAY_MERGED
        return self.phase


# -- compositions ---------------------------------------------------------------------------------


def _feasible(campaign: Campaign, x: np.ndarray) -> bool:
    return campaign.constraint_violation(dict(zip(SOLUTE_NAMES, map(float, x), strict=True))) is None


def _random_point(campaign: Campaign, rng: np.random.Generator) -> np.ndarray:
    lo = np.array([campaign.space.bounds[n][0] for n in SOLUTE_NAMES])
    hi = np.array([campaign.space.bounds[n][1] for n in SOLUTE_NAMES])
    while True:
        x = lo + rng.uniform(size=lo.size) * (hi - lo)
        if _feasible(campaign, x):
            return x


def _phase(x: np.ndarray) -> str:
    return str(phases_of(x.reshape(1, -1))[0])


def _near_boundary(campaign: Campaign, rng: np.random.Generator) -> np.ndarray:
    """A point a little to one side of a boundary between two random points of different phases."""
    while True:
        a, b = _random_point(campaign, rng), _random_point(campaign, rng)
        if _phase(a) == _phase(b):
            continue
        for _ in range(40):  # bisection to ~1e-12 of the segment
            mid = (a + b) / 2
            if _phase(mid) == _phase(a):
                a = mid
            else:
                b = mid
        direction = (b - a) / max(float(np.linalg.norm(b - a)), 1e-15)
        if not np.all(np.isfinite(direction)) or not np.any(direction):
            direction = (b - a) / max(float(np.abs(b - a).max()), 1e-15)
            direction /= np.linalg.norm(direction)
        offset = rng.uniform(*NEAR_BOUNDARY) * rng.choice([-1.0, 1.0])
        x = np.clip((a + b) / 2 + offset * direction, 0.0, None)
        hi = np.array([campaign.space.bounds[n][1] for n in SOLUTE_NAMES])
        if np.all(x <= hi) and _feasible(campaign, x):
            return x


def compositions(campaign: Campaign, n: int, rng: np.random.Generator) -> list[dict[str, float]]:
    points = [_random_point(campaign, rng) if i % 2 == 0 else _near_boundary(campaign, rng) for i in range(n)]
    return [{name: round(float(v), 6) for name, v in zip(SOLUTE_NAMES, x, strict=True)} for x in points]


# -- curves ---------------------------------------------------------------------------------------


def measure(
    station: str, composition: Mapping[str, float], exposure_s: float, configuration: str, seed: int
) -> Curve:
    """The reduced curve of one run, as the pipeline would make it from the twin's frames."""
    return twin_curve(station, composition, exposure_s, configuration, seed)[0]


def make_runs(n_samples: int, seed: int, cache: Path | None) -> list[Run]:
    """The campaign-like sequence of `n_samples` runs (cached as .npz under `cache` when given)."""
    campaign = load_campaign(DEMO)
    rng = np.random.default_rng(seed)
    pool = compositions(campaign, n_samples, rng)
    stations = dict(campaign.stations)
    plan: list[tuple[str, dict[str, float], float]] = []
    saxs_sites: list[dict[str, float]] = []
    fresh = iter(pool)
    for _ in range(n_samples):
        station = "sans" if rng.uniform() < SANS_SHARE else "saxs"
        if station == "sans" and saxs_sites and rng.uniform() < SANS_AT_SAXS_SITE:
            composition = saxs_sites.pop(int(rng.integers(len(saxs_sites))))
        else:
            composition = next(fresh)
            if station == "saxs":
                saxs_sites.append(composition)
        exposure = float(rng.choice(stations[station].exposure_choices_s))
        plan.append((station, composition, exposure))
    key = hashlib.sha1(json.dumps([seed, plan]).encode()).hexdigest()[:12]
    runs: list[Run] = []
    started = time.perf_counter()
    for i, (station, composition, exposure) in enumerate(plan):
        station_obj = stations[station]
        probe = station_obj.probe.value
        path = cache / f"{key}-{i}.npz" if cache is not None else None
        if path is not None and path.exists():
            with np.load(path) as data:
                curve = Curve(data["q"], data["i"], data["s"], data["dq"])
        else:
            curve = measure(
                station, composition, exposure, station_obj.default_configuration, seed * 100_003 + i
            )
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(
                    path, q=curve.q_inv_a, i=curve.intensity_per_cm, s=curve.sigma_per_cm, dq=curve.dq_inv_a
                )
        phase = _phase(np.array([composition[n] for n in SOLUTE_NAMES]))
        runs.append(Run(f"run-{i:04d}", station, probe, composition, exposure, phase, curve))
    print(f"{len(runs)} runs ready in {time.perf_counter() - started:.1f} s (key {key})")
    return runs


# -- scoring --------------------------------------------------------------------------------------


def accuracy(runs: Sequence[Run], labels: Mapping[str, str], *, merged: bool = False) -> float:
    if not runs:
        return float("nan")
    truth = [r.merged_truth if merged else r.phase for r in runs]
    return match_labels([labels.get(r.uid) for r in runs], truth).accuracy


@dataclass(frozen=True)
class Checkpoint:
    n: int
    xray: float
    xray_merged: float
    neutron: float
    combined: float
    combined_merged: float
    renames: int
    n_labels: int
    #: sites measured by both probes, and those where both gave one label
    sites_both: int
    sites_agree: int
    seconds_per_call: float
    confusion: str


def _confusion(runs: Sequence[Run], labels: Mapping[str, str]) -> str:
    table = Counter((r.probe, r.phase, labels.get(r.uid)) for r in runs)
    rows = []
    for probe in ("xray", "neutron"):
        for truth in sorted({t for p, t, _ in table if p == probe}):
            got = sorted(
                ((lab, c) for (p, t, lab), c in table.items() if p == probe and t == truth),
                key=lambda x: -x[1],
            )
            rows.append(f"    {probe:7s} {truth:20s} " + ", ".join(f"{lab}: {c}" for lab, c in got))
    return "\n".join(rows)


def run_campaign(runs: Sequence[Run], checkpoints: Sequence[int]) -> list[Checkpoint]:
    items: list[LabelInput] = []
    previous: dict[str, str] = {}
    renames = 0
    calls: list[float] = []
    out: list[Checkpoint] = []
    for i, run in enumerate(runs[: max(checkpoints)], start=1):
        items.append(LabelInput(run.uid, run.probe, run.composition, run.curve))
        t0 = time.perf_counter()
        result = assign_labels(items)
        calls.append(time.perf_counter() - t0)
        renames += sum(1 for uid, label in previous.items() if result.labels[uid] != label)
        previous = dict(result.labels)
        if i in checkpoints:
            done = runs[:i]
            out.append(
                Checkpoint(
                    n=i,
                    xray=accuracy([r for r in done if r.probe == "xray"], previous),
                    xray_merged=accuracy([r for r in done if r.probe == "xray"], previous, merged=True),
                    neutron=accuracy([r for r in done if r.probe == "neutron"], previous),
                    combined=accuracy(done, previous),
                    combined_merged=accuracy(done, previous, merged=True),
                    renames=renames,
                    n_labels=len(set(previous.values())),
                    sites_both=result.sites_both_probes,
                    sites_agree=result.agreement,
                    seconds_per_call=calls[-1],
                    confusion=_confusion(done, previous),
                )
            )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[20, 40, 60, 120, 240])
    parser.add_argument("--cache", type=Path, default=None, help="keep the twin's curves here between runs")
    parser.add_argument("--confusion", action="store_true", help="print which label each true phase got")
    args = parser.parse_args(argv)
    checkpoints = sorted(c for c in args.checkpoints if c <= args.samples)
    runs = make_runs(args.samples, args.seed, args.cache)
    counts = Counter((r.probe, r.phase) for r in runs)
    print("runs by probe and phase:", ", ".join(f"{p}/{t}: {c}" for (p, t), c in sorted(counts.items())))
    print(
        f"{'runs':>5} {'xray':>6} {'(merged)':>9} {'neutron':>8} {'combined':>9} {'(merged)':>9} "
        f"{'renames':>8} {'labels':>7} {'s/call':>7} {'sites: same label / both probes':>32}"
    )
    for cp in run_campaign(runs, checkpoints):
        print(
            f"{cp.n:5d} {cp.xray:6.1%} {cp.xray_merged:9.1%} {cp.neutron:8.1%} {cp.combined:9.1%} "
            f"{cp.combined_merged:9.1%} {cp.renames:8d} {cp.n_labels:7d} {cp.seconds_per_call:7.3f} "
            f"{cp.sites_agree:>26d} / {cp.sites_both}"
        )
        if args.confusion:
            print(cp.confusion)


if __name__ == "__main__":
    main()
