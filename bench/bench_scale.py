"""Scale-out (issue 16): simulated stations and analysis workers against one Tiled, SQLite or PostgreSQL.

Each configuration starts a store (the embedded Tiled server on its SQLite catalog, or on a throwaway
PostgreSQL cluster), `--workers` analysis workers as separate processes (`tandem analyze --sim
--follow`, sharing the runs through their claims in Tiled), and `--stations` stations as threads,
each with a client of its own, writing the twin's raw runs back to back at time scale 0
(`tandem.sim.raw_run.write_twin_run`: frames, monitors, empty cell, the Bluesky Tiled writer). The
stations start once every worker follows (before 2026-12-04 19:00 they started with the workers, whose
start-up then fell on the first runs' latency). It waits until every run is analysed, then reports:

- samples per minute sustained (runs analysed / wall time from the first write to the last node);
- raw → analysed latency per run: from the end of the raw run's write until a reader polling every
  0.5 s sees its analysed node complete (before 2026-12-04 17:00, until the node's `analysed_at`,
  which is when its worker began it: `start_median_s` still gives that); median and 99th
  percentile, over the whole run and over its first and last tenth, so that a cost that grows with
  the campaign's length shows; and until the worker marked the node complete (`completed_at`,
  without the reader's half second between looks);
- CPU seconds and requests per sample in the first and the last tenth of the runs;
- runs lost (never analysed) and analysed twice (a run whose claim needed a second attempt, or two
  nodes);
- CPU seconds per sample of the Tiled server and of the workers (from /proc), and the station
  threads' write rate beside the workers' analysis rate: whichever is lower limits throughput;
- Tiled requests per sample (the server's own Prometheus counts, `/api/v1/metrics`), the three
  kinds of request most made and the three the server spent most time on.

Stations write back to back by default (the most a store takes); `--station-interval S` starts each
station's runs S seconds apart instead, as a station that measures does, for the latency at a
given load.

Usage:
    python bench/bench_scale.py [--stores sqlite,postgresql] [--stations 2,4,8] [--workers 1,2]
                                [--samples 200] [--station-interval 0] [--no-fit] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scale_costs import Costs, cpu_s, request_counts
from tiled.queries import Key

from tandem.analysis.claims import RunClaims
from tandem.analysis.store import AnalysisStore
from tandem.catalog_layout import analysed_node
from tandem.postgres_cluster import ThrowawayPostgres
from tandem.sim.raw_run import write_twin_run
from tandem.tiled_directory import SqlDatabases
from tandem.tiled_endpoint import TiledEndpoint
from tandem.tiled_server import EmbeddedTiledServer

TANDEM = str(Path(sys.executable).with_name("tandem"))


@dataclass(frozen=True)
class Result:
    store: str
    stations: int
    workers: int
    samples: int
    fits: bool
    wall_s: float
    samples_per_min: float
    written_per_min: float
    latency_median_s: float
    latency_p99_s: float
    start_median_s: float
    first_tenth_median_s: float
    last_tenth_median_s: float
    lost: int
    analysed_twice: int
    server_cpu_s_per_sample: float
    workers_cpu_s_per_sample: float
    station_interval_s: float = 0.0
    requests_per_sample: float = 0.0
    top_requests: str = ""
    top_request_s: str = ""
    #: raw → analysed until the worker marked the node complete (its `completed_at`), without the
    #: watcher's 0.5 s between looks: median and 99th percentile
    completed_median_s: float = math.nan
    completed_p99_s: float = math.nan
    #: the five longest latencies (s), each with the run's place in the order written (#1 the first)
    slowest: str = ""
    #: per sample in the first and the last tenth of the runs seen analysed: server CPU s, workers'
    #: CPU s, requests ("first / last"), so that a cost growing with the campaign shows
    server_cpu_first_last: str = ""
    workers_cpu_first_last: str = ""
    requests_first_last: str = ""


#: the watcher asks only for nodes analysed this recently (a complete node is seen within seconds of
#: its analysis beginning), so that its own reads do not grow with the campaign
WATCH_WINDOW_S = 120.0


def _watch(
    endpoint: TiledEndpoint, seen: dict[str, float], stop: threading.Event, mark: Callable[[int], None]
) -> None:
    """When each run's analysed node is first seen complete, as a reader polling every 0.5 s sees it;
    `mark` hears how many have been seen after each look."""
    node = analysed_node(endpoint.connect())
    while True:
        now = time.time()
        recent = node.search(Key("complete") == True).search(Key("analysed_at") >= now - WATCH_WINDOW_S)  # noqa: E712
        for uid in recent:
            seen.setdefault(uid, now)
        mark(len(seen))
        if stop.wait(0.5):
            return


@contextlib.contextmanager
def _store(kind: str, folder: Path) -> Iterator[tuple[EmbeddedTiledServer, TiledEndpoint]]:
    with contextlib.ExitStack() as stack:
        databases = None
        if kind == "postgresql":
            cluster = stack.enter_context(ThrowawayPostgres(databases=("catalog", "tables")))
            databases = SqlDatabases(cluster.uri("catalog"), cluster.uri("tables"))
        server = EmbeddedTiledServer(folder / "tiled", die_with_parent=True, databases=databases)
        endpoint = stack.enter_context(server)
        yield server, endpoint


def _workers(endpoint: TiledEndpoint, n: int, fit: bool, folder: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, **endpoint.environ()}
    extra = [] if fit else ["--no-fit"]
    processes = []
    for i in range(n):
        with open(folder / f"worker-{i}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [TANDEM, "analyze", "--sim", "--follow", "--poll", "0.2", *extra],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def _wait_ready(folder: Path, n: int, timeout_s: float = 120.0) -> None:
    """Until every worker has caught up and follows (as a worker started before its campaign would be):
    its start-up (imports, first look) is not latency of the runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all("backlog done" in (folder / f"worker-{i}.log").read_text() for i in range(n)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the analysis workers did not start in {timeout_s:.0f} s: see {folder}/worker-*.log")


def _write_runs(
    endpoint: TiledEndpoint,
    index: int,
    n_runs: int,
    campaign_id: str,
    written: dict[str, float],
    *,
    interval_s: float,
) -> None:
    client = endpoint.connect()
    rng = np.random.default_rng(index)
    station = ("saxs", "sans")[index % 2]
    start = time.monotonic() + interval_s * index / 8  # stations out of step, as they would be
    for i in range(n_runs):
        if interval_s > 0:
            time.sleep(max(0.0, start + i * interval_s - time.monotonic()))
        sds, ppg, nacl = rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.1), rng.uniform(0.0, 0.04)
        uid = write_twin_run(
            client,
            station,
            {"SDS": sds, "PPG": ppg, "NaCl": nacl},
            campaign_id=campaign_id,
            exposure_s=5.0 if station == "saxs" else 300.0,
            seed=index * 100_000 + i,
        )
        written[uid] = time.time()


