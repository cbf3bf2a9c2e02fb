"""The agent daemon's loop against in-memory station queues and a real Tiled journal.

The queues here are deterministic stand-ins for bluesky-queueserver (the end-to-end
test, tests/test_queue_end_to_end.py, runs the real thing): items wait in the queue
until the test "runs" them, each into the history with an outcome the test chooses.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from tiled.client.container import Container

from tandem.agents.baselines import SpaceFillingAgent
from tandem.agents.daemon import AgentDaemon, Progress
from tandem.agents.daemon_settings import DaemonSettings
from tandem.agents.journal import Attempt, Entry, EntryStatus, InvalidVerdictError, Journal
from tandem.agents.station_queue import PlanRequest, QueueItem, QueueSnapshot
from tandem.observations import AnalysisStatus, Observation
from tandem.stations import SANS, SAXS, Probe
from tandem.suggestions import ScanParameters, Suggestion

from .conftest import default_region

pytestmark = pytest.mark.slow  # a real Tiled server holds the journal

Outcome = Callable[[PlanRequest], tuple[str, str]]


class FakeQueue:
    """A station queue that runs items only when told to, each with the outcome `outcome` gives."""

    def __init__(self, station: str, outcome: Outcome | None = None) -> None:
        self.station = station
        self.outcome = outcome or (lambda plan: ("completed", ""))
        self.queued: list[tuple[QueueItem, PlanRequest]] = []
        self.history: list[tuple[QueueItem, PlanRequest]] = []
        self.down = False

    def snapshot(self) -> QueueSnapshot:
        if self.down:
            raise ConnectionError(f"{self.station} does not answer")
        return QueueSnapshot(tuple(i for i, _ in self.queued), None, tuple(i for i, _ in self.history))

    def add(self, plan: PlanRequest) -> str:
        if self.down:
            raise ConnectionError(f"{self.station} does not answer")
        item = QueueItem(str(uuid.uuid4()), plan.kwargs["decision_uid"], plan.kwargs["sample_uid"])
        self.queued.append((item, plan))
        return item.item_uid

    def run_all(self) -> None:
        for item, plan in self.queued:
            status, message = self.outcome(plan)
            run = (f"run-{item.sample_uid}",) if status == "completed" else ()
            done = QueueItem(item.item_uid, item.decision_uid, item.sample_uid, status, message, run)
            self.history.append((done, plan))
        self.queued = []

    @property
    def samples(self) -> list[str]:
        return [str(i.sample_uid) for i, _ in [*self.history, *self.queued]]


class FakeResults:
    """Analysed results of every completed item of the queues (the analysis worker's output)."""

    def __init__(self, queues: Mapping[str, FakeQueue]) -> None:
        self.queues = queues
        self.failures = 0

    def observations(self, campaign_id: str) -> list[Observation]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Tiled does not answer")
        out = []
        for sid, queue in self.queues.items():
            for item, plan in queue.history:
                if item.exit_status != "completed":
                    continue
                out.append(
                    Observation(
                        sample_uid=str(item.sample_uid),
                        run_uid=item.run_uids[0],
                        campaign_id=campaign_id,
                        station=sid,
                        probe=Probe.XRAY if sid == SAXS else Probe.NEUTRON,
                        composition=dict(plan.args[3]),
                        status=AnalysisStatus.OK,
                        exposure_s=float(plan.args[4]),
                        label="micelles",
                    )
                )
        return out


def plan_for(suggestion: Suggestion, sample_uid: str) -> PlanRequest:
    target = {n: suggestion.target.mass_fraction(n) for n in ("SDS", "PPG", "NaCl")}
    sid = suggestion.station
    return PlanRequest(
        "sample_plan",
        (sid, f"{sid}_liquid_handler", f"{sid}_cell_loader", target, suggestion.scan.exposure_s),
        {"decision_uid": suggestion.decision_uid, "sample_uid": sample_uid},
    )


def agent() -> SpaceFillingAgent:
    scans = {SAXS: ScanParameters(1.0, "short"), SANS: ScanParameters(300.0, "middle")}
    return SpaceFillingAgent(default_region(), stations={SAXS: Probe.XRAY, SANS: Probe.NEUTRON}, scans=scans)


def budget(n: int) -> Callable[[Progress], str | None]:
    return lambda p: f"{n} samples" if p.measured + p.open >= n else None


class FakeRecorder:
    """The campaign ledger in memory: sample uid -> (decision uid, outcome); `fail` raises on next writes."""

    def __init__(self, written: dict[str, tuple[str, str | None]] | None = None) -> None:
        self.written = {} if written is None else written
        self.writes = 0
        self.fail: list[BaseException] = []

    def recorded(self) -> set[str]:
        return set(self.written)

    def record(self, entry: Entry, attempt: Attempt) -> None:
        if self.fail:
            raise self.fail.pop(0)
        assert attempt.outcome is not None, "only finished samples are written down"
        self.writes += 1
        self.written[attempt.sample_uid] = (entry.decision_uid, attempt.outcome)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_daemon(
    client: Container,
    campaign_id: str,
    queues: Mapping[str, FakeQueue],
    *,
    settings: DaemonSettings | None = None,
    validate: Callable[[Suggestion], str | None] = lambda s: None,
    stop: Sequence[Callable[[Progress], str | None]] = (),
    clock: Clock | None = None,
    results: FakeResults | None = None,
    recorder: FakeRecorder | None = None,
) -> AgentDaemon:
    region = default_region()

    def restore(record: Any, observations: Any) -> SpaceFillingAgent:
        return SpaceFillingAgent.from_state(record.agent_state, region, observations)  # type: ignore[no-any-return]

    return AgentDaemon(
        agent(),
        campaign_id,
        journal=Journal(client, campaign_id, {"id": campaign_id}),
        results=results or FakeResults(queues),
        queues=queues,
        plan_for=plan_for,
        validate=validate,
        stop_criteria=stop,
        settings=settings or DaemonSettings(queue_depth=2, poll_interval_s=0.01),
        restore_agent=restore,
        recorder=recorder,
        clock=clock or Clock(),
    )


def test_keeps_each_queue_at_depth_with_suggestions_that_know_the_other_station(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS), SANS: FakeQueue(SANS)}
    daemon = make_daemon(tiled_client, unique_campaign_id, queues)
    seen_pending: list[int] = []
    suggest = daemon.agent.suggest

    def spy(station: str | None, n: int = 1, pending: Sequence[Suggestion] = ()) -> list[Suggestion]:
        seen_pending.append(len(pending))
        return suggest(station, n, pending)

    daemon.agent.suggest = spy  # type: ignore[method-assign]
    daemon.recover()
    daemon.step()
    assert [len(q.queued) for q in queues.values()] == [2, 2]
    # the fourth suggestion (second for SANS) was made knowing the three before it, on both stations
    assert seen_pending == [0, 1, 2, 3]
    targets = {tuple(sorted(p.args[3].items())) for q in queues.values() for _, p in q.queued}
    assert len(targets) == 4
    daemon.step()  # nothing ran: nothing more is queued
    assert [len(q.queued) for q in queues.values()] == [2, 2]


