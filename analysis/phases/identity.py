"""Stable phase names over a campaign: a new grouping is matched to the phases already named.

Grouping (`tandem.analysis.phases.grouping`) is redone over every run each time runs
arrive, and numbers its groups afresh. A `PhaseBook` keeps the names: each new group
takes over the name of the phase whose runs it holds most of (Hungarian matching on
the overlap of members), so a run keeps its phase's name for as long as the data
agree. When they do not, the change is an event, never silent:

* ``new``: a group of runs only, none of which had a phase;
* ``split``: a phase's runs now fall in two or more groups; the largest part keeps
  the name, each other part is a new phase;
* ``merge``: a phase whose runs now all sit in another phase's group; its name is retired;
* ``move``: single runs that changed phase without a merge or split (a run near a
  boundary that the newer data place on its other side).

Every earlier run whose name changes appears in exactly one event of that update,
with its old and new name (the property tests check this in random orders of arrival).

Names stay human: a new phase is named by what its runs show where their morphology
(the best fitted model of each run, `tandem.analysis.labels`) agrees — ``sphere``,
then ``sphere-2`` for a second phase of spheres — and numbered where it does not
(``phase-1``). A name is given once and never reused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

#: the share of a phase's runs whose morphology must agree for the phase to be named after it
MORPHOLOGY_AGREEMENT = 2.0 / 3.0
#: morphologies that say nothing about a structure
_UNNAMED = {None, "", "unresolved", "no-contrast"}


@dataclass(frozen=True)
class PhaseEvent:
    """A change to the phases of runs that already had one (or a phase's first appearance)."""

    kind: str
    #: the phases before (`new`: none)
    before: tuple[str, ...]
    #: the phases after (`merge`: the phase the others joined)
    after: tuple[str, ...]
    #: the runs whose phase this event changed or created, with their phase before (None: none yet)
    runs: Mapping[str, str | None] = field(default_factory=dict)
    #: how many runs the campaign's phase finding had seen when it happened
    at_runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "before": list(self.before),
            "after": list(self.after),
            "runs": dict(self.runs),
            "at_runs": self.at_runs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseEvent:
        return cls(
            kind=str(data["kind"]),
            before=tuple(data.get("before", ())),
            after=tuple(data.get("after", ())),
            runs={str(k): (None if v is None else str(v)) for k, v in (data.get("runs") or {}).items()},
            at_runs=int(data.get("at_runs", 0)),
        )


class PhaseNames:
    """Hands out phase names, never the same one twice (shared by the probes of a campaign)."""

    def __init__(self, taken: Sequence[str] = ()) -> None:
        self._taken: set[str] = set(taken)

    def new(self, morphologies: Sequence[str | None]) -> str:
        known = [m for m in morphologies if m not in _UNNAMED]
        base = "phase"
        if known:
            top, count = Counter(known).most_common(1)[0]
            if count >= MORPHOLOGY_AGREEMENT * len(morphologies):
                base = str(top)
        if base != "phase" and base not in self._taken:
            self._taken.add(base)
            return base
        n = 1 if base == "phase" else 2
        while f"{base}-{n}" in self._taken:
            n += 1
        name = f"{base}-{n}"
        self._taken.add(name)
        return name

    @property
    def taken(self) -> frozenset[str]:
        return frozenset(self._taken)


class PhaseBook:
    """The named phases of one probe's runs, kept stable across regroupings."""

    def __init__(self, names: PhaseNames | None = None) -> None:
        self.names = names or PhaseNames()
        self.labels: dict[str, str] = {}
        self.events: list[PhaseEvent] = []

    @property
    def phases(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.labels.values())))

    def update(
        self, groups: Mapping[str, int], morphologies: Mapping[str, str | None] | None = None
    ) -> list[PhaseEvent]:
        """Take a new grouping of runs (run uid → group number); return the events it caused.

        Runs absent from `groups` (left out of phase finding) lose their phase.
        """
        morph = morphologies or {}
        previous = {uid: name for uid, name in self.labels.items() if uid in groups}
        group_ids = sorted(set(groups.values()))
        old_names = sorted(set(previous.values()))
        members: dict[int, list[str]] = {g: [] for g in group_ids}
        for uid, g in groups.items():
            members[g].append(uid)
        overlap = np.zeros((len(old_names), len(group_ids)), dtype=np.int64)
        o_index = {name: i for i, name in enumerate(old_names)}
        g_index = {g: j for j, g in enumerate(group_ids)}
        for uid, name in previous.items():
            overlap[o_index[name], g_index[groups[uid]]] += 1
        name_of: dict[int, str] = {}
        if overlap.size:
            rows, cols = linear_sum_assignment(overlap, maximize=True)
            for r, c in zip(rows, cols, strict=True):
                if overlap[r, c] > 0:
                    name_of[group_ids[c]] = old_names[r]
        events: list[PhaseEvent] = []
        at = len(groups)
        for g in group_ids:
            if g in name_of:
                continue
            name = self.names.new([morph.get(uid) for uid in members[g]])
            name_of[g] = name
            parents = sorted({previous[uid] for uid in members[g] if uid in previous})
            moved = {uid: previous.get(uid) for uid in members[g]}
            events.append(PhaseEvent("split" if parents else "new", tuple(parents), (name,), moved, at))
        new_labels = {uid: name_of[g] for uid, g in groups.items()}
        explained = {uid for e in events for uid in e.runs}
        for name in old_names:
            if name in name_of.values():
                continue
            # no group inherited this name: its runs joined other phases
            runs = {uid: name for uid, old in previous.items() if old == name and uid not in explained}
            targets = Counter(new_labels[uid] for uid in runs)
            into = tuple(t for t, _ in targets.most_common())
            events.append(PhaseEvent("merge", (name,), into, runs, at))
            explained |= set(runs)
        moves: dict[str, str | None] = {
            uid: old for uid, old in previous.items() if new_labels[uid] != old and uid not in explained
        }
        if moves:
            after = tuple(sorted({new_labels[uid] for uid in moves}))
            before = tuple(sorted({old for old in moves.values() if old is not None}))
            events.append(PhaseEvent("move", before, after, moves, at))
        self.labels = new_labels
        self.events.extend(events)
        return events
