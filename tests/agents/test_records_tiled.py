"""Decision records in a real Tiled server: an agent restored from them makes the same next decision."""

from __future__ import annotations

import numpy as np
import pytest
from tiled.client.container import Container

from tandem.agents.errors import AgentStateError
from tandem.agents.phase_mapping import PhaseMappingAgent, PhaseMappingSettings
from tandem.agents.records import DecisionRecord, latest, read_records, write_records

from .conftest import default_region, observe

FAST = PhaseMappingSettings(n_initial=6, num_restarts=3, raw_samples=64, maxiter=40)


@pytest.mark.slow
def test_restore_from_tiled_records_gives_the_same_next_suggestion(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    region = default_region()
    rng = np.random.default_rng(3)
    agent = PhaseMappingAgent(region, seed=11, settings=FAST)
    results = {}
    for _ in range(14):
        (s,) = agent.suggest("sans")
        obs = observe(region.vector({n: s.target.mass_fraction(n) for n in region.names}))
        results[obs.run_uid] = obs
        agent.tell([obs])
    decisions = tiled_client.create_container(unique_campaign_id).create_container("decisions")
    assert len(write_records(decisions, agent.records)) == 14
    assert write_records(decisions, agent.records) == []  # idempotent: a restarted agent may write again

    # the agent process dies here; a new one finds the latest record and the results it names
    records = read_records(tiled_client[unique_campaign_id]["decisions"], agent="phase_mapping")
    assert [r.to_dict() for r in records] == [r.to_dict() for r in agent.records]
    last = latest(records)
    used = [results[u["run_uid"]] for u in last.used]
    since = [o for uid, o in results.items() if uid not in {u["run_uid"] for u in last.used}]
    restored = PhaseMappingAgent.from_state(last.agent_state, region, observations=used)
    restored.tell(since)

    more = observe(region.lower + rng.random(3) * (region.upper - region.lower))
    agent.tell([more])
    restored.tell([more])
    expected, again = agent.suggest("sans")[0], restored.suggest("sans")[0]
    for name in region.names:
        assert again.target.mass_fraction(name) == pytest.approx(
            expected.target.mass_fraction(name), abs=1e-7
        )
    assert restored.records[-1].step == agent.records[-1].step == 14


def test_records_reject_foreign_or_future_metadata() -> None:
    with pytest.raises(AgentStateError, match="not a tandem decision record"):
        DecisionRecord.from_dict({"spec": "something-else"})
    with pytest.raises(AgentStateError, match="newer"):
        DecisionRecord.from_dict({"spec": "tandem-decision", "version": 99})
    with pytest.raises(AgentStateError, match="malformed"):
        DecisionRecord.from_dict({"spec": "tandem-decision", "version": 1})
    with pytest.raises(AgentStateError, match="no decision records"):
        latest([])