def run_one(
    kind: str,
    *,
    stations: int,
    workers: int,
    samples: int,
    fit: bool,
    timeout_s: float,
    interval_s: float = 0.0,
) -> Result:
    campaign_id = f"scale-{kind}-{stations}x{workers}"
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        with _store(kind, folder) as (server, endpoint):
            assert server.pid is not None
            procs = _workers(endpoint, workers, fit, folder)
            try:
                _wait_ready(folder, workers)
                server_cpu0 = cpu_s(server.pid)
                requests0 = request_counts(endpoint)
                written: dict[str, float] = {}
                per_station = [
                    samples // stations + (1 if s < samples % stations else 0) for s in range(stations)
                ]
                seen: dict[str, float] = {}
                costs = Costs(server.pid, [p.pid for p in procs], endpoint, every=max(1, samples // 10))
                costs.mark(0)
                watching = threading.Event()
                watcher = threading.Thread(
                    target=_watch, args=(endpoint, seen, watching, costs.mark), daemon=True
                )
                watcher.start()
                t0 = time.time()
                # a station's failure is raised here, not left for the wait below to time out on
                with ThreadPoolExecutor(stations, thread_name_prefix="station") as pool:
                    futures = [
                        pool.submit(_write_runs, endpoint, s, n, campaign_id, written, interval_s=interval_s)
                        for s, n in enumerate(per_station)
                    ]
                    for future in futures:
                        future.result()
                t_written = time.time()
                store = AnalysisStore(endpoint.connect())
                deadline = time.monotonic() + timeout_s
                records: dict[str, Any] = {}
                while time.monotonic() < deadline and len(seen) < len(written):
                    print(f"  {len(seen)}/{len(written)} analysed", file=sys.stderr, end="\r")
                    time.sleep(2.0)
                records = {r.run_uid: r for r in store.records(campaign_id=campaign_id, with_curve=False)}
                watching.set()
                watcher.join(timeout=30)
                if costs.marks[-1][0] < len(seen):
                    costs.record(len(seen))
                t_end = max(seen.values(), default=time.time())
                server_cpu = cpu_s(server.pid) - server_cpu0
                requests1 = request_counts(endpoint)
                workers_cpu = sum(cpu_s(p.pid) for p in procs)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    try:
                        p.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            claims = RunClaims(endpoint.connect())
            twice = sum(1 for uid in records if (c := claims.latest(uid)) is not None and c.attempt > 0)
    order = sorted(written, key=written.get)  # type: ignore[arg-type]
    latency = [seen[u] - written[u] for u in order if u in seen]
    started = [records[u].analysed_at - written[u] for u in order if u in records]
    completed = [
        records[u].completed_at - written[u] for u in order if u in records and records[u].completed_at
    ]
    tenth = max(1, len(latency) // 10)
    n_done = len(records)
    made = {k: v - requests0.get(k, 0.0) for k, v in requests1.items()}
    count = {k.removeprefix("count "): v for k, v in made.items() if k.startswith("count ")}
    spent = {k.removeprefix("sum "): v for k, v in made.items() if k.startswith("sum ")}
    per = max(n_done, 1)
    top = sorted(count.items(), key=lambda kv: -kv[1])[:3]
    slowest = sorted(spent.items(), key=lambda kv: -kv[1])[:3]
    wall = t_end - t0
    first, last = costs.per_sample(0), costs.per_sample(-2)
    return Result(
        store=kind,
        stations=stations,
        workers=workers,
        samples=samples,
        fits=fit,
        wall_s=round(wall, 1),
        samples_per_min=round(60 * n_done / wall, 1),
        written_per_min=round(60 * len(written) / (t_written - t0), 1),
        latency_median_s=round(statistics.median(latency), 2),
        latency_p99_s=round(float(np.percentile(latency, 99)), 2),
        start_median_s=round(statistics.median(started), 2),
        completed_median_s=round(statistics.median(completed), 2),
        completed_p99_s=round(float(np.percentile(completed, 99)), 2),
        first_tenth_median_s=round(statistics.median(latency[:tenth]), 2),
        last_tenth_median_s=round(statistics.median(latency[-tenth:]), 2),
        lost=len(written) - n_done,
        analysed_twice=twice,
        server_cpu_s_per_sample=round(server_cpu / max(n_done, 1), 3),
        workers_cpu_s_per_sample=round(workers_cpu / max(n_done, 1), 3),
        station_interval_s=interval_s,
        requests_per_sample=round(sum(count.values()) / per, 1),
        top_requests="; ".join(f"{k} {v / per:.1f}" for k, v in top),
        top_request_s="; ".join(f"{k} {v / per:.2f} s" for k, v in slowest),
        slowest="; ".join(
            f"{latency[i]:.2f} s (#{i + 1})"
            for i in sorted(range(len(latency)), key=lambda i: -latency[i])[:5]
        ),
        server_cpu_first_last=f"{first[0]:.2f} / {last[0]:.2f}",
        workers_cpu_first_last=f"{first[1]:.2f} / {last[1]:.2f}",
        requests_first_last=f"{first[2]:.0f} / {last[2]:.0f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--stations", default="2,4")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--station-interval",
        type=float,
        default=0.0,
        help="seconds between a station's runs (0: back to back)",
    )
    parser.add_argument("--no-fit", action="store_true", help="workers skip the model fits")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the analysis")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for kind in args.stores.split(","):
        for stations in (int(s) for s in args.stations.split(",")):
            for workers in (int(w) for w in args.workers.split(",")):
                print(
                    f"{kind}: {stations} stations, {workers} worker(s), {args.samples} samples",
                    file=sys.stderr,
                )
                result = run_one(
                    kind,
                    stations=stations,
                    workers=workers,
                    samples=args.samples,
                    fit=not args.no_fit,
                    timeout_s=args.timeout,
                    interval_s=args.station_interval,
                )
                print(json.dumps(asdict(result)))
                results.append(result)
    header = (
        "| store | stations | workers | samples/min | written/min | latency median / p99 (s) | "
        "first / last tenth median (s) | lost | twice | server CPU s/sample | workers CPU s/sample | "
        "requests/sample |"
    )
    print("\n" + header + "\n|" + "---|" * 12)
    for r in results:
        print(
            f"| {r.store} | {r.stations} | {r.workers} | {r.samples_per_min} | {r.written_per_min} | "
            f"{r.latency_median_s} / {r.latency_p99_s} | "
            f"{r.first_tenth_median_s} / {r.last_tenth_median_s} | "
            f"{r.lost} | {r.analysed_twice} | {r.server_cpu_s_per_sample} | {r.workers_cpu_s_per_sample} | "
            f"{r.requests_per_sample} |"
        )
    for r in results:
        print(f"{r.store} {r.stations}x{r.workers}: per sample, most made: {r.top_requests}")
        print(f"{r.store} {r.stations}x{r.workers}: per sample, most server time: {r.top_request_s}")
        print(f"{r.store} {r.stations}x{r.workers}: slowest raw → analysed: {r.slowest}")
        print(
            f"{r.store} {r.stations}x{r.workers}: raw → analysed until the node was marked complete: "
            f"median {r.completed_median_s} s, p99 {r.completed_p99_s} s"
        )
        print(
            f"{r.store} {r.stations}x{r.workers}: per sample, first / last tenth: server CPU "
            f"{r.server_cpu_first_last} s, workers' CPU {r.workers_cpu_first_last} s, "
            f"requests {r.requests_first_last}"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
