"""Phase mapping on every zoo system (issue 12): tandem vs NIST AFL-agent vs random, in one run.

    cd /tmp && SAS_DLL_PATH=/work/main/.venv/sasmodels-kernels /work/main/.venv/bin/python \\
        /work/main/bench/bench_phases.py [all|campaigns|linked|latency] [--systems ...] [--sources ...] \\
        [--methods ...] [--seeds 5] [--out results.json] [--plot accuracy.png]

(run it from outside the repository: python started in /work/main would import the `tandem/` folder
instead of the installed package.)

**campaigns** — per system x curve source x seed, each method maps the system's phases:

- the same 4 random seed points for every method of a seed (grid points of the system), then the
  method chooses the rest, up to 60 samples (80 for the ternary; `--max-samples` sets one count for
  all);
- curve sources: `twin` renders 2-D detector frames (sample + empty cell) at the station and reduces
  them as the pipeline does (`tandem.campaign.rig.twin_curve`, the instrument given the system's
  components; SANS 300 s or SAXS 10 s at the default configuration); `curves` is the independent
  1-D source (`tandem.sim.curve_source.simulate_curve`: another facility's q grid, its solvent left
  in, scale errors, no resolution);
- the probe is neutrons (SANS sees every boundary) unless `--probe xray`;
- methods: `tandem` (PhaseFinder on the curves + PhaseMappingAgent: each new run told under its
  phase name, earlier runs whose names changed re-told with `relabel`); `truth` (the same agent told
  the true phases: what phase finding costs); `afl` (NIST AFL-agent's find_boundaries prefab through
  `bench/peers/afl.py` on the same curves, choosing among the grid points not yet measured; skipped
  with a message if `bench/.venv-afl` is missing); `random` (uniform random compositions, labelled
  by tandem's phase finding, mapped by a PhaseMappingAgent told those labels);
- the map is scored every `--every` samples on the system's `grid()` against the truth phases as
  the probe can see them (`seen_as`), labels matched one-to-one (Hungarian,
  `tandem.campaign.metrics.match_labels`);
- reported: samples to 80 / 90 / 95 % (the first crossing that lasts, `first_reaching`), accuracy at
  the last sample, phases found against the truth's count, mean seconds per decision (data in ->
  next suggestion out: for tandem phase finding + relabel + tell + suggest; for AFL its pipeline
  alone, `pipeline_seconds`, without the extra map on the scoring grid), and failed samples (spent,
  no label): one the source could not make, or a run phase finding left out (a flat curve, ...),
  which reaches the agent as a failed observation with the reason, as in a campaign
  (`tandem.campaign.phases.CampaignPhases`); the reasons are counted in the progress lines and JSON.

**linked** — systems with a neutron-only boundary (`polymer_surfactant`, `default`): the
multi-probe agent choosing station and exposure, phase finding on both probes' curves (probes matched
through shared sites), against a SANS-only phase-mapping campaign (300 s exposures) with phase
finding on its curves. Reported: station hours (SANS and total) until the neutron map reaches 90 %
and stays there. Station time per sample from the instrument models (`bench_agents.station_cost`).
No seed points here: each agent starts with its own space-filling design.

**latency** — data in -> next suggestion out for tandem (finder.add of one new curve + relabel +
tell + suggest), median of `--repeats`, at each of `--sizes` runs already in (default 60 and
1,000), on the first of `--systems` and the first of `--sources`, neutrons.

Everything is seeded: the seed points, the curves' noise (per seed and sample index), the agents.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from tandem.agents.baselines import RandomAgent
from tandem.agents.multi_probe import MultiProbeAgent
from tandem.agents.phase_mapping import PhaseMappingAgent
from tandem.agents.protocol import Agent
from tandem.agents.region import FeasibleRegion
from tandem.analysis.curves import Curve
from tandem.analysis.phases import PhaseFinding
from tandem.analysis.store import AnalysisRecord
from tandem.campaign.metrics import first_reaching, match_labels
from tandem.campaign.phases import CampaignPhases
from tandem.errors import TandemError
from tandem.observations import AnalysisStatus, Observation
from tandem.sim.curve_source import simulate_curve
from tandem.sim.reduced_curve import twin_curve
from tandem.sim.zoo import ZOO, ZooSystem, zoo_system
from tandem.stations import SANS, SAXS, Probe
from tandem.suggestions import ScanParameters, Suggestion

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH / "peers"))
sys.path.insert(0, str(BENCH))
from afl import AFLPeer, AFLPeerError, AFLVenvMissingError  # noqa: E402
from bench_agents import SANS_ONLY_EXPOSURE_S, station_cost  # noqa: E402

METHODS = ("tandem", "truth", "afl", "random")
SOURCES = ("twin", "curves")
LINKED_SYSTEMS = ("polymer_surfactant", "default")
N_SEED_POINTS = 4
GOALS = (0.8, 0.9, 0.95)
#: exposure of a sample on each station when the method does not choose one (twin source)
EXPOSURE_S = {SAXS: 10.0, SANS: SANS_ONLY_EXPOSURE_S}
STATION_OF = {Probe.XRAY: SAXS, Probe.NEUTRON: SANS}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the system, its curves and its truth --------------------------------------------------------


@dataclass
class Setting:
    """One system x curve source x probe: what every campaign on it shares."""

    system: ZooSystem
    source: str
    probe: Probe
    max_samples: int
    every: int
    region: FeasibleRegion = field(init=False)
    grid: np.ndarray = field(init=False)
    truth: list[str] = field(init=False)
    failed_measurements: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.region = self.system.region()
        self.grid = self.system.grid()
        seen = self.system.seen_as(self.probe)
        self.truth = [seen[str(p)] for p in self.system.phases_of(self.grid)]

    @property
    def station(self) -> str:
        return STATION_OF[self.probe]

    @property
    def n_truth_phases(self) -> int:
        return len(set(self.truth))

    def seen_label(self, fractions: np.ndarray) -> str:
        return self.system.seen_as(self.probe)[str(self.system.phases_of(fractions[None])[0])]

    def composition(self, fractions: np.ndarray) -> dict[str, float]:
        """Solute mass fractions the zoo accepts: inside the bounds, under the sum cap."""
        lo = np.array([self.system.bounds[s][0] for s in self.system.solutes])
        hi = np.array([self.system.bounds[s][1] for s in self.system.solutes])
        x = np.clip(np.asarray(fractions, dtype=np.float64), lo, hi)
        cap = self.system.max_total
        if cap is not None and x.sum() > cap:
            x = x * (cap / x.sum())
        return dict(zip(self.system.solutes, map(float, x), strict=True))

    def measure(
        self,
        fractions: np.ndarray,
        seed: int,
        index: int,
        probe: Probe | None = None,
        exposure_s: float | None = None,
    ) -> Curve | None:
        """The curve of one sample from this setting's source; None if it could not be made."""
        probe = probe or self.probe
        station = STATION_OF[probe]
        composition = self.composition(fractions)
        try:
            if self.source == "twin":
                curve, _ = twin_curve(
                    station,
                    composition,
                    exposure_s or EXPOSURE_S[station],
                    seed=seed * 100_003 + index,
                    truth=self.system,
                    components=self.system.components,
                )
                return curve
            rng = np.random.default_rng([seed, index, 7])
            return simulate_curve(self.system, composition, probe, rng)
        except (TandemError, ValueError) as exc:
            self.failed_measurements += 1
            if self.failed_measurements == 1:  # the first says why; the count is in every result line
                log(
                    f"    a measurement failed ({self.system.name}, {self.source}, {probe.value}, "
                    f"{composition}): {type(exc).__name__}: {exc} (later failures only counted)"
                )
            return None