def test_a_failed_plan_is_recorded_with_its_reason_and_retried_under_a_new_sample(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    failures = itertools.count()

    def outcome(plan: PlanRequest) -> tuple[str, str]:
        return ("failed", "the cell loader timed out") if next(failures) == 0 else ("completed", "")

    queues = {SAXS: FakeQueue(SAXS, outcome)}
    settings = DaemonSettings(queue_depth=1, max_attempts=2, poll_interval_s=0.01)
    daemon = make_daemon(tiled_client, unique_campaign_id, queues, settings=settings, stop=[budget(1)])
    daemon.recover()
    daemon.step()
    queues[SAXS].run_all()  # the first attempt fails
    daemon.step()
    (entry,) = daemon.journal.entries()
    assert entry.status is EntryStatus.QUEUED
    assert [a.outcome for a in entry.attempts] == ["failed", None]
    assert entry.attempts[0].reason == "the cell loader timed out"
    assert entry.attempts[0].sample_uid != entry.attempts[1].sample_uid
    queues[SAXS].run_all()
    assert daemon.step()  # measured: the budget of one sample is spent and nothing is open
    (entry,) = daemon.journal.entries()
    assert entry.status is EntryStatus.MEASURED
    assert entry.attempts[-1].run_uid == f"run-{entry.attempts[-1].sample_uid}"


def test_without_retries_a_failed_sample_is_final_and_the_campaign_goes_on(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS, lambda plan: ("failed", "no tips left"))}
    daemon = make_daemon(
        tiled_client, unique_campaign_id, queues, settings=DaemonSettings(queue_depth=1, poll_interval_s=0.01)
    )
    daemon.recover()
    for _ in range(3):
        daemon.step()
        queues[SAXS].run_all()
    daemon.step()
    statuses = Counter(e.status for e in daemon.journal.entries())
    assert statuses[EntryStatus.FAILED] == 3
    assert all(e.reason == "no tips left" for e in daemon.journal.entries() if e.status is EntryStatus.FAILED)


