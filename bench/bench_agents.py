"""Benchmarks of the agents (issue 5): decision latency, sample efficiency, beamtime.

    .venv/bin/python bench/bench_agents.py                 # everything (about half an hour on 2 cores)
    .venv/bin/python bench/bench_agents.py latency         # one part: latency | efficiency | beamtime
    .venv/bin/python bench/bench_agents.py efficiency --seeds 3 --max-samples 150
    .venv/bin/python bench/bench_agents.py bounded --seeds 2 --max-samples 600 --bound 100 --every 50

Ground truth: the twin's default system (`tandem.sim.systems`), labels taken
straight from it (X-rays cannot tell the two polymer phases apart; neutrons
can). Accuracy: the share of a 12 x 12 x 12 grid over the default bounds whose
most probable predicted label is the true phase. Station time per sample comes
from the instrument models of `tandem.sim.instruments`.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from tandem.agents.base import AgentBase
from tandem.agents.baselines import RandomAgent, SpaceFillingAgent
from tandem.agents.gp_hyperparameters import DTYPE
from tandem.agents.information_per_second import StationCost
from tandem.agents.multi_probe import MultiProbeAgent
from tandem.agents.phase_mapping import (
    PhaseMappingAgent,
    PhaseMappingSettings,
    class_probabilities,
    dirichlet_targets,
)
from tandem.agents.region import FeasibleRegion, region_from_bounds
from tandem.observations import AnalysisStatus, Observation
from tandem.sim.instruments import instrument_for
from tandem.sim.system_phases import (
    D2O,
    DEFAULT_BOUNDS,
    DEFAULT_COMPONENTS,
    H2O,
    NEUTRON_ONLY_BOUNDARY,
    SOLUTE_NAMES,
)
from tandem.sim.systems import phases_of
from tandem.stations import SANS, SAXS, Probe
from tandem.suggestions import ScanParameters, Suggestion

XRAY_BLIND = "polymer (x-ray blind)"
#: exposures each station may choose from, and the exposure at which counting noise equals label ambiguity
EXPOSURES_S = {SAXS: ((1.0, 5.0, 20.0), 2.0), SANS: ((120.0, 300.0, 900.0), 300.0)}
SANS_ONLY_EXPOSURE_S = 300.0
_uids = itertools.count()


def region() -> FeasibleRegion:
    return region_from_bounds(DEFAULT_COMPONENTS, DEFAULT_BOUNDS, H2O, solvents={SAXS: H2O, SANS: D2O})


def station_cost(station: str) -> StationCost:
    instrument = instrument_for(station)
    t = instrument.time_costs
    exposures, reference = EXPOSURES_S[station]
    return StationCost(
        station=station,
        probe=instrument.probe,
        overhead_s=t.sample_load_s + t.transmission_s + t.readout_s + 2 * t.shutter_s,
        exposures_s=exposures,
        reference_exposure_s=reference,
    )


def observe(fractions: np.ndarray, probe: Probe) -> Observation:
    phase = str(phases_of(np.asarray(fractions)[None])[0])
    if probe is Probe.XRAY and phase in NEUTRON_ONLY_BOUNDARY:
        phase = XRAY_BLIND
    return Observation(
        sample_uid=f"s{next(_uids)}",
        run_uid=str(uuid.uuid4()),
        campaign_id="bench",
        station=SAXS if probe is Probe.XRAY else SANS,
        probe=probe,
        composition=dict(zip(SOLUTE_NAMES, map(float, fractions), strict=True)),
        status=AnalysisStatus.OK,
        exposure_s=1.0,
        label=phase,
    )


def fractions_of(r: FeasibleRegion, s: Suggestion) -> np.ndarray:
    return r.vector({n: s.target.mass_fraction(n) for n in r.names})


def grid(r: FeasibleRegion, per_axis: int = 12) -> np.ndarray:
    axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(r.lower, r.upper, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, r.dim)


def accuracy(predicted: Sequence[str | None], points: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


# -- latency -----------------------------------------------------------------------------------


def latency(sizes: Sequence[int], repeats: int) -> None:
    print("\n## Decision latency: tell one result + suggest one sample (phase-mapping agent)")
    print(
        f"{'observations':>12} {'model rows':>10} {'median s':>9} {'max s':>7} {'refits':>6}"
        f" {'from scratch s':>15}"
    )
    r = region()
    rng = np.random.default_rng(0)
    for n in sizes:
        pts = r.lower + rng.random((n + repeats, r.dim)) * (r.upper - r.lower)
        obs = [observe(p, Probe.NEUTRON) for p in pts]
        agent = PhaseMappingAgent(r, seed=0)
        agent.tell(obs[:n])
        agent.suggest(SANS)  # the first fit is the from-scratch cost, timed below
        times, refits = [], 0
        for k in range(repeats):
            t0 = time.perf_counter()
            agent.tell([obs[n + k]])
            agent.suggest(SANS)
            times.append(time.perf_counter() - t0)
            refits += bool(agent.records[-1].model.get("refit"))
        t0 = time.perf_counter()
        fresh = PhaseMappingAgent(r, seed=0)
        fresh.tell(obs[: n + repeats])
        fresh.suggest(SANS)
        scratch = time.perf_counter() - t0
        rows = agent.records[-1].model.get("n_train")
        print(
            f"{n:>12} {rows:>10} {statistics.median(times):>9.3f} {max(times):>7.3f} {refits:>6}"
            f" {scratch:>15.2f}"
        )


# -- sample efficiency --------------------------------------------------------------------------


def _campaign(
    agent: AgentBase, shadow: PhaseMappingAgent | None, max_samples: int, every: int, points: np.ndarray
) -> list[tuple[int, float]]:
    """Run `agent` on SANS labels; score the map every `every` samples (baselines through `shadow`)."""
    truth = phases_of(points)
    curve = []
    for i in range(1, max_samples + 1):
        (s,) = agent.suggest(SANS)
        o = observe(fractions_of(agent.region, s), Probe.NEUTRON)
        agent.tell([o])
        if shadow is not None:
            shadow.tell([o])
        if i % every == 0:
            model = shadow if shadow is not None else agent
            curve.append((i, accuracy(model.predict(points).most_likely(), points, truth)))
    return curve


def samples_to(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((n for n, acc in curve if acc >= target), None)


def efficiency(seeds: int, max_samples: int, every: int, target: float) -> None:
    print(f"\n## Sample efficiency: samples to {target:.0%} phase-map accuracy (SANS labels)")
    r = region()
    points = grid(r)
    strategies: dict[str, Callable[[int], tuple[AgentBase, PhaseMappingAgent | None]]] = {
        "phase_mapping (BALD)": lambda seed: (PhaseMappingAgent(r, seed=seed), None),
        "space_filling": lambda seed: (SpaceFillingAgent(r, seed=seed), PhaseMappingAgent(r, seed=seed)),
        "random": lambda seed: (RandomAgent(r, seed=seed), PhaseMappingAgent(r, seed=seed)),
    }
    results: dict[str, list[int | None]] = {}
    for name, make in strategies.items():
        results[name] = []
        for seed in range(seeds):
            agent, shadow = make(seed)
            t0 = time.perf_counter()
            curve = _campaign(agent, shadow, max_samples, every, points)
            n = samples_to(curve, target)
            results[name].append(n)
            final = curve[-1][1]
            print(
                f"{name:>22} seed {seed}: {n if n else f'>{max_samples}':>5} samples "
                f"(accuracy at {max_samples}: {final:.3f}; {time.perf_counter() - t0:.0f} s)"
            )
    print(f"\n{'strategy':>22} {'median samples':>15}   (censored at {max_samples})")
    medians = {}
    for name, ns in results.items():
        values = [n if n is not None else max_samples + every for n in ns]
        medians[name] = statistics.median(values)
        marker = "" if all(n is not None for n in ns) else " (some seeds never reached it)"
        print(f"{name:>22} {medians[name]:>15.0f}{marker}")
    base = medians["phase_mapping (BALD)"]
    for other in ("random", "space_filling"):
        print(f"  {other} / phase_mapping = {medians[other] / base:.2f}x (a lower bound if censored)")


# -- a bounded model: the rows summarised past a bound ---------------------------------------------


def bounded(seeds: int, max_samples: int, every: int, bound: int) -> None:
    """The same campaign with the model's rows bounded (summarised past `bound`) and unbounded: the map
    accuracy along it and the decision time at its end, to show what the summary costs the map."""
    print(f"\n## A bounded model: rows summarised past {bound} against every row kept (SANS labels)")
    r = region()
    points = grid(r)
    checkpoints = sorted({*range(every, max_samples + 1, every)} & {bound, 2 * bound, 4 * bound, max_samples})
    print(
        f"{'model':>10} {'seed':>4} "
        + " ".join(f"{'acc@' + str(n):>8}" for n in checkpoints)
        + "  last 10 decisions s"
    )
    for seed in range(seeds):
        for name, rows in (("bounded", bound), ("exact", 10**9)):
            settings = PhaseMappingSettings(refit=replace(PhaseMappingSettings().refit, max_model_rows=rows))
            agent = PhaseMappingAgent(r, seed=seed, settings=settings)
            scores, times = {}, []
            for i in range(1, max_samples + 1):
                t0 = time.perf_counter()
                (s,) = agent.suggest(SANS)
                times.append(time.perf_counter() - t0)
                agent.tell([observe(fractions_of(r, s), Probe.NEUTRON)])
                if i in checkpoints:
                    scores[i] = accuracy(agent.predict(points).most_likely(), points, phases_of(points))
            print(
                f"{name:>10} {seed:>4} "
                + " ".join(f"{scores[n]:>8.3f}" for n in checkpoints)
                + f"  {statistics.median(times[-10:]):.3f}"
            )


# -- the ceiling: an oracle that knows the truth --------------------------------------------------


def _oracle_campaign(
    seed: int, max_samples: int, every: int, n_candidates: int, points: np.ndarray
) -> list[tuple[int, float]]:
    """Greedy one-step oracle: of `n_candidates` random compositions, measure the one whose *true*
    label raises the agent's classifier's grid accuracy most (same model, same hyperparameter fits)."""
    r = region()
    truth = phases_of(points)
    agent = PhaseMappingAgent(r, seed=seed)
    rng = np.random.default_rng(seed)
    u_grid = torch.as_tensor(r.to_unit(points), dtype=DTYPE)
    curve = []
    for i in range(1, max_samples + 1):
        if not agent.ready:
            (s,) = agent.suggest(SANS)
            fractions = fractions_of(r, s)
        else:
            model = agent.gp.model()
            base = agent.base_samples()
            cands = r.from_unit(rng.random((n_candidates, r.dim)))
            labels = phases_of(cands)
            known = {lab: k for k, lab in enumerate(agent.labels)}
            best, best_acc = 0, -1.0
            with torch.no_grad():
                for k, (c, lab) in enumerate(zip(cands, labels, strict=True)):
                    if lab not in known:  # a phase the map has not seen yet: always worth finding
                        best = k
                        break
                    onehot = np.zeros((1, len(agent.labels)))
                    onehot[0, known[lab]] = 1.0
                    y, yvar = dirichlet_targets(onehot, agent.settings.alpha_epsilon)
                    x = torch.as_tensor(r.to_unit(c[None]), dtype=DTYPE)
                    probs = class_probabilities(*model.condition(x, y, yvar).mean_and_variance(u_grid), base)
                    acc = float(np.mean(np.asarray(agent.labels)[probs.argmax(-1).numpy()] == truth))
                    if acc > best_acc:
                        best, best_acc = k, acc
            fractions = cands[best]
        agent.tell([observe(fractions, Probe.NEUTRON)])
        if i % every == 0:
            curve.append((i, accuracy(agent.predict(points).most_likely(), points, truth)))
    return curve


def ceiling(seeds: int, max_samples: int, every: int, target: float, n_candidates: int) -> None:
    print(
        f"\n## Ceiling: samples to {target:.0%} for a greedy oracle that knows the truth "
        f"(best of {n_candidates} random candidates each step, the agent's own classifier)"
    )
    points = grid(region())
    for seed in range(seeds):
        t0 = time.perf_counter()
        curve = _oracle_campaign(seed, max_samples, every, n_candidates, points)
        n = samples_to(curve, target)
        print(
            f"oracle seed {seed}: {n if n else f'>{max_samples}':>5} samples "
            f"(accuracy at {max_samples}: {curve[-1][1]:.3f}; {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


# -- beamtime ----------------------------------------------------------------------------------


def beamtime(seeds: int, max_samples: int, every: int, target: float) -> None:
    print(
        f"\n## Station time to {target:.0%} accuracy of the neutron phase map: linked SAXS+SANS vs SANS only"
    )
    r = region()
    points = grid(r)
    truth = phases_of(points)
    costs = [station_cost(SAXS), station_cost(SANS)]
    sans_cost = station_cost(SANS).cost_s(SANS_ONLY_EXPOSURE_S)
    print(
        f"cost per sample: SAXS {costs[0].overhead_s:.0f} s + exposure, "
        f"SANS {costs[1].overhead_s:.0f} s + exposure (SANS-only campaign: "
        f"{SANS_ONLY_EXPOSURE_S:.0f} s exposures, {sans_cost:.0f} s per sample)"
    )
    linked_times, sans_times = [], []
    for seed in range(seeds):
        agent = MultiProbeAgent(r, costs, seed=seed)
        spent = {SAXS: 0.0, SANS: 0.0}
        reached = None
        t0 = time.perf_counter()
        for i in range(1, max_samples + 1):
            (s,) = agent.suggest(None)
            spent[s.station] += agent.costs[s.station].cost_s(s.scan.exposure_s)
            agent.tell([observe(fractions_of(r, s), agent.stations[s.station])])
            if i % every == 0:
                acc = accuracy(agent.predict(points).most_likely(), points, truth)
                if reached is None and acc >= target:
                    reached = (i, dict(spent), acc)
                    break
        n_sans = sum(1 for rec in agent.records if rec.station == SANS)
        if reached:
            i, sp, acc = reached
            total = sp[SAXS] + sp[SANS]
            linked_times.append(total)
            print(
                f"linked seed {seed}: {total / 3600:.2f} h station time ({sp[SAXS] / 3600:.2f} h SAXS, "
                f"{sp[SANS] / 3600:.2f} h SANS; {i} samples, {n_sans} on SANS; acc {acc:.3f}; "
                f"{time.perf_counter() - t0:.0f} s)"
            )
        else:
            linked_times.append(float("inf"))
            print(f"linked seed {seed}: not reached in {max_samples} samples ({n_sans} on SANS)")
        sans_agent = PhaseMappingAgent(r, seed=seed, scans={SANS: ScanParameters(SANS_ONLY_EXPOSURE_S)})
        curve = _campaign(sans_agent, None, max_samples, every, points)
        n = samples_to(curve, target)
        sans_times.append(n * sans_cost if n else float("inf"))
        print(
            f"SANS-only seed {seed}: "
            + (f"{n * sans_cost / 3600:.2f} h ({n} samples)" if n else "not reached")
        )
    lm, sm = statistics.median(linked_times), statistics.median(sans_times)
    print(
        f"\nmedian station time: linked {lm / 3600:.2f} h, SANS only {sm / 3600:.2f} h: {sm / lm:.2f}x less"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "part",
        nargs="?",
        default="all",
        choices=["all", "latency", "efficiency", "beamtime", "ceiling", "bounded"],
    )
    parser.add_argument(
        "--bound", type=int, default=100, help="the model's rows before summarising (bounded)"
    )
    parser.add_argument("--candidates", type=int, default=200, help="oracle candidates per step (ceiling)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-samples", type=int, default=150)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.part in ("all", "latency"):
        latency(args.sizes, args.repeats)
    if args.part in ("all", "efficiency"):
        efficiency(args.seeds, args.max_samples, args.every, args.target)
    if args.part in ("all", "beamtime"):
        beamtime(args.seeds, args.max_samples, args.every, args.target)
    if args.part == "bounded":
        bounded(args.seeds, args.max_samples, args.every, args.bound)
    if args.part == "ceiling":
        ceiling(args.seeds, args.max_samples, args.every, args.target, args.candidates)


if __name__ == "__main__":
    main()
