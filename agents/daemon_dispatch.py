"""Each decision's samples on the stations' queues, kept in step with the journal.

`Dispatch` holds the journal's entries by decision uid and moves them along: a new
attempt is written to the journal (``queueing``) *before* it is added to its station's
queue, so a daemon killed in between finds it on restart and adds it then, with the same
sample uid; each round the entries are matched with the queues and histories
(`settle`): landed, measured, failed with its reason (and retried if the settings say
so), or vanished; suggestions awaiting approval go on as a scientist's verdict says
(`tandem agent approve` / `deny`). Each finished sample is handed to a `SampleRecorder`
(the campaign ledger in production); one it fails on is handed again next round, and
one finished before a kill but not yet written down is written after the restart.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from tandem.agents.daemon_settings import DaemonSettings
from tandem.agents.daemon_stations import StationWatch
from tandem.agents.journal import Attempt, Entry, EntryStatus, Journal
from tandem.agents.station_queue import ItemRefusedError, PlanRequest, QueueItem

logger = logging.getLogger(__name__)

#: how an item ends when a person stopped it: no verdict on the station's devices
_OPERATOR_OUTCOMES = frozenset({"stopped", "aborted", "halted"})


class SampleRecorder(Protocol):
    """Where each finished sample is written down for the campaign's report (the ledger in production)."""

    def record(self, entry: Entry, attempt: Attempt) -> None:
        """Write down `attempt` of `entry`, which has finished (its `outcome` is set); idempotent."""
        ...

    def recorded(self) -> set[str]:
        """The sample uids already written down (a restarted daemon writes the rest)."""
        ...


