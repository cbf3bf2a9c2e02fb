"""Decision records: why an agent suggested what it suggested.

One record per suggestion, JSON-ready: the results the model used (run and
sample uids), the model's hyperparameters, the acquisition value of the chosen
candidate and of the runner-up, the timing, the seed, and the agent's state
after the decision, from which the agent can be rebuilt (see `restore`). In a
campaign the records live in Tiled, one node per decision under a container;
`write_records` / `read_records` are the thin layer that puts them there.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tandem.agents.errors import AgentStateError
from tandem.catalog_layout import DECISION_SPEC, TiledContainer, create_if_absent

RECORD_SPEC = DECISION_SPEC
RECORD_VERSION = 1


@dataclass(frozen=True)
class DecisionRecord:
    decision_uid: str
    agent: str
    step: int
    station: str
    target: Mapping[str, float]
    scan: Mapping[str, Any]
    seed: int
    used: Sequence[Mapping[str, str]]  # [{"sample_uid", "run_uid", "probe"}]
    pending: Sequence[str]  # decision uids of pending suggestions taken into account
    acquisition: Mapping[str, Any]  # {"name", "chosen", "runner_up", "rejected": [...]}
    model: Mapping[str, Any]  # {"kind", "hyperparameters", "refit", "fallback", ...}
    timing_s: Mapping[str, float]
    agent_state: Mapping[str, Any]
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": RECORD_SPEC,
            "version": RECORD_VERSION,
            "decision_uid": self.decision_uid,
            "agent": self.agent,
            "step": self.step,
            "station": self.station,
            "target": dict(self.target),
            "scan": dict(self.scan),
            "seed": self.seed,
            "used": [dict(u) for u in self.used],
            "pending": list(self.pending),
            "acquisition": dict(self.acquisition),
            "model": dict(self.model),
            "timing_s": dict(self.timing_s),
            "agent_state": dict(self.agent_state),
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionRecord:
        if data.get("spec") != RECORD_SPEC:
            raise AgentStateError(f"not a tandem decision record (spec {data.get('spec')!r})")
        if int(data.get("version", 0)) > RECORD_VERSION:
            raise AgentStateError(
                f"decision record version {data['version']} is newer than this tandem reads "
                f"({RECORD_VERSION})"
            )
        try:
            return cls(
                decision_uid=str(data["decision_uid"]),
                agent=str(data["agent"]),
                step=int(data["step"]),
                station=str(data["station"]),
                target={str(k): float(v) for k, v in data["target"].items()},
                scan=dict(data["scan"]),
                seed=int(data["seed"]),
                used=[dict(u) for u in data["used"]],
                pending=[str(p) for p in data["pending"]],
                acquisition=dict(data["acquisition"]),
                model=dict(data["model"]),
                timing_s={str(k): float(v) for k, v in data["timing_s"].items()},
                agent_state=dict(data["agent_state"]),
                created=str(data["created"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentStateError(f"malformed decision record: {exc!r}") from None


def latest(records: Iterable[DecisionRecord]) -> DecisionRecord:
    """The record of the last decision (highest step)."""
    ordered = sorted(records, key=lambda r: r.step)
    if not ordered:
        raise AgentStateError("no decision records to restore from")
    return ordered[-1]


def write_records(container: TiledContainer, records: Iterable[DecisionRecord]) -> list[str]:
    """Write each record as a child node of a Tiled `container` (key = decision uid).

    Records already present are left alone (writing is idempotent), so a
    restarted agent can write everything it holds again.
    """
    written: list[str] = []
    for record in records:
        # create and let the server refuse a duplicate: listing the container first would fetch
        # every earlier record's metadata, a cost that grew with the campaign
        node = create_if_absent(container, record.decision_uid, record.to_dict(), specs=[RECORD_SPEC])
        if node is not None:
            written.append(record.decision_uid)
    return written


def read_records(container: TiledContainer, agent: str | None = None) -> list[DecisionRecord]:
    """All decision records under a Tiled `container` (optionally of one agent), by step."""
    out = []
    for key in container:
        metadata = container[key].metadata
        if metadata.get("spec") != RECORD_SPEC:
            continue
        record = DecisionRecord.from_dict(metadata)
        if agent is None or record.agent == agent:
            out.append(record)
    return sorted(out, key=lambda r: r.step)
