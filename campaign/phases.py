"""A campaign's phases: its analysed runs grouped into phases as they arrive, the agent told, Tiled told.

Analysis labels each run with the structure its own curve shows (its morphology, the
*description*); which runs share a phase is decided across the campaign from the curves
(`tandem.analysis.phases`). Each time results reach the agent, the new runs join phase
finding, and the agent learns them under their phase names. When phase finding renames
earlier runs (a merge, a split, a run moved across a boundary, two probes' phases
matched), the agent is re-told those runs (`Relabelling`), and the events are written to
the campaign's ledger in Tiled with the phases' state, from which a resumed campaign
keeps its names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from tandem.agents.protocol import Agent
from tandem.analysis.phases import Exclusion, PhaseFinder, PhaseFinding, PhaseInput, PhaseSettings
from tandem.analysis.store import AnalysisRecord
from tandem.observations import NO_CONTRAST, AnalysisStatus, Observation
from tandem.protocols import Relabelling

logger = logging.getLogger(__name__)

#: what writes events and state to Tiled (`Ledger.record_phases`), possibly later, in order
PhaseWriter = Callable[[Sequence[dict[str, Any]], dict[str, Any]], None]


class CampaignPhases:
    """Phase finding over a campaign's runs, wired to its agent and its ledger.

    Without an agent (the daemon's result source) nothing is re-told: the caller compares
    `finding.labels` with what it told before.
    """

    def __init__(
        self, agent: Agent | None, write: PhaseWriter, settings: PhaseSettings | None = None
    ) -> None:
        self.agent = agent
        self.finder = PhaseFinder(settings)
        self._write = write
        self._seq = 0

    def restore(self, state: dict[str, Any]) -> None:
        """Keep the names of a campaign that is resumed (call before its runs are given again)."""
        if state:
            self.finder.restore(state)
            self._seq = int(state.get("n_events", 0))

    @property
    def finding(self) -> PhaseFinding:
        return self.finder.finding

    def learn(self, results: Sequence[tuple[AnalysisRecord, Observation]]) -> list[Observation]:
        """The observations of new results under their phase names; earlier runs re-told if renamed.

        A flat curve (no structure above its background) is told as `no-contrast`, a label of its
        own; a result phase finding leaves out for bad data reaches the agent as a failed
        observation with the reason, so that it is recorded and never modelled.
        """
        inputs = [
            PhaseInput(obs.run_uid, obs.probe.value, obs.composition, record.curve, record.label)
            for record, obs in results
            if obs.ok and record.curve is not None and obs.run_uid not in self.finder
        ]
        finding = self.finder.add(inputs)
        new = {item.run_uid for item in inputs}
        out = []
        for _record, obs in results:
            if not obs.ok:
                out.append(obs)
                continue
            name = finding.labels.get(obs.run_uid)
            if name is not None:
                out.append(replace(obs, label=name, label_probabilities={name: 1.0}))
                continue
            reason, message = finding.excluded.get(obs.run_uid, (None, "no curve to compare"))
            if reason is Exclusion.FLAT:
                # no structure above the background: what this probe sees here is nothing, which a
                # map can use (a region the probe is blind to, or below an aggregation threshold);
                # it is a label of its own, never merged into a phase of curves with structure
                out.append(replace(obs, label=NO_CONTRAST, label_probabilities={NO_CONTRAST: 1.0}))
                continue
            why = f"left out of phase finding ({reason.value if reason else 'no curve'}): {message}"
            out.append(
                replace(
                    obs, status=AnalysisStatus.FAILED, label=None, label_probabilities={}, failure_reason=why
                )
            )
        if finding.events:
            earlier = {uid: name for uid, name in finding.labels.items() if uid not in new}
            if self.agent is not None and isinstance(self.agent, Relabelling):
                changed = self.agent.relabel(earlier)
                if changed:
                    logger.info(
                        "phase finding renamed %d earlier results: the agent was re-told them", changed
                    )
            self._record(finding)
        return out

    def _record(self, finding: PhaseFinding) -> None:
        events = []
        for event in finding.events:
            self._seq += 1
            events.append({"seq": self._seq, **event.to_dict()})
        self._write(events, self.finder.state())
