"""A campaign run as a facility runs it: every part its own process on a host of its own, meeting in Tiled.

Real processes: a Tiled server, two stations each with its Redis and RE Manager (SAXS and SANS
on the twin, each building its station from profiles/queueserver/startup.py), the analysis
worker (`tandem analyze --follow`) and the agent daemon (`tandem agent run`). Each part runs
as on a host of its own (`hosts_apart`): its own folder as home, temporary and data folder and
working directory, its own copy of the campaign file, nothing shared with the others but
loopback addresses; a watch of every process's open files checks that none strays into another
host's folder. The daemon is killed with SIGKILL half-way and started again; the campaign must
finish with every sample measured once: none repeated, none lost, and every run tied to a
decision the agent recorded. The stock `qserver` client inspects a station while the daemon
works, and `tandem campaign report` rebuilds the campaign's report over the network afterwards.
It runs twice: on Tiled's embedded SQLite catalog and on PostgreSQL (a throwaway cluster on
loopback). `make e2e` runs this test alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from campaign_processes import stop
from hosts_apart import FileWatch, Host

from tandem.agents.journal import EntryStatus, Journal
from tandem.agents.records import read_records
from tandem.analysis.store import AnalysisStore
from tandem.campaign.processes import start_station, stop_station
from tandem.campaign.station_state import StationProcess, read_state
from tandem.catalog import Catalog
from tandem.postgres_cluster import ThrowawayPostgres
from tandem.run_documents import ExitStatus
from tandem.tiled_directory import SqlDatabases
from tandem.tiled_endpoint import TiledEndpoint
from tandem.tiled_server import EmbeddedTiledServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PER_STATION = 10
STATIONS = ("saxs", "sans")
BIN = Path(sys.executable).parent


def _campaign_file(host: Host, campaign_id: str) -> Path:
    """The host's copy of the demo campaign with a quick agent and 2 × 10 samples (time scale 0: no
    simulated waiting)."""

    def quick(data: dict[str, object]) -> None:
        data["id"] = campaign_id
        data["agent"] = {"kind": "space_filling", "seed": 3}
        data["stop"] = {"max_samples": 2 * PER_STATION}
        data["twin"]["time_scale"] = 0  # type: ignore[index]

    return host.demo_campaign(quick)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """Tiled, Redis and both stations' RE Managers, started in parallel; all stopped afterwards.

    Once with Tiled's embedded default (SQLite and DuckDB files) and once with its catalog and
    tables in PostgreSQL (a throwaway cluster on loopback), as a shared store at scale has them.
    """
    root = tmp_path_factory.mktemp(f"queue-e2e-{request.param}")
    with contextlib.ExitStack() as stack:
        databases = None
        if request.param == "postgresql":
            cluster = stack.enter_context(ThrowawayPostgres(databases=("catalog", "tables")))
            databases = SqlDatabases(cluster.uri("catalog"), cluster.uri("tables"))
        yield from _lab(root, databases)


def _lab(root: Path, databases: SqlDatabases | None) -> Iterator[dict[str, object]]:
    campaign_id = f"e2e-{os.getpid()}"
    hosts = {name: Host.make(root, name) for name in ("store", *STATIONS, "analysis", "agent", "scientist")}
    watch = FileWatch(root)
    server = EmbeddedTiledServer(hosts["store"].folder / "tiled", die_with_parent=True, databases=databases)
    endpoint = server.start()
    watch.watch(hosts["store"], lambda: [] if server.pid is None else [server.pid])
    started: dict[str, StationProcess] = {}
    errors: list[BaseException] = []

    def start(sid: str) -> None:
        host = hosts[sid]
        try:
            # each station host starts its own Redis beside its RE Manager, in its own state folder
            started[sid] = start_station(
                sid,
                state_dir=host.folder / "state",
                sim=True,
                campaign=_campaign_file(host, campaign_id),
                env={**endpoint.environ(), **host.environ()},
                timeout_s=240,
            )
            watch.watch(host, lambda: _station_pids(host, sid))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(sid,)) for sid in STATIONS]
    try:
        with watch.running():
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            yield {
                "endpoint": endpoint,
                "campaign_id": campaign_id,
                "stations": started,
                "hosts": hosts,
                "watch": watch,
            }
    finally:
        for sid in STATIONS:
            with contextlib.suppress(Exception):
                stop_station(sid, state_dir=hosts[sid].folder / "state")
        server.stop()


def _station_pids(host: Host, station: str) -> list[int]:
    """The station host's RE Manager and Redis (started apart, neither a child of the other)."""
    state = read_state(host.folder / "state")
    process = state.stations.get(station)
    return [p for p in (process and process.pid, state.redis and state.redis.pid) if p]


def _daemon_file(host: Host, campaign: Path, stations: dict[str, StationProcess]) -> Path:
    path = host.folder / "daemon.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "campaign": str(campaign),
                "stations": {
                    sid: {"control_addr": p.control_addr, "info_addr": p.info_addr}
                    for sid, p in stations.items()
                },
                "queue_depth": 2,
                "poll_interval_s": 0.2,
                "max_samples_per_station": PER_STATION,
            }
        )
    )
    return path


def _spawn(host: Host, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`argv` as a process of `host`: in its folder, with its environment, logging to `log` there."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            env={**os.environ, **env, **host.environ()},
            cwd=host.folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(predicate: object, timeout_s: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-30:]) for p in logs)
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.5)