def seed_points(setting: Setting, seed: int) -> np.ndarray:
    """Indices into the grid of the seed's random start points (the same for every method)."""
    rng = np.random.default_rng([seed, 4242])
    return rng.choice(len(setting.grid), size=N_SEED_POINTS, replace=False)


def fractions_of(region: FeasibleRegion, s: Suggestion) -> np.ndarray:
    return region.vector({n: s.target.mass_fraction(n) for n in region.names})


def observation(
    uid: str,
    setting: Setting,
    fractions: np.ndarray,
    label: str | None,
    probe: Probe,
    *,
    exposure_s: float = 1.0,
) -> Observation:
    return Observation(
        sample_uid=uid,
        run_uid=uid,
        campaign_id="bench-phases",
        station=STATION_OF[probe],
        probe=probe,
        composition=setting.composition(fractions),
        status=AnalysisStatus.OK,
        exposure_s=exposure_s,
        label=label,
    )


# -- phase finding feeding an agent ---------------------------------------------------------------


class FindingFeed:
    """Phase finding in the loop through the campaign's own code path (`CampaignPhases.learn`).

    Each new curve joins phase finding; the new run is told under its phase name (a flat curve as
    `no-contrast`), or, left out (bad data, no curve at all), as a failed observation with the
    reason; earlier runs whose names changed are re-told (`relabel`) by `CampaignPhases`.
    """

    def __init__(self, agent: Agent) -> None:
        self.phases = CampaignPhases(agent, lambda _events, _state: None)
        self.agent = agent
        self.told: dict[str, str] = {}
        self.failures = 0
        #: why runs were left out, by reason (`flat`, `no_overlap`, ..., `no_curve`)
        self.left_out: dict[str, int] = {}

    def add(self, obs: Observation, curve: Curve | None) -> None:
        """`obs` (label unset) with its curve (None: the sample could not be measured)."""
        self.add_many([(obs, curve)])

    def add_many(self, items: Sequence[tuple[Observation, Curve | None]]) -> None:
        """Several results at once (as a resumed campaign gives them), in order."""
        pairs = []
        for given, curve in items:
            obs = given
            if curve is None:
                obs = replace(obs, status=AnalysisStatus.FAILED, failure_reason="could not be measured")
            record = AnalysisRecord(
                run_uid=obs.run_uid,
                status=obs.status,
                analysis_version="bench",
                parameters={},
                probe=obs.probe.value,
                composition=dict(obs.composition),
                curve=curve,
            )
            pairs.append((record, obs))
        told = self.phases.learn(pairs)
        self.agent.tell(told)
        excluded = self.phases.finding.excluded
        for (_record, obs), result in zip(pairs, told, strict=True):
            reason = "no_curve" if _record.curve is None else None
            if reason is None and obs.run_uid in excluded:
                reason = excluded[obs.run_uid][0].value
            if reason is not None:
                self.left_out[reason] = self.left_out.get(reason, 0) + 1
            if result.ok and result.label is not None:
                self.told[obs.run_uid] = result.label
            else:
                self.failures += 1
        for uid, name in self.phases.finding.labels.items():
            if uid in self.told:
                self.told[uid] = name

    @property
    def finding(self) -> PhaseFinding:
        return self.phases.finding

    @property
    def n_phases(self) -> int:
        return len(set(self.told.values()))


