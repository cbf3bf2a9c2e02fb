"""The agent daemon's journal in Tiled: one entry per decision, from suggestion to result.

Before an item is queued its decision is written here (``campaigns/<id>/queue/<decision
uid>``, with the agent's decision record beside it in ``decisions/``); each `Entry` keeps
its attempts (one sample, one queue item each) and how they ended. A restarted daemon
reads the journal to find what is still open. The journal also holds the daemon's
heartbeat (what `tandem agent status` shows), a scientist's pause of its decisions and
verdicts on suggestions awaiting approval.

Verdicts and the pause live in the campaign's control node, which on a store served with roles
(`tandem.tiled_roles`) only a scientist's key writes; the daemon's entries (the agent's) take
their verdict from there. The journal also asks the server whose key it writes with, refuses any
but a scientist's (`ApprovalRefusedError`), and records the principal and role with the verdict.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from tandem.agents.records import DecisionRecord, read_records, write_records
from tandem.catalog_layout import (
    CONTAINER_SPECS,
    CONTROL,
    DECISIONS,
    HEARTBEAT,
    JOURNAL,
    QUEUED_DECISION_SPEC,
    TiledContainer,
    campaign_container,
    campaign_node,
    create_or_replace_metadata,
    find_campaign,
)
from tandem.errors import TandemError
from tandem.tiled_keys import key_identity
from tandem.tiled_roles import TandemRole

__all__ = [
    "ENTRY_SPEC",
    "ApprovalRefusedError",
    "Attempt",
    "Entry",
    "EntryStatus",
    "InvalidVerdictError",
    "Journal",
]

#: the spec of a journal entry (the layout, `tandem.catalog_layout`, names every node and spec)
ENTRY_SPEC = QUEUED_DECISION_SPEC


class InvalidVerdictError(TandemError, ValueError):
    """An approve/deny for a decision that is not waiting for one."""


class ApprovalRefusedError(TandemError, PermissionError):
    """A verdict or pause given with a key that is not a scientist's (a store served with roles)."""


# --- one decision, from suggestion to result ---------------------------------------------------


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

#: the key of the control node's metadata that holds the verdicts, by decision uid
VERDICTS = "verdicts"
#: what a verdict puts in an entry's approval
VERDICT_KEYS = ("verdict", "by", "principal", "role", "at", "note")


def _with_verdict(entry: Entry, verdict: Mapping[str, Any] | None) -> Entry:
    """`entry` with the verdict the control node holds for it.

    A suggestion awaiting approval takes its verdict from the control node only, never from its
    own entry: under roles the agent writes the entries but not the control node, so a verdict it
    wrote into an entry does not count. An entry past approval keeps the verdict it was acted on.
    """
    approval = dict(entry.approval)
    if entry.status is EntryStatus.AWAITING_APPROVAL:
        approval = {k: v for k, v in approval.items() if k not in VERDICT_KEYS}
    approval.update(verdict or {})
    return entry if approval == entry.approval else replace(entry, approval=approval)


