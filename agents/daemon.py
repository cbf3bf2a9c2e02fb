"""The agent daemon: keeps every station's queue-server queue fed with the agent's next samples.

One loop, for days: read analysed results as they land and tell the agent;
look at each station's queue and history; settle what finished (measured, or
failed with its reason, retried if the policy says so); keep each station's
queue at the configured depth with suggestions made knowing everything still
pending on any station; check each suggestion against the campaign before it
is queued; stop on the campaign's stop criteria.

Nothing that matters lives only in this process. Before an item is queued its
decision is written to the journal in Tiled (``campaigns/<id>/queue/<decision
uid>``, with the agent's decision record beside it in ``decisions/``); the item
carries the decision and sample uids in its plan arguments, so the runs do too.
A restarted daemon — after SIGTERM, ``kill -9`` or a reboot — reads the journal,
finds each open decision's item in a queue, a history or the catalog, and goes
on: no sample is queued twice, none is forgotten. Each finished sample is also
handed to a `SampleRecorder` (the campaign ledger, which `tandem report` reads);
one finished before a kill but not yet written down is written after the restart.

Faults: a station that stops answering is set aside (its pending samples stay
pending) and asked again with back-off while the others go on; a Tiled or
queue-server error makes the loop wait and retry with back-off, never exit.
A station that answers but whose samples keep failing (a dead cell-loader IOC,
an empty stock) is set aside by its circuit breaker (`tandem.breaker`, the
campaign's `faults`): nothing is proposed or queued there until its pause has
passed, then one trial sample; the other stations get the budget. When every
station is set aside at once the daemon stops (`stopped_on_faults`). The breaker
starts closed whenever the daemon starts: restarting it after mending a station
is how a scientist says "try again".

Everything here works on protocols (`StationQueue`, `ResultSource`, the agent's
`Agent`); the campaign wiring (`tandem agent run`) supplies the implementations.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from tandem.agents.protocol import Agent, Relabelling
from tandem.agents.records import DecisionRecord, latest, read_records, write_records
from tandem.breaker import BreakerSettings, BreakerState, StationBreaker, StationHealth
from tandem.errors import TandemError
from tandem.observations import Observation
from tandem.suggestions import ScanParameters, Suggestion

logger = logging.getLogger(__name__)

CAMPAIGNS = "campaigns"
JOURNAL = "queue"
DECISIONS = "decisions"
HEARTBEAT = "daemon"
#: a scientist's pause of the daemon's decisions (`tandem agent pause` / `resume`)
CONTROL = "control"
ENTRY_SPEC = "tandem-queued-decision"
#: the longest a running daemon leaves its heartbeat unwritten (seconds)
HEARTBEAT_S = 10.0


class DaemonError(TandemError, RuntimeError):
    """The daemon cannot go on (bad wiring, not a passing outage)."""


class InvalidVerdictError(TandemError, ValueError):
    """An approve/deny for a decision that is not waiting for one."""


# --- what crosses the seams -------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    """An item of a station's queue or history, as far as the daemon cares."""

    item_uid: str
    decision_uid: str | None
    sample_uid: str | None
    #: history only: "completed", "failed", "stopped", "aborted", "halted", "unknown"
    exit_status: str | None = None
    message: str = ""
    run_uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueSnapshot:
    queued: tuple[QueueItem, ...]
    running: QueueItem | None
    history: tuple[QueueItem, ...]

    def pending_samples(self) -> set[str]:
        items = [*self.queued, *([self.running] if self.running else [])]
        return {i.sample_uid for i in items if i.sample_uid}

    def finished(self) -> dict[str, QueueItem]:
        """History items by sample uid (the last one, if a sample appears twice)."""
        return {i.sample_uid: i for i in self.history if i.sample_uid}


class StationQueue(Protocol):
    """A station's queue as the daemon uses it (bluesky-queueserver in production)."""

    station: str

    def snapshot(self) -> QueueSnapshot:
        """The queue, the running item and the history; raises if the station does not answer."""
        ...

    def add(self, plan: PlanRequest) -> str:
        """Queue `plan` at the back; return the item uid. Raises `ItemRefusedError` if refused."""
        ...


class ResultSource(Protocol):
    """Analysed results (`tandem.analysis.store.AnalysisStore` in production)."""

    def observations(self, campaign_id: str) -> list[Observation]: ...


class SampleRecorder(Protocol):
    """Where each finished sample is written down for the campaign's report (the ledger in production)."""

    def record(self, entry: Entry, attempt: Attempt) -> None:
        """Write down `attempt` of `entry`, which has finished (its `outcome` is set); idempotent."""
        ...

    def recorded(self) -> set[str]:
        """The sample uids already written down (a restarted daemon writes the rest)."""
        ...