# -- one campaign --------------------------------------------------------------------------------


@dataclass
class CampaignResult:
    system: str
    source: str
    probe: str
    method: str
    seed: int
    samples: list[int]
    accuracy: list[float]
    phases_found: int
    truth_phases: int
    decision_s: list[float]
    failures: int
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def reach(self, goal: float) -> int | None:
        n = first_reaching(self.samples, self.accuracy, goal)
        return None if n is None else int(n)

    @property
    def final(self) -> float:
        return self.accuracy[-1] if self.accuracy else float("nan")

    @property
    def mean_decision_s(self) -> float:
        return float(np.mean(self.decision_s)) if self.decision_s else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "extra"},
            "samples_to": {f"{g:.0%}": self.reach(g) for g in GOALS},
            "final_accuracy": self.final,
            "mean_decision_s": self.mean_decision_s,
            **self.extra,
        }


def score(setting: Setting, predicted: Sequence[str | None]) -> float:
    return match_labels(list(predicted), setting.truth).accuracy


def agent_campaign(setting: Setting, method: str, seed: int) -> CampaignResult:
    """`tandem`, `truth` or `random`: an agent of ours chooses (or random does), our map is scored."""
    started = time.perf_counter()
    region, probe, station = setting.region, setting.probe, setting.station
    mapper = PhaseMappingAgent(region, seed=seed, stations={station: probe})
    chooser: RandomAgent | PhaseMappingAgent = (
        RandomAgent(region, seed=seed, stations={station: probe}) if method == "random" else mapper
    )
    feed = FindingFeed(mapper) if method != "truth" else None
    starts = setting.grid[seed_points(setting, seed)]
    samples, accs, decisions = [], [], []
    fractions = starts[0]
    for i in range(setting.max_samples):
        n = i + 1
        uid = f"{method}-{seed}-{i}"
        curve = setting.measure(fractions, seed, i) if feed is not None else None
        t0 = time.perf_counter()
        if feed is not None:
            feed.add(observation(uid, setting, fractions, None, probe), curve)
        else:
            mapper.tell([observation(uid, setting, fractions, setting.seen_label(fractions), probe)])
        if n < setting.max_samples:
            if n < N_SEED_POINTS:
                fractions = starts[n]
            else:
                (s,) = chooser.suggest(station, 1)
                fractions = fractions_of(region, s)
                decisions.append(time.perf_counter() - t0)
        if n % setting.every == 0 or n == setting.max_samples:
            samples.append(n)
            accs.append(score(setting, mapper.predict(setting.grid).most_likely()))
    return CampaignResult(
        setting.system.name,
        setting.source,
        probe.value,
        method,
        seed,
        samples,
        accs,
        feed.n_phases if feed is not None else len(set(mapper.labels)),
        setting.n_truth_phases,
        decisions,
        feed.failures if feed is not None else 0,
        time.perf_counter() - started,
        extra={"left_out": dict(feed.left_out)} if feed is not None else {},
    )


