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
handed to a `SampleRecorder` (the campaign ledger, which `tandem campaign report` reads);
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
The parts: the journal (`tandem.agents.journal`), a station's queue
(`tandem.agents.station_queue`), the stations as last seen (`daemon_stations`), each
decision's samples on them (`daemon_dispatch`), the results told to the agent
(`daemon_results`), the settings (`daemon_settings`); this module is the loop, which
decides.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tandem.agents.daemon_dispatch import Dispatch, SampleRecorder
from tandem.agents.daemon_results import ResultFeed, ResultSource
from tandem.agents.daemon_settings import DaemonError, DaemonSettings, OutageBackoff
from tandem.agents.daemon_stations import StationWatch
from tandem.agents.journal import Entry, EntryStatus, Journal
from tandem.agents.protocol import Agent
from tandem.agents.records import DecisionRecord
from tandem.agents.station_queue import (
    PlanRequest,
    StationQueue,
)
from tandem.observations import Observation
from tandem.suggestions import ScanParameters, Suggestion

logger = logging.getLogger(__name__)

#: the longest a running daemon leaves its heartbeat unwritten (seconds)
HEARTBEAT_S = 10.0


@dataclass(frozen=True)
class Progress:
    """What the stop criteria look at."""

    measured: int
    failed: int
    open: int
    observations: Sequence[Observation]
    agent: Agent
    #: the latest settled decisions that failed, one after another (open ones are passed over)
    failures_in_a_row: int = 0
    #: the reason the latest failed decision gave
    last_failure: str | None = None


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
        self._clock = clock
        self._stations = StationWatch(
            self.queues,
            self.settings,
            clock=self._now,
            wall_offset_s=time.time() - clock(),
        )
        self._dispatch = Dispatch(journal, self._stations, self.settings, plan=self._plan, recorder=recorder)
        self._feed = ResultFeed(results, campaign_id)
        #: the stop came from every station being set aside, not from the campaign's criteria
        self.stopped_on_faults = False
        self._store = OutageBackoff(self.settings)
        self._written_records = 0
        self.stop_reason: str | None = None
        self._last_beat: dict[str, Any] = {}
        self._last_beat_at = -math.inf
        self.state = "starting"
        self.started_at = time.time()

    def _now(self) -> float:
        """The daemon's clock, looked up at each call: its parts keep it if it is replaced."""
        return self._clock()

    # -- restart -------------------------------------------------------------------------------

    def recover(self) -> None:
        """Rebuild the state from Tiled: the journal, the agent (its last record plus every result)."""
        self._dispatch.recover()
        records = self.journal.decision_records()
        self.agent = self._feed.recover(self.agent, records, self._restore_agent)
        self._written_records = len(self.agent.records)
        logger.info(
            "recovered %d decisions (%d open) and %d results",
            len(self._dispatch.entries),
            len(self._dispatch.open_entries()),
            len(self._feed.observations),
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
        self._feed.read(self.agent)
        self._stations.look()
        self._dispatch.settle()
        if self.stop_reason is None and (every := self._stations.all_failing()) is not None:
            self.stop_reason = every
            self.stopped_on_faults = True
            logger.error("stopping: %s", self.stop_reason)
        self._dispatch.take_verdicts()
        if self.stop_reason is None:
            self.stop_reason = self._check_stop()
        paused = self.journal.pause() if self.stop_reason is None else None
        if self.stop_reason is None and paused is None:
            self._fill()
        self._dispatch.write_down()
        if paused is not None:
            # results are still read and recorded, queued items run on: only new decisions wait
            self.state = f"paused by {paused.get('by', '?')}: no new decisions until `tandem agent resume`"
        else:
            self.state = "running" if self.stop_reason is None else f"draining: {self.stop_reason}"
        self._beat()
        return self.stop_reason is not None and not self._dispatch.open_entries()

    # -- the stations ---------------------------------------------------------------------------

    def set_aside(self, station: str) -> bool:
        """Whether `station` has not answered for `set_aside_after_s`."""
        return self._stations.set_aside(station)

    # -- filling -------------------------------------------------------------------------------

    def pending(self) -> list[Suggestion]:
        """Suggestions queued, running or awaiting approval on any station, for the agent to avoid."""
        return [self._suggestion(e) for e in self._dispatch.open_entries()]

    def _suggestion(self, entry: Entry) -> Suggestion:
        return Suggestion(
            station=entry.station,
            target=self.agent.region.composition(dict(entry.target), entry.station),
            scan=ScanParameters.from_dict(entry.scan),
            agent=entry.agent,
            decision_uid=entry.decision_uid,
        )

    def _plan(self, entry: Entry, sample_uid: str) -> PlanRequest:
        return self.plan_for(self._suggestion(entry), sample_uid)

    def _fill(self) -> None:
        if all(self._dispatch.full(s) for s in self.queues):
            self.stop_reason = f"every station has its {self.settings.max_samples_per_station} samples"
            return
        for station in self.queues:
            if not self._stations.available(station):
                continue
            # a station set aside for failing gets no suggestion; after its pause, one (its trial)
            while (
                self.stop_reason is None
                and self._stations.may_send(station)
                and not self._dispatch.full(station)
                and self._dispatch.open_on(station) < self.settings.queue_depth
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
            self._dispatch.update(entry, status=EntryStatus.REJECTED, reason=why)
            logger.error("suggestion %s refused: %s", suggestion.decision_uid, why)
            return False
        if self.settings.approval:
            self._dispatch.update(
                entry, status=EntryStatus.AWAITING_APPROVAL, approval={"requested_at": time.time()}
            )
            return True
        self._dispatch.queue_new_attempt(entry)
        return True

    def _write_records(self) -> None:
        records = self.agent.records
        if len(records) > self._written_records:
            self.journal.write_decisions(records[self._written_records :])
            self._written_records = len(records)

    # -- stopping ------------------------------------------------------------------------------

    def progress(self) -> Progress:
        counts = dict.fromkeys(EntryStatus, 0)
        for e in self._dispatch.entries.values():
            counts[e.status] += 1
        n_open = sum(counts[s] for s in EntryStatus if s.open)
        streak, last = 0, None
        for e in reversed(self._dispatch.entries.values()):
            if e.status is EntryStatus.MEASURED:
                break
            if e.status is EntryStatus.FAILED:
                streak += 1
                last = last or e.reason
        return Progress(
            counts[EntryStatus.MEASURED],
            counts[EntryStatus.FAILED],
            n_open,
            self._feed.observations,
            self.agent,
            failures_in_a_row=streak,
            last_failure=last,
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
        stations = {sid: self._stations.status(sid, self._dispatch.open_on(sid)) for sid in self.queues}
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
            "results": len(self._feed.observations),
            "stop_reason": self.stop_reason,
            "stations": stations,
        }

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


__all__ = [
    "AgentDaemon",
    "Progress",
    "StopCriterion",
    "Validator",
]
