"""The daemon's circuit breaker: a station whose samples keep failing is set aside (issue 13 #5).

A station whose cell-loader IOC died answers its queue server but fails every sample. The daemon
sets it aside after `failures_to_trip` failures in a row, gives the other station the budget, and
after the pause sends one trial sample; every station set aside at once stops it. The queues are
the in-memory stand-ins of test_daemon.py; the journal and the heartbeat are in a real Tiled.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tiled.client.container import Container

from tandem.agents.daemon_settings import DaemonSettings
from tandem.agents.journal import EntryStatus
from tandem.agents.station_queue import PlanRequest
from tandem.breaker import BreakerSettings
from tandem.campaign.bundled import DEMO_FOLDER
from tandem.stations import SANS, SAXS
from tandem.tiled_endpoint import TiledEndpoint

from .test_daemon import Clock, FakeQueue, budget, make_daemon

pytestmark = pytest.mark.slow  # a real Tiled server holds the journal

DEAD_IOC = "CellLoaderTimeoutError: TANDEM:SANS:CL:Busy-RB did not connect"
PAUSE_S = 600.0


def dead(plan: PlanRequest) -> tuple[str, str]:
    return ("failed", DEAD_IOC)


def settings(depth: int = 2, trip: int = 3) -> DaemonSettings:
    return DaemonSettings(
        queue_depth=depth,
        poll_interval_s=0.01,
        breaker=BreakerSettings(failures_to_trip=trip, retry_after_s=PAUSE_S),
    )


def rounds(daemon: object, queues: dict[str, FakeQueue], clock: Clock, n: int) -> None:
    for _ in range(n):
        daemon.step()  # type: ignore[attr-defined]
        for queue in queues.values():
            queue.run_all()
        clock.now += 10


def test_a_failing_station_is_set_aside_the_other_gets_the_budget_and_one_trial_follows_the_pause(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS), SANS: FakeQueue(SANS, dead)}
    clock = Clock()
    daemon = make_daemon(
        tiled_client, unique_campaign_id, queues, settings=settings(), clock=clock, stop=[budget(30)]
    )
    daemon.recover()
    rounds(daemon, queues, clock, 8)
    # two rounds of two samples: the third failure in a row set SANS aside (the fourth was queued with it)
    assert len(queues[SANS].history) == 4
    assert len(queues[SAXS].history) == 16  # SAXS kept its queue full all along
    daemon.step()
    failing = daemon.status()["stations"][SANS]["failing"]
    assert daemon.status()["stations"][SANS]["set_aside"]
    assert failing["state"] == "open"
    assert failing["last_failure"] == DEAD_IOC
    assert failing["retry_at_s"] - failing["set_aside_at_s"] == PAUSE_S
    assert failing["since"] < failing["until"]  # ISO wall-clock times, for people
    assert daemon.status()["stations"][SAXS]["failing"] is None
    beat = daemon.journal.last_heartbeat()
    assert beat is not None
    assert beat["stations"][SANS]["failing"]["last_failure"] == DEAD_IOC  # recorded in Tiled

    # the pause passes: exactly one trial sample, though the queue could take two; it fails too
    clock.now = failing["retry_at_s"]
    daemon.step()
    assert len(queues[SANS].queued) == 1
    daemon.step()
    assert len(queues[SANS].queued) == 1
    queues[SANS].run_all()
    daemon.step()
    again = daemon.status()["stations"][SANS]["failing"]
    assert again["state"] == "open"
    assert again["set_aside_at_s"] == clock.now  # set aside again at once, for another pause
    assert queues[SANS].queued == []

    # the IOC is back: the next trial succeeds and SANS gets its full queue again
    queues[SANS].outcome = lambda plan: ("completed", "")
    clock.now = again["retry_at_s"]
    daemon.step()
    queues[SANS].run_all()
    daemon.step()
    assert daemon.status()["stations"][SANS]["failing"] is None
    assert len(queues[SANS].queued) == 2

    for _ in range(40):
        if daemon.step():
            break
        for queue in queues.values():
            queue.run_all()
    measured = [e for e in daemon.journal.entries() if e.status is EntryStatus.MEASURED]
    assert len(measured) == 30
    assert not daemon.stopped_on_faults
    assert sum(e.station == SANS for e in measured) < sum(e.station == SAXS for e in measured)


def test_a_set_aside_station_gets_no_retry_of_a_failed_decision(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS), SANS: FakeQueue(SANS, dead)}
    clock = Clock()
    retries = DaemonSettings(
        queue_depth=1,
        poll_interval_s=0.01,
        max_attempts=5,
        breaker=BreakerSettings(failures_to_trip=2, retry_after_s=PAUSE_S),
    )
    daemon = make_daemon(tiled_client, unique_campaign_id, queues, settings=retries, clock=clock)
    daemon.recover()
    rounds(daemon, queues, clock, 6)
    assert len(queues[SANS].history) == 2  # the decision's first try and its retry, then set aside
    (decision,) = [e for e in daemon.journal.entries() if e.station == SANS]
    assert decision.status is EntryStatus.FAILED
    assert decision.reason is not None
    assert "set aside" in decision.reason


class InstantQueue(FakeQueue):
    """A station whose items finish as they are added: `run()` can go to its end without a helper."""

    def add(self, plan: PlanRequest) -> str:
        uid = super().add(plan)
        self.run_all()
        return uid


def test_when_every_station_is_set_aside_the_daemon_stops_and_says_why(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    broken: Callable[[PlanRequest], tuple[str, str]] = lambda plan: ("failed", "no tips left")  # noqa: E731
    queues = {SAXS: InstantQueue(SAXS, broken), SANS: InstantQueue(SANS, dead)}
    daemon = make_daemon(
        tiled_client, unique_campaign_id, queues, settings=settings(depth=1, trip=2), stop=[budget(50)]
    )
    outcome = daemon.run()
    assert daemon.stopped_on_faults
    assert outcome.startswith("stopped: every station is set aside for failing samples")
    assert "saxs (2 failed in a row, last: no tips left)" in outcome
    assert f"sans (2 failed in a row, last: {DEAD_IOC})" in outcome
    assert [len(q.history) for q in queues.values()] == [2, 2]  # nothing more was spent on them
    beat = daemon.journal.last_heartbeat()
    assert beat is not None
    assert beat["state"] == outcome
    assert beat["stop_reason"] in outcome


def test_a_person_stopping_an_item_does_not_count_against_the_station(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS, lambda plan: ("stopped", "stopped by a scientist"))}
    clock = Clock()
    daemon = make_daemon(
        tiled_client, unique_campaign_id, queues, settings=settings(depth=1, trip=2), clock=clock
    )
    daemon.recover()
    rounds(daemon, queues, clock, 4)
    assert len(queues[SAXS].history) == 4
    assert daemon.status()["stations"][SAXS]["failing"] is None
    assert not daemon.stopped_on_faults


def test_agent_run_exits_3_when_every_station_is_set_aside_and_status_says_why(
    tiled_client: Container,
    tiled_endpoint: TiledEndpoint,
    unique_campaign_id: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    import tandem.cli.agent as agent_cli
    from tandem.cli.app import app

    queues = {SAXS: InstantQueue(SAXS, dead)}
    daemon = make_daemon(tiled_client, unique_campaign_id, queues, settings=settings(depth=1, trip=2))
    # the daemon file's wiring (campaign, RE Managers) is build_daemon's, tested below; here the exit
    monkeypatch.setattr(agent_cli, "build_daemon", lambda config: daemon)
    config = tmp_path / "daemon.yaml"
    config.write_text("campaign: campaign.yaml\n")
    env = {**tiled_endpoint.environ(), "COLUMNS": "200"}

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(app, ["agent", "run", str(config)], env=env)
    finally:  # `agent run` installs its own SIGINT/SIGTERM handlers: give pytest its own back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    assert result.exit_code == agent_cli.STATIONS_SET_ASIDE_EXIT_CODE == 3, result.output
    assert "stopped: every station is set aside for failing samples" in result.output
    status = CliRunner().invoke(app, ["agent", "status", "--campaign", unique_campaign_id], env=env)
    assert status.exit_code == 0, status.output
    assert "SET ASIDE since" in status.output
    assert f"last failure: {DEAD_IOC}" in status.output


def test_the_campaign_files_faults_set_the_daemons_breaker(
    tiled_client: Container, unique_campaign_id: str, tmp_path: Path
) -> None:
    from tandem.cli.agent import build_daemon

    examples = DEMO_FOLDER
    for deck in examples.glob("*_deck.yaml"):
        shutil.copy(deck, tmp_path / deck.name)
    campaign = yaml.safe_load((examples / "demo.yaml").read_text())
    campaign["id"] = unique_campaign_id
    campaign["faults"] = {"set_aside_after_failures": 2, "retry_after_min": 5}
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(campaign))
    # an address nobody answers on: building the daemon connects to nothing yet
    (tmp_path / "daemon.yaml").write_text(
        "campaign: campaign.yaml\nstations:\n  saxs: {control_addr: 'tcp://127.0.0.1:9'}\n"
    )
    daemon = build_daemon(tmp_path / "daemon.yaml", client=tiled_client)
    try:
        assert daemon.settings.breaker == BreakerSettings(failures_to_trip=2, retry_after_s=300.0)
    finally:
        for queue in daemon.queues.values():
            queue.close()  # type: ignore[attr-defined]