def afl_campaign(setting: Setting, seed: int, peer: AFLPeer) -> CampaignResult:
    """AFL-agent's find_boundaries on the same curves: same seed points, then its own choices."""
    started = time.perf_counter()
    starts = list(seed_points(setting, seed))
    comps: list[np.ndarray] = []
    curves: list[tuple[np.ndarray, np.ndarray]] = []
    samples, accs, decisions, pipeline = [], [], [], []
    failures, n_phases = 0, 0
    index = starts[0]
    measured: list[int] = []
    cand_idx: list[int] = []
    reply: dict[str, Any] = {}
    for i in range(setting.max_samples):
        n = i + 1
        measured.append(int(index))
        curve = setting.measure(setting.grid[index], seed, i)
        if curve is None:
            failures += 1
        else:
            comps.append(setting.grid[index])
            curves.append((curve.q_inv_a, curve.intensity_per_cm))
        scoring = n % setting.every == 0 or n == setting.max_samples
        choosing = n < setting.max_samples and n >= N_SEED_POINTS
        if choosing or scoring:
            taken = set(measured)
            cand_idx = [j for j in range(len(setting.grid)) if j not in taken]
            candidates = setting.grid[cand_idx]
            t0 = time.perf_counter()
            reply = peer.step(
                comps,
                curves,
                list(setting.system.solutes),
                setting.grid if scoring else candidates,
                candidates,
                seed=seed * 10_007 + n,
            )
            if choosing:
                decisions.append(time.perf_counter() - t0)
                pipeline.append(float(reply.get("pipeline_seconds") or reply["seconds"]))
            n_phases = int(reply["n_phases"])
            if scoring:
                samples.append(n)
                accs.append(score(setting, [str(x) for x in reply["grid_labels"]]))
        if n < setting.max_samples:
            index = starts[n] if n < N_SEED_POINTS else cand_idx[int(reply["next_index"])]
    return CampaignResult(
        setting.system.name,
        setting.source,
        setting.probe.value,
        "afl",
        seed,
        samples,
        accs,
        n_phases,
        setting.n_truth_phases,
        pipeline,
        failures,
        time.perf_counter() - started,
        extra={"round_trip_s": decisions},
    )


# -- campaigns: the table and the plot -------------------------------------------------------------


def _fmt_n(values: Sequence[int | None], cap: int) -> str:
    per = "/".join("–" if v is None else str(v) for v in values)
    if not values:
        return "–"
    med = statistics.median([v if v is not None else cap + 1 for v in values])
    med_s = f">{cap}" if med > cap else f"{med:g}"
    return f"{med_s} ({per})" if len(values) > 1 else med_s