def test_a_silent_station_is_set_aside_while_the_other_keeps_working(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS), SANS: FakeQueue(SANS)}
    clock = Clock()
    settings = DaemonSettings(queue_depth=1, poll_interval_s=0.01, set_aside_after_s=5, backoff_initial_s=1)
    daemon = make_daemon(tiled_client, unique_campaign_id, queues, settings=settings, clock=clock)
    daemon.recover()
    queues[SANS].down = True
    for _ in range(4):
        daemon.step()
        queues[SAXS].run_all()
        clock.now += 3
    assert len(queues[SAXS].history) == 4
    assert queues[SANS].queued == []
    assert daemon.set_aside(SANS)
    assert daemon.status()["stations"][SANS]["set_aside"]
    queues[SANS].down = False
    clock.now += 60  # past the back-off
    daemon.step()
    assert len(queues[SANS].queued) == 1
    assert not daemon.set_aside(SANS)


def test_a_restarted_daemon_neither_repeats_nor_loses_a_sample(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS), SANS: FakeQueue(SANS)}
    first = make_daemon(tiled_client, unique_campaign_id, queues, stop=[budget(8)])
    first.recover()
    first.step()
    queues[SAXS].run_all()
    first.step()
    # the daemon dies between journalling a decision and queuing it: that entry is QUEUEING, not queued
    add = queues[SANS].add
    queues[SANS].add = lambda plan: (_ for _ in ()).throw(SystemExit("killed"))  # type: ignore[method-assign]
    queues[SANS].run_all()
    with pytest.raises(SystemExit):
        first.step()
    queues[SANS].add = add  # type: ignore[method-assign]
    queueing = [e for e in first.journal.entries() if e.status is EntryStatus.QUEUEING]
    assert len(queueing) == 1

    second = make_daemon(tiled_client, unique_campaign_id, queues, stop=[budget(8)])
    second.recover()
    assert second.agent.step == first.agent.step  # type: ignore[attr-defined]  # resumed, not restarted
    for _ in range(10):
        if second.step():
            break
        for q in queues.values():
            q.run_all()
    entries = second.journal.entries()
    assert all(e.status is EntryStatus.MEASURED for e in entries)
    assert len(entries) == 8
    samples = [s for q in queues.values() for s in q.samples]
    assert len(samples) == len(set(samples)) == 8  # the interrupted one was queued exactly once
    assert {e.sample_uid for e in entries} == set(samples)


def test_suggestions_wait_for_approval_and_the_verdict_is_recorded(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS)}
    settings = DaemonSettings(queue_depth=2, approval=True, poll_interval_s=0.01)
    daemon = make_daemon(tiled_client, unique_campaign_id, queues, settings=settings)
    daemon.recover()
    daemon.step()
    waiting = daemon.journal.entries()
    assert [e.status for e in waiting] == [EntryStatus.AWAITING_APPROVAL] * 2
    assert queues[SAXS].queued == []
    daemon.step()  # still waiting: no new suggestions pile up, nothing is queued
    assert len(daemon.journal.entries()) == 2

    yes, no = waiting
    daemon.journal.set_verdict(yes.decision_uid, True, by="scientist", note="looks right")
    daemon.journal.set_verdict(no.decision_uid, False, by="scientist", note="too close to the last one")
    with pytest.raises(InvalidVerdictError, match="verdict already given"):
        daemon.journal.set_verdict(no.decision_uid, True, by="someone else")
    with pytest.raises(InvalidVerdictError, match="no decision"):
        daemon.journal.set_verdict("not-a-decision", True, by="scientist")
    daemon.step()
    by_uid = {e.decision_uid: e for e in daemon.journal.entries()}
    assert by_uid[yes.decision_uid].status is EntryStatus.QUEUED
    assert by_uid[yes.decision_uid].approval["by"] == "scientist"
    assert by_uid[no.decision_uid].status is EntryStatus.DENIED
    assert by_uid[no.decision_uid].reason == "too close to the last one"
    assert [p.kwargs["decision_uid"] for _, p in queues[SAXS].queued] == [yes.decision_uid]


def test_a_suggestion_the_campaign_refuses_is_never_queued(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS)}
    daemon = make_daemon(
        tiled_client,
        unique_campaign_id,
        queues,
        validate=lambda s: "SDS above the campaign's bound" if s.target.mass_fraction("SDS") > 0 else None,
    )
    daemon.recover()
    daemon.step()
    (entry,) = daemon.journal.entries()  # one refusal ends the round: no tight loop of refusals
    assert entry.status is EntryStatus.REJECTED
    assert entry.reason == "SDS above the campaign's bound"
    assert queues[SAXS].queued == []