def test_campaign_across_queue_servers_survives_a_killed_daemon(lab: dict[str, object]) -> None:
    endpoint = lab["endpoint"]
    assert isinstance(endpoint, TiledEndpoint)
    env = endpoint.environ()  # what every host is told: the store's address and key
    hosts: dict[str, Host] = lab["hosts"]  # type: ignore[assignment]
    watch: FileWatch = lab["watch"]  # type: ignore[assignment]
    stations: dict[str, StationProcess] = lab["stations"]  # type: ignore[assignment]
    campaign_id: str = lab["campaign_id"]  # type: ignore[assignment]
    agent, worker = hosts["agent"], hosts["analysis"]
    config = _daemon_file(agent, _campaign_file(agent, campaign_id), stations)
    client = endpoint.connect()
    logs = [worker.folder / "analysis.log", agent.folder / "daemon-1.log", agent.folder / "daemon-2.log"]
    analysis = _spawn(
        worker,
        [str(BIN / "tandem"), "analyze", "--sim", "--follow", "--no-fit", "--poll", "0.2"],
        env,
        logs[0],
    )
    watch.watch(worker, lambda: [analysis.pid])
    daemon = _spawn(agent, [str(BIN / "tandem"), "agent", "run", str(config)], env, logs[1])
    watch.watch(agent, lambda: [daemon.pid])
    try:

        def measured() -> int:
            journal = Journal.find(client, campaign_id)
            return 0 if journal is None else sum(e.status is EntryStatus.MEASURED for e in journal.entries())

        _wait(lambda: measured() >= PER_STATION // 2, 400, "the first samples", logs)

        # the stock client sees the station's queue and history while the daemon works
        control = stations["saxs"].control_addr
        for command in (["status"], ["queue", "get"], ["history", "get"]):
            done = subprocess.run(
                [str(BIN / "qserver"), "-a", control, *command],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        assert "sample_plan" in done.stdout  # the history lists the sample plans run so far

        daemon.kill()  # SIGKILL: no chance to tidy up
        daemon.wait()
        assert measured() < 2 * PER_STATION, "the campaign ended before the daemon could be killed mid-way"

        daemon = _spawn(agent, [str(BIN / "tandem"), "agent", "run", str(config)], env, logs[2])
        assert daemon.wait(timeout=600) == 0, logs[2].read_text()[-3000:]
        assert "finished" in logs[2].read_text()
    except BaseException:
        stop(analysis)
        raise
    finally:
        stop(daemon)

    journal = Journal.find(client, campaign_id)
    assert journal is not None
    entries = journal.entries()
    decisions = {r.decision_uid for r in read_records(journal.decisions)}
    by_station = Counter(e.station for e in entries if e.status is EntryStatus.MEASURED)
    assert by_station == {"saxs": PER_STATION, "sans": PER_STATION}, [(e.station, e.status) for e in entries]
    assert not [e for e in entries if e.status.open]

    runs = Catalog(client).runs(campaign_id=campaign_id, plan_name="sample_plan")
    succeeded = [r for r in runs if r.exit_status is ExitStatus.SUCCESS]
    # every run carries the decision uid of an agent decision recorded in Tiled
    assert runs
    assert all(r.decision_uid in decisions for r in runs)
    # no sample repeated: one successful run per sample and per decision
    assert len({r.sample_uid for r in succeeded}) == len(succeeded)
    assert len({r.decision_uid for r in succeeded}) == len(succeeded)
    # none lost: every measured decision has its run, under the sample uid the journal gave it
    measured_entries = {e.decision_uid: e for e in entries if e.status is EntryStatus.MEASURED}
    assert {r.decision_uid for r in succeeded} == set(measured_entries)
    for run in succeeded:
        entry = measured_entries[run.decision_uid]  # type: ignore[index]
        assert run.sample_uid == entry.sample_uid
        assert entry.attempts[-1].run_uid == run.uid
    # and the analysis worker analysed every one of them as it landed (it runs on until stopped)
    wanted = {r.uid for r in succeeded}
    try:
        _wait(lambda: wanted <= AnalysisStore(client).done_uids(), 120, "the analysis of every run", logs[:1])
    finally:
        stop(analysis)

    # the daemon wrote every sample into the campaign ledger: `tandem campaign report` on a host of
    # its own rebuilds the campaign from the store over the network
    scientist = hosts["scientist"]
    report = scientist.folder / "report"
    done = subprocess.run(
        [str(BIN / "tandem"), "campaign", "report", campaign_id, "--out", str(report)],
        env={**os.environ, **env, **scientist.environ()},
        cwd=scientist.folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((report / "report.json").read_text())
    assert metrics["samples"] == 2 * PER_STATION
    assert metrics["failed"] == 0
    assert {sid: m["samples"] for sid, m in metrics["stations"].items()} == {
        "saxs": PER_STATION,
        "sans": PER_STATION,
    }
    assert metrics["station_hours"] > 0  # the runs' own start and stop times
    assert len((report / "phase_map.csv").read_text().splitlines()) > 1

    # every part kept to its own host's folder, and the watch saw each of them at work there
    assert watch.strays() == []
    assert all(watch.seen[name] for name in ("store", *STATIONS, "analysis", "agent")), {
        name: len(paths) for name, paths in watch.seen.items()
    }