def summary(results: Sequence[CampaignResult], methods: Sequence[str]) -> None:
    keys = sorted({(r.system, r.source) for r in results}, key=lambda k: (list(ZOO).index(k[0]), k[1]))
    for system, source in keys:
        rows = [r for r in results if (r.system, r.source) == (system, source)]
        cap = max(r.samples[-1] for r in rows)
        print(f"\n### {system}, source {source}, {rows[0].probe} ({len({r.seed for r in rows})} seed(s))")
        print(
            f"| method | to 80 % | to 90 % | to 95 % | accuracy at {cap} | phases found / truth "
            "| s per decision | failed |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for method in methods:
            mine = sorted((r for r in rows if r.method == method), key=lambda r: r.seed)
            if not mine:
                continue
            reach = [_fmt_n([r.reach(g) for r in mine], cap) for g in GOALS]
            finals = [r.final for r in mine]
            acc = f"{statistics.median(finals):.3f}" + (
                f" ({'/'.join(f'{a:.2f}' for a in finals)})" if len(mine) > 1 else ""
            )
            found = [r.phases_found for r in mine]
            ph = f"{statistics.median(found):g}" + (
                f" ({'/'.join(map(str, found))})" if len(mine) > 1 else ""
            )
            dec = statistics.median([r.mean_decision_s for r in mine])
            fails = sum(r.failures for r in mine)
            print(
                f"| {method} | {' | '.join(reach)} | {acc} | {ph} / {mine[0].truth_phases} "
                f"| {dec:.3f} | {fails} |"
            )


COLOURS = {"tandem": "tab:blue", "truth": "tab:green", "afl": "tab:red", "random": "tab:gray"}
STYLES = {"twin": "-", "curves": "--"}


def plot(results: Sequence[CampaignResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = [s for s in ZOO if any(r.system == s for r in results)]
    cols = min(len(systems), 4)
    rows = (len(systems) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False, sharey=True)
    for ax, system in zip(axes.flat, systems, strict=False):
        lines = {(r.method, r.source) for r in results if r.system == system}
        truth_drawn = False
        for method, source in sorted(lines, key=lambda ms: (METHODS.index(ms[0]), -SOURCES.index(ms[1]))):
            if method == "truth":  # no curve is used: the same on every source, drawn once
                if truth_drawn:
                    continue
                truth_drawn = True
            mine = [r for r in results if (r.system, r.method, r.source) == (system, method, source)]
            xs = mine[0].samples
            ys = np.median(np.array([r.accuracy for r in mine if r.samples == xs]), axis=0)
            label = "truth (told the true phases)" if method == "truth" else f"{method} ({source})"
            ax.plot(
                xs,
                ys,
                STYLES.get(source, "-") if method != "truth" else "-",
                color=COLOURS.get(method),
                label=label,
            )
        ax.set_title(f"{system} ({mine[0].probe})")
        ax.set_xlabel("samples")
        ax.axhline(0.9, color="k", lw=0.5, ls=":")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("map accuracy (median over seeds)")
    for ax in list(axes.flat)[len(systems) :]:
        ax.axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.1 if rows == 1 else 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log(f"plot written: {path}")


def _start_afl() -> AFLPeer | None:
    """The AFL-agent peer, running; None (and why, on stderr) when its venv is missing."""
    peer = AFLPeer()
    try:
        peer.start()
    except AFLVenvMissingError as exc:
        log(f"skipping the afl method: {exc}")
        return None
    log(f"AFL peer up: afl-agent {peer.info.get('afl_agent')}, prefab {peer.info.get('prefab')}")
    return peer


def _why(r: CampaignResult) -> str:
    left_out: dict[str, int] = r.extra.get("left_out") or {}
    return f" ({', '.join(f'{k} {v}' for k, v in sorted(left_out.items()))})" if left_out else ""


def _one_campaign(
    setting: Setting,
    method: str,
    seed: int,
    peer: AFLPeer | None,
    truth_runs: dict[tuple[str, int], CampaignResult],
) -> CampaignResult | None:
    name, source = setting.system.name, setting.source
    if method == "afl":
        assert peer is not None
        try:
            return afl_campaign(setting, seed, peer)
        except AFLPeerError as exc:
            log(f"  afl failed on {name}/{source}/seed {seed}: {exc}")
            return None
    if method == "truth" and (name, seed) in truth_runs:
        # told the true phases, no curve is used: the same run on every source
        return replace(truth_runs[name, seed], source=source, wall_s=0.0)
    result = agent_campaign(setting, method, seed)
    if method == "truth":
        truth_runs[name, seed] = result
    return result


def campaigns(args: argparse.Namespace, out: dict[str, Any]) -> list[CampaignResult]:
    methods = list(args.methods)
    peer = _start_afl() if "afl" in methods else None
    if peer is None and "afl" in methods:
        methods.remove("afl")
    probe = Probe(args.probe)
    results: list[CampaignResult] = []
    truth_runs: dict[tuple[str, int], CampaignResult] = {}
    try:
        for name in args.systems:
            system = zoo_system(name)
            max_samples = args.max_samples or (80 if system.ternary else 60)
            for source in args.sources:
                setting = Setting(system, source, probe, max_samples, args.every)
                for seed in range(args.seed0, args.seed0 + args.seeds):
                    for method in methods:
                        r = _one_campaign(setting, method, seed, peer, truth_runs)
                        if r is None:
                            continue
                        results.append(r)
                        reach = " ".join(
                            f"{g:.0%}:{'–' if r.reach(g) is None else r.reach(g)}" for g in GOALS
                        )
                        log(
                            f"{name:>18} {source:>6} seed {seed} {method:>6}: acc@{r.samples[-1]} "
                            f"{r.final:.3f}  to {reach}  phases {r.phases_found}/{r.truth_phases}  "
                            f"{r.mean_decision_s:.3f} s/decision  failed {r.failures}{_why(r)}  "
                            f"({r.wall_s:.0f} s)"
                        )
                        out["campaigns"].append(r.to_dict())
                        if args.out:
                            write(args.out, out)
    finally:
        if peer is not None:
            peer.close()
    summary(results, methods)
    if args.plot and results:
        plot(results, args.plot)
    return results


# -- linked ---------------------------------------------------------------------------------------


def linked(args: argparse.Namespace, out: dict[str, Any]) -> None:
    systems = [s for s in args.systems if s in LINKED_SYSTEMS] or list(LINKED_SYSTEMS)
    goal = 0.9
    print(f"\n### Linked SAXS+SANS vs SANS only: station time until the neutron map reaches {goal:.0%}")
    print("| system | source | seed | linked: SANS h / total h (samples, on SANS) | SANS only: h (samples) |")
    print("|---|---|---|---|---|")
    costs = [station_cost(SAXS), station_cost(SANS)]
    sans_cost = station_cost(SANS).cost_s(SANS_ONLY_EXPOSURE_S)
    for name in systems:
        system = zoo_system(name)
        for source in args.sources:
            setting = Setting(system, source, Probe.NEUTRON, args.linked_max_samples, args.every)
            for seed in range(args.seed0, args.seed0 + args.seeds):
                t0 = time.perf_counter()
                agent = MultiProbeAgent(setting.region, costs, seed=seed)
                feed = FindingFeed(agent)
                spent = {SAXS: 0.0, SANS: 0.0}
                spend_at: list[dict[str, float]] = []
                stations_used: list[str] = []
                xs, accs = [], []
                for i in range(args.linked_max_samples):
                    (s,) = agent.suggest(None)
                    fractions = fractions_of(setting.region, s)
                    probe = agent.stations[s.station]
                    spent[s.station] += agent.costs[s.station].cost_s(s.scan.exposure_s)
                    stations_used.append(s.station)
                    curve = setting.measure(fractions, seed, i, probe=probe, exposure_s=s.scan.exposure_s)
                    feed.add(
                        observation(
                            f"linked-{seed}-{i}",
                            setting,
                            fractions,
                            None,
                            probe,
                            exposure_s=s.scan.exposure_s,
                        ),
                        curve,
                    )
                    spend_at.append(dict(spent))
                    if (i + 1) % args.every == 0:
                        xs.append(i + 1)
                        accs.append(score(setting, agent.predict(setting.grid, Probe.NEUTRON).most_likely()))
                n_link = first_reaching(xs, accs, goal)
                n_sans_linked = stations_used.count(SANS)
                lk = spend_at[int(n_link) - 1] if n_link is not None else None
                wall_linked = time.perf_counter() - t0
                # SANS only: the phase-mapping agent, phase finding on its curves
                t1 = time.perf_counter()
                sans_agent = PhaseMappingAgent(
                    setting.region,
                    seed=seed,
                    stations={SANS: Probe.NEUTRON},
                    scans={SANS: ScanParameters(SANS_ONLY_EXPOSURE_S)},
                )
                sfeed = FindingFeed(sans_agent)
                sxs, saccs = [], []
                for i in range(args.linked_max_samples):
                    (s,) = sans_agent.suggest(SANS)
                    fractions = fractions_of(setting.region, s)
                    curve = setting.measure(fractions, seed, 50_000 + i, probe=Probe.NEUTRON)
                    sfeed.add(observation(f"sans-{seed}-{i}", setting, fractions, None, Probe.NEUTRON), curve)
                    if (i + 1) % args.every == 0:
                        sxs.append(i + 1)
                        saccs.append(score(setting, sans_agent.predict(setting.grid).most_likely()))
                n_sans = first_reaching(sxs, saccs, goal)
                if lk is not None and n_link is not None:
                    on_sans = stations_used[: int(n_link)].count(SANS)
                    linked_s = (
                        f"{lk[SANS] / 3600:.2f} / {(lk[SANS] + lk[SAXS]) / 3600:.2f} "
                        f"({n_link:g}, {on_sans} on SANS)"
                    )
                else:
                    linked_s = (
                        f"not reached in {args.linked_max_samples} ({n_sans_linked} on SANS; "
                        f"acc {accs[-1]:.2f})"
                    )
                sans_s = (
                    f"{n_sans * sans_cost / 3600:.2f} ({n_sans:g})"
                    if n_sans is not None
                    else f"not reached in {args.linked_max_samples} (acc {saccs[-1]:.2f})"
                )
                print(f"| {name} | {source} | {seed} | {linked_s} | {sans_s} |", flush=True)
                log(
                    f"linked {name}/{source}/seed {seed}: linked {wall_linked:.0f} s wall, phases "
                    f"{feed.n_phases}, failed {feed.failures} {feed.left_out or ''}; SANS-only "
                    f"{time.perf_counter() - t1:.0f} s wall, phases {sfeed.n_phases}, failed "
                    f"{sfeed.failures} {sfeed.left_out or ''}"
                )
                out["linked"].append(
                    {
                        "system": name,
                        "source": source,
                        "seed": seed,
                        "linked": {
                            "samples": xs,
                            "accuracy": accs,
                            "reached_at": n_link,
                            "station_s_at_reach": lk,
                            "n_sans": n_sans_linked,
                            "phases_found": feed.n_phases,
                            "failures": feed.failures,
                            "left_out": dict(feed.left_out),
                        },
                        "sans_only": {
                            "samples": sxs,
                            "accuracy": saccs,
                            "reached_at": n_sans,
                            "station_s_at_reach": None if n_sans is None else n_sans * sans_cost,
                            "phases_found": sfeed.n_phases,
                            "failures": sfeed.failures,
                            "left_out": dict(sfeed.left_out),
                        },
                    }
                )
                if args.out:
                    write(args.out, out)


# -- latency --------------------------------------------------------------------------------------


def latency(args: argparse.Namespace, out: dict[str, Any]) -> None:
    system = zoo_system(args.systems[0])
    source = args.sources[0]
    setting = Setting(system, source, Probe.NEUTRON, max(args.sizes) + args.repeats, args.every)
    print(
        f"\n### Latency: data in -> next suggestion out (finder.add of one curve + relabel + tell + "
        f"suggest), {system.name}, source {source}, neutrons, median of {args.repeats}"
    )
    print(
        "| runs in | median s | max s | of which finder.add s | finder + relabel + tell s "
        "| earlier runs renamed | refits | phases | build-up s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    region = setting.region
    for n in args.sizes:
        rng = np.random.default_rng([n, 99])
        pts = region.from_unit(rng.random((4 * (n + args.repeats), region.dim)))
        if system.max_total is not None:
            pts = pts[pts.sum(1) <= system.max_total]
        pts = pts[: n + args.repeats]
        t0 = time.perf_counter()
        curves = [setting.measure(p, 0, k) for k, p in enumerate(pts)]
        agent = PhaseMappingAgent(region, seed=0, stations={SANS: Probe.NEUTRON})
        feed = FindingFeed(agent)
        # the first n in one go, as a restarted campaign gives them
        feed.add_many(
            [(observation(f"r{k}", setting, pts[k], None, Probe.NEUTRON), curves[k]) for k in range(n)]
        )
        agent.suggest(SANS)
        build = time.perf_counter() - t0
        times, finder_s, feed_s, renamed, refits = [], [], [], 0, 0
        for k in range(n, n + args.repeats):
            before = dict(feed.told)
            t1 = time.perf_counter()
            feed.add(observation(f"r{k}", setting, pts[k], None, Probe.NEUTRON), curves[k])
            t2 = time.perf_counter()
            agent.suggest(SANS)
            times.append(time.perf_counter() - t1)
            feed_s.append(t2 - t1)
            finder_s.append(feed.finding.seconds if feed.finding else float("nan"))
            renamed += sum(1 for uid, name in before.items() if feed.told.get(uid) != name)
            refits += bool(agent.records[-1].model.get("refit"))
        print(
            f"| {n} | {statistics.median(times):.3f} | {max(times):.3f} | {statistics.median(finder_s):.3f} "
            f"| {statistics.median(feed_s):.3f} | {renamed} | {refits} | {feed.n_phases} | {build:.1f} |",
            flush=True,
        )
        out["latency"].append(
            {
                "system": system.name,
                "source": source,
                "runs": n,
                "seconds": times,
                "finder_seconds": finder_s,
                "finder_relabel_tell_seconds": feed_s,
                "runs_renamed": renamed,
                "refits": refits,
                "phases": feed.n_phases,
                "build_up_seconds": build,
            }
        )
        if args.out:
            write(args.out, out)


# -- main -----------------------------------------------------------------------------------------


def write(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return items

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    # a failed sample is told to the agents, which skip it with a warning each time: counted instead
    logging.getLogger("tandem.agents.hygiene").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", nargs="?", default="all", choices=["all", "campaigns", "linked", "latency"])
    parser.add_argument(
        "--systems",
        type=_csv(tuple(ZOO)),
        default=list(ZOO),
        help=f"comma-separated zoo systems (default all: {','.join(ZOO)}); linked uses those of "
        f"{','.join(LINKED_SYSTEMS)} among them, latency the first",
    )
    parser.add_argument(
        "--sources",
        type=_csv(SOURCES),
        default=list(SOURCES),
        help="comma-separated curve sources: twin (2-D frames reduced by our pipeline), curves (the "
        "independent 1-D source); default both",
    )
    parser.add_argument(
        "--methods",
        type=_csv(METHODS),
        default=list(METHODS),
        help=f"comma-separated methods for the campaigns (default all: {','.join(METHODS)})",
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per system and source (default 5)")
    parser.add_argument("--seed0", type=int, default=0, help="first seed (default 0)")
    parser.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="samples per campaign for every system (default 60, 80 for the ternary)",
    )
    parser.add_argument(
        "--every", type=int, default=5, help="score the map every this many samples (default 5)"
    )
    parser.add_argument(
        "--probe",
        choices=[p.value for p in Probe],
        default=Probe.NEUTRON.value,
        help="the probe of the campaigns (default neutron: SANS sees every boundary)",
    )
    parser.add_argument(
        "--linked-max-samples",
        type=int,
        default=150,
        help="samples per linked and SANS-only campaign (default 150)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[60, 1000],
        help="runs already in for the latency part (default 60 1000)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="decisions timed per size (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="write every raw accuracy curve here (JSON)")
    parser.add_argument(
        "--plot", type=Path, default=None, help="write the accuracy-vs-samples plot here (PNG)"
    )
    parser.add_argument(
        "--replot",
        type=Path,
        default=None,
        help="run nothing: print the campaign tables and make --plot from a results JSON of an earlier run",
    )
    args = parser.parse_args(argv)
    out: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "campaigns": [],
        "linked": [],
        "latency": [],
    }
    if args.replot:
        saved = json.loads(args.replot.read_text())["campaigns"]
        names = [f.name for f in fields(CampaignResult) if f.name != "extra"]
        results = [CampaignResult(**{k: c[k] for k in names}) for c in saved]
        summary(results, [m for m in METHODS if any(r.method == m for r in results)])
        if args.plot:
            plot(results, args.plot)
        return
    if args.part in ("all", "campaigns"):
        campaigns(args, out)
    if args.part in ("all", "linked"):
        linked(args, out)
    if args.part in ("all", "latency"):
        latency(args, out)
    if args.out:
        write(args.out, out)
        log(f"results written: {args.out}")


if __name__ == "__main__":
    main()