def test_a_data_store_outage_is_waited_out_with_back_off(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    queues = {SAXS: FakeQueue(SAXS)}
    results = FakeResults(queues)
    results.failures = 3
    settings = DaemonSettings(queue_depth=1, poll_interval_s=0.01, backoff_initial_s=0.01, backoff_max_s=0.02)
    daemon = make_daemon(
        tiled_client, unique_campaign_id, queues, settings=settings, results=results, stop=[budget(2)]
    )
    daemon._clock = __import__("time").monotonic
    stop = threading.Event()
    runner = threading.Thread(target=lambda: setattr(daemon, "outcome", daemon.run(stop)))
    runner.start()
    try:
        for _ in range(400):
            queues[SAXS].run_all()
            if not runner.is_alive():
                break
            runner.join(0.05)
    finally:
        stop.set()
        runner.join()
    assert results.failures == 0
    assert daemon.outcome.startswith("finished")  # type: ignore[attr-defined]
    assert len(queues[SAXS].history) == 2


def test_bad_settings_are_refused() -> None:
    from tandem.agents.daemon_settings import DaemonError

    with pytest.raises(DaemonError, match="at least 1"):
        DaemonSettings(queue_depth=0)
    with pytest.raises(DaemonError, match="positive"):
        DaemonSettings(poll_interval_s=0)


def test_every_finished_sample_is_written_down_once_also_across_an_outage_and_a_kill(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    first_try = itertools.count()

    def outcome(plan: PlanRequest) -> tuple[str, str]:
        return ("failed", "the cell leaked") if next(first_try) == 0 else ("completed", "")

    queues = {SAXS: FakeQueue(SAXS, outcome)}
    settings = DaemonSettings(queue_depth=1, max_attempts=2, poll_interval_s=0.01)
    recorder = FakeRecorder()
    first = make_daemon(
        tiled_client, unique_campaign_id, queues, settings=settings, stop=[budget(3)], recorder=recorder
    )
    first.recover()
    first.step()
    queues[SAXS].run_all()  # the first sample fails and is retried under a new sample
    recorder.fail = [ConnectionError("Tiled does not answer")]
    with pytest.raises(ConnectionError):
        first.step()
    assert recorder.written == {}
    queues[SAXS].run_all()
    first.step()  # the failed sample is written down now, and the measured retry with it
    assert sorted(o for _, o in recorder.written.values()) == ["completed", "failed"]
    # killed after the journal says "measured" but before the ledger has it
    recorder.fail = [SystemExit("killed")]
    queues[SAXS].run_all()
    with pytest.raises(SystemExit):
        first.step()
    measured = {e.sample_uid for e in first.journal.entries() if e.status is EntryStatus.MEASURED}
    assert len(measured) == 2
    assert not measured <= set(recorder.written)

    second = make_daemon(
        tiled_client,
        unique_campaign_id,
        queues,
        settings=settings,
        stop=[budget(3)],
        recorder=FakeRecorder(recorder.written),
    )
    second.recover()
    for _ in range(10):
        if second.step():
            break
        queues[SAXS].run_all()
    entries = second.journal.entries()
    attempts = {a.sample_uid: (e.decision_uid, a.outcome) for e in entries for a in e.attempts}
    assert recorder.written == attempts  # every sample, failed or measured, under its decision
    assert recorder.writes + second.recorder.writes == len(attempts)  # type: ignore[union-attr]  # none twice


def test_a_paused_daemon_records_results_but_decides_nothing_until_resumed(
    tiled_client: Container, tiled_endpoint: Any, unique_campaign_id: str
) -> None:
    from typer.testing import CliRunner

    from tandem.cli.app import app

    queues = {SAXS: FakeQueue(SAXS), SANS: FakeQueue(SANS)}
    daemon = make_daemon(tiled_client, unique_campaign_id, queues)
    daemon.recover()
    # a scientist pauses it from another terminal, through Tiled
    cli = CliRunner()
    env = {**tiled_endpoint.environ(), "COLUMNS": "200"}
    paused = cli.invoke(
        app, ["agent", "pause", "--campaign", unique_campaign_id, "--note", "realign"], env=env
    )
    assert paused.exit_code == 0, paused.output
    assert "paused" in paused.output
    assert daemon.journal.pause() is not None
    assert daemon.journal.pause()["note"] == "realign"
    daemon.step()
    assert [len(q.queued) for q in queues.values()] == [0, 0]
    assert daemon.journal.entries() == []
    assert daemon.state.startswith("paused by ")
    resumed = cli.invoke(app, ["agent", "resume", "--campaign", unique_campaign_id], env=env)
    assert resumed.exit_code == 0, resumed.output
    assert daemon.journal.pause() is None
    daemon.step()
    assert [len(q.queued) for q in queues.values()] == [2, 2]
    assert daemon.state == "running"


def test_pausing_a_campaign_the_store_lacks_is_refused(tiled_endpoint: Any) -> None:
    from typer.testing import CliRunner

    from tandem.cli.app import app

    env = {**tiled_endpoint.environ(), "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["agent", "pause", "--campaign", "no-such-campaign"], env=env)
    assert result.exit_code == 1
    assert "no campaign 'no-such-campaign'" in result.output