class ItemRefusedError(TandemError, ValueError):
    """The queue server refused an item (validation or permissions): it will never run."""


@dataclass(frozen=True)
class PlanRequest:
    """A plan call, ready for a queue: name, positional and keyword arguments (JSON only)."""

    name: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


class EntryStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    DENIED = "denied"
    REJECTED = "rejected"  # failed validation against the campaign: never queued
    QUEUEING = "queueing"  # written, item_add under way (a restart checks whether it landed)
    QUEUED = "queued"  # in a station's queue, or running
    MEASURED = "measured"
    FAILED = "failed"  # every attempt failed

    @property
    def open(self) -> bool:
        return self in (EntryStatus.AWAITING_APPROVAL, EntryStatus.QUEUEING, EntryStatus.QUEUED)


@dataclass(frozen=True)
class Attempt:
    """One try at measuring a decision: one sample, one queue item."""

    sample_uid: str
    queued_at: float
    item_uid: str | None = None
    outcome: str | None = None  # the queue's exit status once it ran
    run_uid: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Entry:
    """The journal's record of one decision, from suggestion to result."""

    decision_uid: str
    campaign_id: str
    station: str
    agent: str
    target: Mapping[str, float]  # solute mass fractions (the solvent takes the rest)
    scan: Mapping[str, Any]
    status: EntryStatus
    decided_at: float
    attempts: tuple[Attempt, ...] = ()
    approval: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def sample_uid(self) -> str | None:
        return self.attempts[-1].sample_uid if self.attempts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": ENTRY_SPEC,
            "decision_uid": self.decision_uid,
            "campaign_id": self.campaign_id,
            "station": self.station,
            "agent": self.agent,
            "target": dict(self.target),
            "scan": dict(self.scan),
            "status": self.status.value,
            "decided_at": self.decided_at,
            "attempts": [vars(a).copy() for a in self.attempts],
            "approval": dict(self.approval),
            "reason": self.reason,
            "sample_uid": self.sample_uid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            decision_uid=str(data["decision_uid"]),
            campaign_id=str(data["campaign_id"]),
            station=str(data["station"]),
            agent=str(data.get("agent", "")),
            target={str(k): float(v) for k, v in data["target"].items()},
            scan=dict(data["scan"]),
            status=EntryStatus(data["status"]),
            decided_at=float(data["decided_at"]),
            attempts=tuple(Attempt(**a) for a in data.get("attempts") or ()),
            approval=dict(data.get("approval") or {}),
            reason=data.get("reason"),
        )


# --- the journal in Tiled ---------------------------------------------------------------------


def _child(parent: Any, key: str, metadata: Mapping[str, Any]) -> Any:
    if key in parent:
        return parent[key]
    try:
        return parent.create_container(key=key, metadata=dict(metadata))
    except Exception:
        if key in parent:  # another process made it between our look and our write
            return parent[key]
        raise


