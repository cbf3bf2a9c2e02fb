"""Analysed results, as the agent daemon reads them and tells its agent.

`ResultSource` is where the results come from (the campaign's analysed records in Tiled,
under the phase names phase finding gives them); `ResultFeed` tells the agent each result
once, and re-tells it the earlier runs phase finding has since renamed (a merge, a split).
On a restart the agent is rebuilt from its last decision record and every result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from tandem.agents.protocol import Agent
from tandem.agents.records import DecisionRecord, latest
from tandem.observations import Observation
from tandem.protocols import Relabelling


class ResultSource(Protocol):
    """Analysed results (`tandem.analysis.store.AnalysisStore` in production)."""

    def observations(self, campaign_id: str) -> list[Observation]: ...


class ResultFeed:
    """The results of one campaign told to an agent; `observations` are those it has been told."""

    def __init__(self, results: ResultSource, campaign_id: str) -> None:
        self.results = results
        self.campaign_id = campaign_id
        self.observations: list[Observation] = []
        self._told: set[str] = set()

    def recover(
        self,
        agent: Agent,
        records: Sequence[DecisionRecord],
        restore: Callable[[DecisionRecord, Sequence[Observation]], Agent] | None,
    ) -> Agent:
        """The agent as it was: restored from the last of `records` with every result, or told them."""
        observations = self.results.observations(self.campaign_id)
        if records and restore is not None:
            agent = restore(latest(records), observations)
        else:
            agent.tell(observations)
        self.observations = list(observations)
        self._told = {o.run_uid for o in observations}
        return agent

    def read(self, agent: Agent) -> None:
        """Tell `agent` the results it has not been told, and re-tell those renamed since."""
        results = self.results.observations(self.campaign_id)
        # phase finding may rename earlier runs (a merge, a split): re-tell the agent those
        told = {o.run_uid: o for o in self.observations}
        renamed = {
            o.run_uid: str(o.label)
            for o in results
            if o.run_uid in told and o.label is not None and o.label != told[o.run_uid].label
        }
        if renamed and isinstance(agent, Relabelling):
            agent.relabel(renamed)
            self.observations = [
                replace(o, label=renamed[o.run_uid], label_probabilities={renamed[o.run_uid]: 1.0})
                if o.run_uid in renamed
                else o
                for o in self.observations
            ]
        new = [o for o in results if o.run_uid not in self._told]
        if new:
            agent.tell(new)
            self.observations.extend(new)
            self._told.update(o.run_uid for o in new)