class Dispatch:
    """The entries of the journal, queued, settled and written down; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        stations: StationWatch,
        settings: DaemonSettings,
        *,
        plan: Callable[[Entry, str], PlanRequest],
        recorder: SampleRecorder | None = None,
    ) -> None:
        self.journal = journal
        self.stations = stations
        self.settings = settings
        #: the plan call for an entry's sample, by sample uid
        self._plan = plan
        self.recorder = recorder
        self.entries: dict[str, Entry] = {}
        #: finished attempts not yet written down by the recorder (retried every round)
        self._to_record: list[tuple[Entry, Attempt]] = []

    def recover(self) -> None:
        """Read the entries from the journal, and the finished samples the recorder lacks."""
        self.entries = {e.decision_uid: e for e in self.journal.entries()}
        if self.recorder is not None:
            # finished before a kill but not yet written down: the journal says so, the ledger does not
            known = self.recorder.recorded()
            self._to_record = [
                (e, a)
                for e in self.entries.values()
                for a in e.attempts
                if a.outcome is not None and a.sample_uid not in known
            ]

    # -- counting ------------------------------------------------------------------------------

    def open_entries(self) -> list[Entry]:
        """The entries queued, running or awaiting approval."""
        return [e for e in self.entries.values() if e.status.open]

    def open_on(self, station: str) -> int:
        return sum(e.station == station and e.status.open for e in self.entries.values())

    def full(self, station: str) -> bool:
        """Whether `station` has taken its `max_samples_per_station` (measured or open)."""
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

    # -- queueing ------------------------------------------------------------------------------

    def update(self, entry: Entry, *, last_attempt: Mapping[str, Any] | None = None, **changes: Any) -> Entry:
        """Change `entry` (and its last attempt), in the journal first."""
        if last_attempt:
            attempts = (*entry.attempts[:-1], replace(entry.attempts[-1], **last_attempt))
            changes["attempts"] = attempts
        updated = replace(entry, **changes)
        self.journal.put(updated)
        self.entries[updated.decision_uid] = updated
        return updated

    def queue_new_attempt(self, entry: Entry) -> None:
        """A new sample for `entry`, journalled, then added to its station's queue."""
        self.stations.sent(entry.station)
        attempt = Attempt(sample_uid=str(uuid.uuid4()), queued_at=time.time())
        entry = self.update(entry, status=EntryStatus.QUEUEING, attempts=(*entry.attempts, attempt))
        self._add(entry)

    def _add(self, entry: Entry) -> None:
        """Add the entry's current attempt to its station's queue (the journal already says so)."""
        sample = entry.sample_uid
        assert sample is not None
        queue = self.stations.queues[entry.station]
        try:
            item_uid = queue.add(self._plan(entry, sample))
        except ItemRefusedError as exc:
            self.stations.end_trial(entry.station, f"refused by the queue server: {exc}")
            entry = self.update(entry, last_attempt={"outcome": "refused", "reason": str(exc)})
            self._to_record.append((entry, entry.attempts[-1]))
            self.update(entry, status=EntryStatus.FAILED, reason=str(exc))
            logger.error("station %s refused decision %s: %s", entry.station, entry.decision_uid, exc)
            return
        except Exception as exc:
            # not known to be queued: stays QUEUEING; the next look at the queue decides
            self.stations.unreachable(entry.station, exc)
            return
        self.update(entry, status=EntryStatus.QUEUED, last_attempt={"item_uid": item_uid})

    def take_verdicts(self) -> None:
        """Queue the suggestions a scientist approved (unless their station is set aside); end the denied."""
        waiting = [e for e in self.entries.values() if e.status is EntryStatus.AWAITING_APPROVAL]
        for entry in waiting:
            current = self.journal.entry(entry.decision_uid) or entry
            verdict = current.approval.get("verdict")
            if verdict == "approved":
                if not self.stations.may_send(current.station):
                    continue  # approved, but its station is set aside for failing: it waits
                self.entries[entry.decision_uid] = current
                self.queue_new_attempt(current)
            elif verdict == "denied":
                self.entries[entry.decision_uid] = current
                self.update(
                    current, status=EntryStatus.DENIED, reason=current.approval.get("note") or "denied"
                )

    # -- settling ------------------------------------------------------------------------------

    def settle(self) -> None:
        """Match open entries with the queues and histories: queued, landed, finished, failed."""
        for entry in list(self.entries.values()):
            if entry.status not in (EntryStatus.QUEUEING, EntryStatus.QUEUED):
                continue
            snapshot = self.stations.snapshot(entry.station)
            if snapshot is None:
                continue  # the station does not answer: the entry stays open
            sample = entry.sample_uid
            finished = snapshot.finished().get(sample) if sample else None
            if finished is not None:
                self._finished(entry, finished)
            elif sample in snapshot.pending_samples():
                if entry.status is EntryStatus.QUEUEING:
                    self.update(entry, status=EntryStatus.QUEUED)
            elif entry.status is EntryStatus.QUEUEING:
                # written but never added (the daemon died in between): add it now, same sample
                self._add(entry)
            else:
                vanished = "the item vanished from the station's queue and history"
                self.stations.end_trial(entry.station, vanished)
                self._fail_attempt(entry, vanished)

    def _finished(self, entry: Entry, item: QueueItem) -> None:
        if item.exit_status == "completed":
            run = item.run_uids[-1] if item.run_uids else None
            entry = self.update(
                entry, status=EntryStatus.MEASURED, last_attempt={"outcome": "completed", "run_uid": run}
            )
            self._to_record.append((entry, entry.attempts[-1]))
            self.stations.succeeded(entry.station)
            return
        reason = item.message or f"the plan ended {item.exit_status}"
        run = item.run_uids[-1] if item.run_uids else None
        if item.exit_status not in _OPERATOR_OUTCOMES:
            self.stations.count_failure(entry.station, reason)
        else:
            self.stations.end_trial(entry.station, reason)
        self._fail_attempt(entry, reason, outcome=item.exit_status or "failed", run_uid=run)

    def _fail_attempt(
        self, entry: Entry, reason: str, *, outcome: str = "failed", run_uid: str | None = None
    ) -> None:
        entry = self.update(entry, last_attempt={"outcome": outcome, "reason": reason, "run_uid": run_uid})
        self._to_record.append((entry, entry.attempts[-1]))
        logger.warning("sample %s (decision %s) failed: %s", entry.sample_uid, entry.decision_uid, reason)
        # a retry finishes a decision already taken (and counted): it goes ahead also while draining,
        # but not onto a station set aside for failing (the decision ends failed, with why)
        if len(entry.attempts) >= self.settings.max_attempts:
            self.update(entry, status=EntryStatus.FAILED, reason=reason)
        elif not self.stations.may_send(entry.station):
            why = f"{reason} (not retried: station {entry.station} is set aside for failing)"
            self.update(entry, status=EntryStatus.FAILED, reason=why)
        else:
            self.queue_new_attempt(entry)

    def write_down(self) -> None:
        """Hand finished samples to the recorder; one it fails on stays for the next round."""
        if self.recorder is None:
            self._to_record.clear()
        while self._to_record:
            entry, attempt = self._to_record[0]
            assert self.recorder is not None
            self.recorder.record(entry, attempt)
            self._to_record.pop(0)