class Journal:
    """The daemon's records of one campaign in Tiled: decisions, their queue entries, its heartbeat.

    ``campaigns/<id>/`` is shared with the in-process campaign runner's ledger (same
    metadata), so a campaign keeps one home whichever way it runs.
    """

    def __init__(
        self, client: Any, campaign_id: str, campaign_record: Mapping[str, Any] | None = None
    ) -> None:
        campaigns = _child(client, CAMPAIGNS, {"spec": "tandem-campaigns"})
        self.node = _child(
            campaigns,
            campaign_id,
            {
                "spec": "tandem-campaign",
                "campaign_id": campaign_id,
                "campaign": dict(campaign_record or {}),
                "created": time.time(),
            },
        )
        self.campaign_id = campaign_id
        self.entries_node = _child(self.node, JOURNAL, {"spec": "tandem-queue-journal"})
        self.decisions = _child(self.node, DECISIONS, {"spec": "tandem-decisions"})

    @classmethod
    def find(cls, client: Any, campaign_id: str) -> Journal | None:
        """The journal of an existing campaign (None if the catalog has none)."""
        if CAMPAIGNS not in client or campaign_id not in client[CAMPAIGNS]:
            return None
        return cls(client, campaign_id)

    def entries(self) -> list[Entry]:
        out = []
        for _key, node in self.entries_node.items():
            if node.metadata.get("spec") == ENTRY_SPEC:
                out.append(Entry.from_dict(node.metadata))
        return sorted(out, key=lambda e: e.decided_at)

    def entry(self, decision_uid: str) -> Entry | None:
        try:
            return Entry.from_dict(self.entries_node[decision_uid].metadata)
        except KeyError:
            return None

    def put(self, entry: Entry) -> None:
        if entry.decision_uid in self.entries_node:
            self.entries_node[entry.decision_uid].replace_metadata(metadata=entry.to_dict())
        else:
            self.entries_node.create_container(key=entry.decision_uid, metadata=entry.to_dict())

    def write_decisions(self, records: Iterable[DecisionRecord]) -> None:
        write_records(self.decisions, records)

    def decision_records(self) -> list[DecisionRecord]:
        return read_records(self.decisions)

    def set_verdict(self, decision_uid: str, approved: bool, *, by: str, note: str = "") -> Entry:
        """Record a scientist's verdict on a suggestion waiting for approval."""
        entry = self.entry(decision_uid)
        if entry is None:
            raise InvalidVerdictError(f"campaign {self.campaign_id!r} has no decision {decision_uid!r}")
        if entry.status is not EntryStatus.AWAITING_APPROVAL or "verdict" in entry.approval:
            raise InvalidVerdictError(
                f"decision {decision_uid} is {entry.status.value}"
                + (
                    f" (verdict already given: {entry.approval['verdict']})"
                    if "verdict" in entry.approval
                    else ""
                )
                + "; only a suggestion awaiting approval takes a verdict"
            )
        verdict = {"verdict": "approved" if approved else "denied", "by": by, "at": time.time(), "note": note}
        updated = replace(entry, approval={**entry.approval, **verdict})
        self.put(updated)
        return updated

    def heartbeat(self, state: Mapping[str, Any]) -> None:
        node = _child(self.node, HEARTBEAT, {"spec": "tandem-agent-daemon"})
        node.replace_metadata(metadata={"spec": "tandem-agent-daemon", **dict(state)})

    def set_paused(self, paused: bool, *, by: str, note: str = "") -> dict[str, Any]:
        """Pause (or resume) the daemon's new decisions; it reads this every round."""
        control = {
            "spec": "tandem-agent-control",
            "paused": paused,
            "by": by,
            "at": time.time(),
            "note": note,
        }
        _child(self.node, CONTROL, {"spec": "tandem-agent-control"}).replace_metadata(metadata=control)
        return control

    def pause(self) -> dict[str, Any] | None:
        """Who paused the daemon, when and why (None while it is not paused)."""
        if CONTROL not in self.node:
            return None
        control = dict(self.node[CONTROL].metadata)
        return control if control.get("paused") else None

    def last_heartbeat(self) -> dict[str, Any] | None:
        if HEARTBEAT not in self.node:
            return None
        return dict(self.node[HEARTBEAT].metadata)


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonSettings:
    #: items each station should have queued or running (plus suggestions awaiting approval)
    queue_depth: int = 2
    #: seconds between looks at the queues and the results
    poll_interval_s: float = 1.0
    #: suggestions wait for `tandem agent approve` / `deny` before they are queued
    approval: bool = False
    #: how many times a decision is tried in all (1: a failed sample is not retried)
    max_attempts: int = 1
    #: back-off after an outage: first wait, growth factor, longest wait (seconds)
    backoff_initial_s: float = 0.5
    backoff_factor: float = 2.0
    backoff_max_s: float = 30.0
    #: a station unanswered for this long is reported as set aside (it is still asked, with back-off)
    set_aside_after_s: float = 10.0
    #: samples (measured or open) a station may take in all, None: no limit of its own (its beamtime share)
    max_samples_per_station: int | None = None
    #: when a station whose samples keep failing is set aside, and for how long (the campaign's `faults`;
    #: seconds of the daemon's clock, which is wall-clock time outside tests)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)

    def __post_init__(self) -> None:
        if self.queue_depth < 1 or self.max_attempts < 1:
            raise DaemonError("queue_depth and max_attempts must be at least 1")
        if self.poll_interval_s <= 0 or self.backoff_initial_s <= 0 or self.backoff_max_s <= 0:
            raise DaemonError("poll_interval_s and the back-off times must be positive seconds")


@dataclass
class _Backoff:
    settings: DaemonSettings
    failures: int = 0
    next_try: float = 0.0
    down_since: float | None = None
    last_error: str | None = None

    def failed(self, error: BaseException, now: float) -> float:
        wait = min(
            self.settings.backoff_max_s,
            self.settings.backoff_initial_s * self.settings.backoff_factor**self.failures,
        )
        self.failures += 1
        self.next_try = now + wait
        self.down_since = self.down_since or now
        self.last_error = f"{type(error).__name__}: {error}"
        return wait

    def ok(self) -> None:
        self.failures, self.next_try, self.down_since, self.last_error = 0, 0.0, None, None

    def ready(self, now: float) -> bool:
        return now >= self.next_try