class Journal:
    """The daemon's records of one campaign in Tiled: decisions, their queue entries, its heartbeat.

    ``campaigns/<id>/`` is shared with the in-process campaign runner's ledger (same
    metadata), so a campaign keeps one home whichever way it runs.
    """

    def __init__(
        self, client: TiledContainer, campaign_id: str, campaign_record: Mapping[str, Any] | None = None
    ) -> None:
        self.node = campaign_node(client, campaign_id, campaign_record)
        self.campaign_id = campaign_id
        self.entries_node = campaign_container(self.node, JOURNAL)
        self.decisions = campaign_container(self.node, DECISIONS)
        # made here, by the daemon: under roles a scientist writes the control but cannot make it
        # (the campaign's node is the agent's)
        campaign_container(self.node, CONTROL)

    @classmethod
    def find(cls, client: TiledContainer, campaign_id: str) -> Journal | None:
        """The journal of an existing campaign (None if the catalog has none)."""
        if find_campaign(client, campaign_id) is None:
            return None
        return cls(client, campaign_id)

    def entries(self) -> list[Entry]:
        verdicts = self._verdicts()
        out = []
        for _key, node in self.entries_node.items():
            if node.metadata.get("spec") == ENTRY_SPEC:
                entry = Entry.from_dict(node.metadata)
                out.append(_with_verdict(entry, verdicts.get(entry.decision_uid)))
        return sorted(out, key=lambda e: e.decided_at)

    def entry(self, decision_uid: str) -> Entry | None:
        try:
            entry = Entry.from_dict(self.entries_node[decision_uid].metadata)
        except KeyError:
            return None
        return _with_verdict(entry, self._verdicts().get(decision_uid))

    def put(self, entry: Entry) -> None:
        # race-safe: a restarted daemon may write an entry its predecessor was writing
        create_or_replace_metadata(self.entries_node, entry.decision_uid, entry.to_dict())

    def write_decisions(self, records: Iterable[DecisionRecord]) -> None:
        write_records(self.decisions, records)

    def decision_records(self) -> list[DecisionRecord]:
        return read_records(self.decisions)

    def _scientist(self, action: str) -> dict[str, Any]:
        """Who gives a verdict or pause, from the key the journal writes with; refuses a non-scientist.

        On a store served without roles there is one key and no principal: recorded as such.
        """
        identity = key_identity(self.node)
        if identity is None:
            return {"principal": None, "role": "single-user key"}
        if identity.role is not TandemRole.SCIENTIST:
            raise ApprovalRefusedError(
                f"only a scientist's key may {action}; this key is the {identity.describe()}. "
                "Issue one with `tandem data keys issue scientist --directory DIR` and set "
                "TANDEM_TILED_API_KEY to it"
            )
        return {"principal": identity.principal, "role": identity.role.value}

    def set_verdict(self, decision_uid: str, approved: bool, *, by: str, note: str = "") -> Entry:
        """Record a scientist's verdict on a suggestion waiting for approval.

        `by` is the name the scientist gives; the principal and role behind the key are recorded
        beside it (a store served with roles refuses any key but a scientist's).
        """
        who = self._scientist("approve or deny a suggestion")
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
        verdict = {
            "verdict": "approved" if approved else "denied",
            "by": by,
            **who,
            "at": time.time(),
            "note": note,
        }
        # into the control node (a scientist's only), read fresh so the patch adds just this verdict
        campaign_container(self.node, CONTROL).update_metadata(metadata={VERDICTS: {decision_uid: verdict}})
        return _with_verdict(entry, verdict)

    def heartbeat(self, state: Mapping[str, Any]) -> None:
        node = campaign_container(self.node, HEARTBEAT)
        node.replace_metadata(metadata={"spec": CONTAINER_SPECS[HEARTBEAT], **dict(state)})

    def set_paused(self, paused: bool, *, by: str, note: str = "") -> dict[str, Any]:
        """Pause (or resume) the daemon's new decisions; it reads this every round."""
        who = self._scientist("pause or resume the agent daemon")
        control = {
            "spec": CONTAINER_SPECS[CONTROL],
            "paused": paused,
            "by": by,
            **who,
            "at": time.time(),
            "note": note,
        }
        # updated, not replaced: the control node also holds the verdicts
        campaign_container(self.node, CONTROL).update_metadata(metadata=control)
        return control

    def _control(self) -> dict[str, Any]:
        try:
            return dict(self.node[CONTROL].metadata)
        except KeyError:
            return {}

    def _verdicts(self) -> dict[str, Mapping[str, Any]]:
        """The verdicts a scientist gave, by decision uid.

        Only verdicts added to the control node after it was made count. The node is made by the
        daemon (the agent's key may make nodes in its campaign, with any metadata), and from then
        on only a scientist's key may change it; Tiled keeps the metadata it was made with as its
        first revision, so a verdict the agent put there at its making is told apart and ignored.
        """
        try:
            control = self.node[CONTROL]
        except KeyError:
            return {}
        verdicts = dict(control.metadata.get(VERDICTS) or {})
        if not verdicts:
            return {}
        try:
            made_with = control.metadata_revisions[0]["attributes"]["metadata"]  # type: ignore[attr-defined]
        except ValueError:  # never changed since it was made: all it holds is its maker's
            return {}
        forged = dict(made_with.get(VERDICTS) or {})
        return {uid: verdict for uid, verdict in verdicts.items() if forged.get(uid) != verdict}

    def pause(self) -> dict[str, Any] | None:
        """Who paused the daemon, when and why (None while it is not paused)."""
        control = self._control()
        control.pop(VERDICTS, None)
        return control if control.get("paused") else None

    def last_heartbeat(self) -> dict[str, Any] | None:
        if HEARTBEAT not in self.node:
            return None
        return dict(self.node[HEARTBEAT].metadata)