@dataclass(frozen=True)
class Progress:
    """What the stop criteria look at."""

    measured: int
    failed: int
    open: int
    observations: Sequence[Observation]
    agent: Agent


#: a stop criterion: the reason to stop queuing, or None to go on
StopCriterion = Callable[[Progress], str | None]
#: a check of a suggestion against the campaign: why it must not be queued, or None
Validator = Callable[[Suggestion], str | None]
#: the sample plan for a suggestion, as one sample uid
PlanFactory = Callable[[Suggestion, str], PlanRequest]


# --- the daemon -------------------------------------------------------------------------------


class AgentDaemon:
    """Feeds the stations' queues from `agent`; see the module docstring."""

    def __init__(
        self,
        agent: Agent,
        campaign_id: str,
        *,
        journal: Journal,
        results: ResultSource,
        queues: Mapping[str, StationQueue],
        plan_for: PlanFactory,
        validate: Validator,
        stop_criteria: Sequence[StopCriterion] = (),
        settings: DaemonSettings | None = None,
        restore_agent: Callable[[DecisionRecord, Sequence[Observation]], Agent] | None = None,
        recorder: SampleRecorder | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not queues:
            raise DaemonError("the daemon needs at least one station queue")
        self.agent = agent
        self.campaign_id = campaign_id
        self.journal = journal
        self.results = results
        self.queues = dict(queues)
        self.plan_for = plan_for
        self.validate = validate
        self.stop_criteria = tuple(stop_criteria)
        self.settings = settings or DaemonSettings()
        self._restore_agent = restore_agent
        self.recorder = recorder
        #: finished attempts not yet written down by the recorder (retried every round)
        self._to_record: list[tuple[Entry, Attempt]] = []
        self._clock = clock
        #: wall-clock seconds at `clock`'s zero, taken once: the times reported stay the same each round
        self._wall_offset_s = time.time() - clock()
        self.entries: dict[str, Entry] = {}
        self._told: set[str] = set()
        self._observations: list[Observation] = []
        self._stations = {sid: _Backoff(self.settings) for sid in self.queues}
        #: stations whose samples keep failing (the queue answers, the samples fail), on `clock`
        self._breaker = StationBreaker(self.queues, self.settings.breaker)
        #: the stop came from every station being set aside, not from the campaign's criteria
        self.stopped_on_faults = False
        self._store = _Backoff(self.settings)
        self._snapshots: dict[str, QueueSnapshot] = {}
        self._written_records = 0
        self.stop_reason: str | None = None
        self._last_beat: dict[str, Any] = {}
        self._last_beat_at = -math.inf
        self.state = "starting"
        self.started_at = time.time()

    # -- restart -------------------------------------------------------------------------------

    def recover(self) -> None:
        """Rebuild the state from Tiled: the journal, the agent (its last record plus every result)."""
        self.entries = {e.decision_uid: e for e in self.journal.entries()}
        observations = self.results.observations(self.campaign_id)
        records = self.journal.decision_records()
        if records and self._restore_agent is not None:
            self.agent = self._restore_agent(latest(records), observations)
        else:
            self.agent.tell(observations)
        self._observations = list(observations)
        self._told = {o.run_uid for o in observations}
        self._written_records = len(self.agent.records)
        if self.recorder is not None:
            # finished before a kill but not yet written down: the journal says so, the ledger does not
            known = self.recorder.recorded()
            self._to_record = [
                (e, a)
                for e in self.entries.values()
                for a in e.attempts
                if a.outcome is not None and a.sample_uid not in known
            ]
        n_open = sum(e.status.open for e in self.entries.values())
        logger.info(
            "recovered %d decisions (%d open) and %d results", len(self.entries), n_open, len(observations)
        )

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> str:
        """Loop until the campaign is done or `stop` is set; return why it ended. Never raises on outages."""
        stop = stop or threading.Event()
        recovered = False
        while not stop.is_set():
            now = self._clock()
            if not self._store.ready(now):
                stop.wait(min(self.settings.poll_interval_s, self._store.next_try - now))
                continue
            try:
                if not recovered:
                    self.recover()
                    recovered = True
                done = self.step()
                self._store.ok()
            except DaemonError:
                raise
            except Exception as exc:  # Tiled down, network trouble: wait and try again
                wait = self._store.failed(exc, now)
                self.state = f"waiting {wait:.1f} s after an error: {self._store.last_error}"
                logger.warning("%s", self.state)
                continue
            if done:
                self.state = f"{'stopped' if self.stopped_on_faults else 'finished'}: {self.stop_reason}"
                self._beat(force=True)
                return self.state
            stop.wait(self.settings.poll_interval_s)
        self.state = "stopped (signal): queued items run on; a restart picks up from the journal"
        with contextlib.suppress(Exception):
            self._beat(force=True)
        return self.state

    def step(self) -> bool:
        """One round: results, queues, settle, approvals, fill. True once the campaign is finished."""
        self._read_results()
        self._look_at_queues()
        self._settle()
        if self.stop_reason is None and self._breaker.all_set_aside():
            self.stop_reason = self._all_set_aside()
            self.stopped_on_faults = True
            logger.error("stopping: %s", self.stop_reason)
        self._approvals()
        if self.stop_reason is None:
            self.stop_reason = self._check_stop()
        paused = self.journal.pause() if self.stop_reason is None else None
        if self.stop_reason is None and paused is None:
            self._fill()
        self._write_down()
        if paused is not None:
            # results are still read and recorded, queued items run on: only new decisions wait
            self.state = f"paused by {paused.get('by', '?')}: no new decisions until `tandem agent resume`"
        else:
            self.state = "running" if self.stop_reason is None else f"draining: {self.stop_reason}"
        self._beat()
        return self.stop_reason is not None and not any(e.status.open for e in self.entries.values())

    # -- results -------------------------------------------------------------------------------

    def _read_results(self) -> None:
        results = self.results.observations(self.campaign_id)
        # phase finding may rename earlier runs (a merge, a split): re-tell the agent those
        told = {o.run_uid: o for o in self._observations}
        renamed = {
            o.run_uid: str(o.label)
            for o in results
            if o.run_uid in told and o.label is not None and o.label != told[o.run_uid].label
        }
        if renamed and isinstance(self.agent, Relabelling):
            self.agent.relabel(renamed)
            self._observations = [
                replace(o, label=renamed[o.run_uid], label_probabilities={renamed[o.run_uid]: 1.0})
                if o.run_uid in renamed
                else o
                for o in self._observations
            ]
        new = [o for o in results if o.run_uid not in self._told]
        if new:
            self.agent.tell(new)
            self._observations.extend(new)
            self._told.update(o.run_uid for o in new)

    # -- queues --------------------------------------------------------------------------------

    def _look_at_queues(self) -> None:
        now = self._clock()
        for sid, queue in self.queues.items():
            health = self._stations[sid]
            if not health.ready(now):
                continue
            try:
                self._snapshots[sid] = queue.snapshot()
                if health.down_since is not None:
                    logger.info("station %s answers again", sid)
                health.ok()
            except Exception as exc:
                wait = health.failed(exc, now)
                self._snapshots.pop(sid, None)
                logger.warning("station %s does not answer (%s); asking again in %.1f s", sid, exc, wait)

    def available(self, station: str) -> bool:
        return station in self._snapshots and self._stations[station].down_since is None

    def set_aside(self, station: str) -> bool:
        down = self._stations[station].down_since
        return down is not None and self._clock() - down >= self.settings.set_aside_after_s

    def _settle(self) -> None:
        """Match open entries with the queues and histories: queued, landed, finished, failed."""
        for entry in list(self.entries.values()):
            if entry.status not in (EntryStatus.QUEUEING, EntryStatus.QUEUED):
                continue
            snapshot = self._snapshots.get(entry.station)
            if snapshot is None:
                continue  # the station does not answer: the entry stays open
            sample = entry.sample_uid
            finished = snapshot.finished().get(sample) if sample else None
            if finished is not None:
                self._finished(entry, finished)
            elif sample in snapshot.pending_samples():
                if entry.status is EntryStatus.QUEUEING:
                    self._update(entry, status=EntryStatus.QUEUED)
            elif entry.status is EntryStatus.QUEUEING:
                # written but never added (the daemon died in between): add it now, same sample
                self._add(entry)
            else:
                vanished = "the item vanished from the station's queue and history"
                self._end_trial(entry.station, vanished)
                self._fail_attempt(entry, vanished)

    def _finished(self, entry: Entry, item: QueueItem) -> None:
        if item.exit_status == "completed":
            run = item.run_uids[-1] if item.run_uids else None
            entry = self._update(
                entry, status=EntryStatus.MEASURED, last_attempt={"outcome": "completed", "run_uid": run}
            )
            self._to_record.append((entry, entry.attempts[-1]))
            self._breaker.record(entry.station, ok=True, now_s=self._clock())
            return
        reason = item.message or f"the plan ended {item.exit_status}"
        run = item.run_uids[-1] if item.run_uids else None
        if item.exit_status not in _OPERATOR_OUTCOMES:
            self._count_failure(entry.station, reason)
        else:
            self._end_trial(entry.station, reason)
        self._fail_attempt(entry, reason, outcome=item.exit_status or "failed", run_uid=run)

    def _end_trial(self, station: str, reason: str) -> None:
        """A sample that says nothing about the station's devices ended (refused, vanished, stopped by a
        person): if it was the station's trial, it counts as failed, or the station would wait for
        a trial result forever; otherwise it does not count."""
        now = self._clock()
        trial_running = self._breaker.state(station, now) is BreakerState.HALF_OPEN
        if trial_running and not self._breaker.may_send(station, now):
            self._count_failure(station, f"its trial sample ended without a result: {reason}")

    def _count_failure(self, station: str, reason: str) -> None:
        now = self._clock()
        if self._breaker.record(station, ok=False, now_s=now, reason=reason):
            health = self._breaker.health(now)[station]
            logger.warning(
                "station %s set aside after %d failed samples in a row (last: %s); "
                "one trial sample at %s, the other stations get the budget meanwhile",
                station,
                health.failures_in_a_row,
                reason,
                self._wall(health.retry_at_s),
            )

    def _fail_attempt(
        self, entry: Entry, reason: str, *, outcome: str = "failed", run_uid: str | None = None
    ) -> None:
        entry = self._update(entry, last_attempt={"outcome": outcome, "reason": reason, "run_uid": run_uid})
        self._to_record.append((entry, entry.attempts[-1]))
        logger.warning("sample %s (decision %s) failed: %s", entry.sample_uid, entry.decision_uid, reason)
        # a retry finishes a decision already taken (and counted): it goes ahead also while draining,
        # but not onto a station set aside for failing (the decision ends failed, with why)
        if len(entry.attempts) >= self.settings.max_attempts:
            self._update(entry, status=EntryStatus.FAILED, reason=reason)
        elif not self._breaker.may_send(entry.station, self._clock()):
            why = f"{reason} (not retried: station {entry.station} is set aside for failing)"
            self._update(entry, status=EntryStatus.FAILED, reason=why)
        else:
            self._queue_new_attempt(entry)

    # -- approvals -----------------------------------------------------------------------------

    def _approvals(self) -> None:
        waiting = [e for e in self.entries.values() if e.status is EntryStatus.AWAITING_APPROVAL]
        for entry in waiting:
            current = self.journal.entry(entry.decision_uid) or entry
            verdict = current.approval.get("verdict")
            if verdict == "approved":
                if not self._breaker.may_send(current.station, self._clock()):
                    continue  # approved, but its station is set aside for failing: it waits
                self.entries[entry.decision_uid] = current
                self._queue_new_attempt(current)
            elif verdict == "denied":
                self.entries[entry.decision_uid] = current
                self._update(
                    current, status=EntryStatus.DENIED, reason=current.approval.get("note") or "denied"
                )

    # -- filling -------------------------------------------------------------------------------

    def _open_on(self, station: str) -> int:
        return sum(e.station == station and e.status.open for e in self.entries.values())

    def pending(self) -> list[Suggestion]:
        """Suggestions queued, running or awaiting approval on any station, for the agent to avoid."""
        return [self._suggestion(e) for e in self.entries.values() if e.status.open]

    def _suggestion(self, entry: Entry) -> Suggestion:
        return Suggestion(
            station=entry.station,
            target=self.agent.region.composition(dict(entry.target), entry.station),
            scan=ScanParameters.from_dict(entry.scan),
            agent=entry.agent,
            decision_uid=entry.decision_uid,
        )

    def _station_full(self, station: str) -> bool:
        limit = self.settings.max_samples_per_station
        if limit is None:
            return False
        taken = (
            EntryStatus.MEASURED,
            EntryStatus.QUEUEING,
            EntryStatus.QUEUED,
            EntryStatus.AWAITING_APPROVAL,
        )
        return sum(e.station == station and e.status in taken for e in self.entries.values()) >= limit

    def _fill(self) -> None:
        if all(self._station_full(s) for s in self.queues):
            self.stop_reason = f"every station has its {self.settings.max_samples_per_station} samples"
            return
        for station in self.queues:
            if not self.available(station):
                continue
            # a station set aside for failing gets no suggestion; after its pause, one (its trial)
            while (
                self.stop_reason is None
                and self._breaker.may_send(station, self._clock())
                and not self._station_full(station)
                and self._open_on(station) < self.settings.queue_depth
            ):
                if not self._decide(station):
                    return
                self.stop_reason = self._check_stop()

    def _decide(self, station: str) -> bool:
        """One suggestion for `station`, journalled, then queued or left for approval. False if refused."""
        (suggestion,) = self.agent.suggest(station, 1, self.pending())
        self._write_records()
        fractions = {n: suggestion.target.mass_fraction(n) for n in self.agent.region.names}
        entry = Entry(
            decision_uid=suggestion.decision_uid,
            campaign_id=self.campaign_id,
            station=suggestion.station,
            agent=suggestion.agent,
            target=fractions,
            scan=suggestion.scan.to_dict(),
            status=EntryStatus.QUEUEING,
            decided_at=time.time(),
        )
        why = self.validate(suggestion)
        if why is not None:
            self._update(entry, status=EntryStatus.REJECTED, reason=why)
            logger.error("suggestion %s refused: %s", suggestion.decision_uid, why)
            return False
        if self.settings.approval:
            self._update(entry, status=EntryStatus.AWAITING_APPROVAL, approval={"requested_at": time.time()})
            return True
        self._queue_new_attempt(entry)
        return True

    def _write_records(self) -> None:
        records = self.agent.records
        if len(records) > self._written_records:
            self.journal.write_decisions(records[self._written_records :])
            self._written_records = len(records)

    def _queue_new_attempt(self, entry: Entry) -> None:
        self._breaker.sent(entry.station, self._clock())
        attempt = Attempt(sample_uid=str(uuid.uuid4()), queued_at=time.time())
        entry = self._update(entry, status=EntryStatus.QUEUEING, attempts=(*entry.attempts, attempt))
        self._add(entry)

    def _add(self, entry: Entry) -> None:
        """Add the entry's current attempt to its station's queue (the journal already says so)."""
        sample = entry.sample_uid
        assert sample is not None
        queue = self.queues[entry.station]
        try:
            item_uid = queue.add(self.plan_for(self._suggestion(entry), sample))
        except ItemRefusedError as exc:
            self._end_trial(entry.station, f"refused by the queue server: {exc}")
            entry = self._update(entry, last_attempt={"outcome": "refused", "reason": str(exc)})
            self._to_record.append((entry, entry.attempts[-1]))
            self._update(entry, status=EntryStatus.FAILED, reason=str(exc))
            logger.error("station %s refused decision %s: %s", entry.station, entry.decision_uid, exc)
            return
        except Exception as exc:
            # not known to be queued: stays QUEUEING; the next look at the queue decides
            self._stations[entry.station].failed(exc, self._clock())
            self._snapshots.pop(entry.station, None)
            return
        self._update(entry, status=EntryStatus.QUEUED, last_attempt={"item_uid": item_uid})

    def _update(
        self, entry: Entry, *, last_attempt: Mapping[str, Any] | None = None, **changes: Any
    ) -> Entry:
        if last_attempt:
            attempts = (*entry.attempts[:-1], replace(entry.attempts[-1], **last_attempt))
            changes["attempts"] = attempts
        updated = replace(entry, **changes)
        self.journal.put(updated)
        self.entries[updated.decision_uid] = updated
        return updated

    def _write_down(self) -> None:
        """Hand finished samples to the recorder; one it fails on stays for the next round."""
        if self.recorder is None:
            self._to_record.clear()
        while self._to_record:
            entry, attempt = self._to_record[0]
            assert self.recorder is not None
            self.recorder.record(entry, attempt)
            self._to_record.pop(0)

    # -- stopping ------------------------------------------------------------------------------

    def progress(self) -> Progress:
        counts = dict.fromkeys(EntryStatus, 0)
        for e in self.entries.values():
            counts[e.status] += 1
        n_open = sum(counts[s] for s in EntryStatus if s.open)
        return Progress(
            counts[EntryStatus.MEASURED], counts[EntryStatus.FAILED], n_open, self._observations, self.agent
        )

    def _check_stop(self) -> str | None:
        progress = self.progress()
        for criterion in self.stop_criteria:
            reason = criterion(progress)
            if reason is not None:
                return reason
        return None

    # -- reporting -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        progress = self.progress()
        stations = {}
        for sid in self.queues:
            health = self._stations[sid]
            snap = self._snapshots.get(sid)
            failing = self.failing(sid)
            stations[sid] = {
                "answering": health.down_since is None,
                "set_aside": self.set_aside(sid) or failing is not None,
                "last_error": health.last_error,
                "failing": failing,
                "queued": len(snap.queued) if snap else None,
                "running": snap.running.sample_uid if snap and snap.running else None,
                "open_decisions": self._open_on(sid),
            }
        return {
            "campaign_id": self.campaign_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "state": self.state,
            "started_at": self.started_at,
            "updated_at": time.time(),
            "updated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "agent": getattr(self.agent, "name", type(self.agent).__name__),
            "measured": progress.measured,
            "failed": progress.failed,
            "open": progress.open,
            "results": len(self._observations),
            "stop_reason": self.stop_reason,
            "stations": stations,
        }

    def failing(self, station: str) -> dict[str, Any] | None:
        """Why and until when `station` is set aside for failing samples (None: it is not).

        Times are wall-clock ISO strings: the breaker keeps the daemon's clock, a person reads dates.
        """
        health = self._breaker.health(self._clock())[station]
        if health.retry_at_s is None:
            return None
        return {
            **health.to_dict(),
            "since": self._wall(health.set_aside_at_s),
            "until": self._wall(health.retry_at_s),
        }

    def _all_set_aside(self) -> str:
        parts = []
        for sid, health in self._breaker.health(self._clock()).items():
            parts.append(f"{sid} ({_failure_summary(health)})")
        return "every station is set aside for failing samples: " + "; ".join(parts)

    def _wall(self, clock_s: float | None) -> str | None:
        """A time of the daemon's clock as a wall-clock ISO string."""
        if clock_s is None:
            return None
        wall = self._wall_offset_s + clock_s
        return datetime.datetime.fromtimestamp(wall, datetime.UTC).isoformat(timespec="seconds")

    def _beat(self, *, force: bool = False) -> None:
        """Write the heartbeat when something changed, or every `HEARTBEAT_S` to show the daemon lives.

        Not every round: each write is a catalog transaction that the data store serialises
        with every RunEngine's and the analysis worker's writes.
        """
        status = self.status()
        content = {k: v for k, v in status.items() if k not in ("updated_at", "updated")}
        now = self._clock()
        if force or content != self._last_beat or now - self._last_beat_at >= HEARTBEAT_S:
            self.journal.heartbeat(status)
            self._last_beat, self._last_beat_at = content, now


def _failure_summary(health: StationHealth) -> str:
    return f"{health.failures_in_a_row} failed in a row, last: {health.last_failure or 'no reason given'}"


#: how an item ends when a person stopped it: no verdict on the station's devices
_OPERATOR_OUTCOMES = frozenset({"stopped", "aborted", "halted"})


# --- bluesky-queueserver ----------------------------------------------------------------------


class QueueServerStation:
    """A station's RE Manager, reached with `bluesky_queueserver_api.zmq.REManagerAPI`."""

    def __init__(
        self,
        station: str,
        control_addr: str,
        *,
        info_addr: str | None = None,
        user_group: str = "agent",
        user: str = "tandem agent daemon",
        timeout_s: float = 5.0,
    ) -> None:
        from bluesky_queueserver_api.zmq import REManagerAPI

        self.station = station
        self.control_addr = control_addr
        self._api = REManagerAPI(
            zmq_control_addr=control_addr, zmq_info_addr=info_addr, timeout_recv=timeout_s
        )
        self._api.user = user
        self._api.user_group = user_group

    def snapshot(self) -> QueueSnapshot:
        # queue before history, both fresh: an item moving on between the two calls is seen in one of them
        queue = self._api.queue_get(reload=True)
        history = self._api.history_get(reload=True)
        running = queue.get("running_item") or None
        return QueueSnapshot(
            queued=tuple(_item(i) for i in queue.get("items", [])),
            running=_item(running) if running else None,
            history=tuple(_item(i) for i in history.get("items", [])),
        )

    def add(self, plan: PlanRequest) -> str:
        from bluesky_queueserver_api import BPlan
        from bluesky_queueserver_api.comm_base import RequestFailedError

        try:
            response = self._api.item_add(BPlan(plan.name, *plan.args, **dict(plan.kwargs)))
        except RequestFailedError as exc:
            raise ItemRefusedError(f"{self.station}: {exc}") from None
        return str(response["item"]["item_uid"])

    def close(self) -> None:
        self._api.close()


def _item(data: Mapping[str, Any]) -> QueueItem:
    kwargs = data.get("kwargs") or {}
    result = data.get("result") or {}
    return QueueItem(
        item_uid=str(data.get("item_uid", "")),
        decision_uid=kwargs.get("decision_uid"),
        sample_uid=kwargs.get("sample_uid"),
        exit_status=result.get("exit_status"),
        message=str(result.get("msg") or ""),
        run_uids=tuple(result.get("run_uids") or ()),
    )


__all__ = [
    "AgentDaemon",
    "Attempt",
    "DaemonError",
    "DaemonSettings",
    "Entry",
    "EntryStatus",
    "InvalidVerdictError",
    "ItemRefusedError",
    "Journal",
    "PlanRequest",
    "Progress",
    "QueueItem",
    "QueueServerStation",
    "QueueSnapshot",
    "ResultSource",
    "SampleRecorder",
    "StationQueue",
    "StopCriterion",
    "Validator",
]
