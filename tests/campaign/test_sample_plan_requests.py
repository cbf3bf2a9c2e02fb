"""The in-process runner and the agent daemon ask for a suggestion's sample with the same plan arguments."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from tandem.campaign import load_campaign
from tandem.campaign import runner_sample as runner_sample_module
from tandem.campaign.agent_factory import build_agent
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.config import Campaign
from tandem.campaign.daemon_rules import sample_plan_request
from tandem.campaign.ledger import LedgerEntry
from tandem.campaign.runner_sample import SamplePlans
from tandem.stations import device_names
from tandem.suggestions import Suggestion


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEMO_CAMPAIGN)


def decided(campaign: Campaign, station: str) -> tuple[Suggestion, LedgerEntry]:
    """An agent's suggestion at `station`, and its ledger entry as `CampaignRunner._decide` writes it."""
    (suggestion,) = build_agent(campaign).suggest(station, 1, [])
    entry = LedgerEntry(
        sample_uid=str(uuid.uuid4()),
        campaign_id=campaign.id,
        station=station,
        decision_uid=suggestion.decision_uid,
        target={n: w for n, w in suggestion.target.mass_fractions.items() if n in campaign.solutes},
        scan=suggestion.scan.to_dict(),
    )
    return suggestion, entry


@pytest.mark.parametrize("station", ["saxs", "sans"])
def test_the_runner_and_the_daemon_give_the_sample_plan_the_same_arguments(
    campaign: Campaign, station: str
) -> None:
    suggestion, entry = decided(campaign, station)
    runner = SamplePlans(campaign).request(entry).to_plan_kwargs()
    queued = sample_plan_request(campaign, suggestion, entry.sample_uid)
    assert queued.name == "sample_plan"
    assert queued.args == tuple(device_names(station))
    assert json.loads(json.dumps([queued.args, queued.kwargs])) == [list(queued.args), queued.kwargs]
    # the one difference: the runner measures the empty cell itself, once per configuration, while
    # nothing else on a queue server does, so there the sample plan measures it
    assert runner == {**queued.kwargs, "measure_empty_cell": False}
    assert queued.kwargs["measure_empty_cell"] is True
    campaign_station = campaign.stations[station]
    assert queued.kwargs["total_volume_ul"] == campaign_station.spec.sample_volume_ul
    assert queued.kwargs["balance"] == campaign_station.solvent.name
    assert queued.kwargs["load_volume_ul"] is None  # the station fills its cell by its rule
    assert set(queued.kwargs["target"]) == set(campaign.solutes)


def test_the_runner_runs_the_sample_plan_with_its_requests_arguments(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(runner_sample_module, "sample_plan", lambda *a, **k: ("sample_plan", a, k))
    monkeypatch.setattr(runner_sample_module, "measure_empty_cell", lambda *a, **k: ("empty_cell", a, k))
    rig = SimpleNamespace(
        id="saxs", station="STATION", liquid_handler="LH", cell_loader="CL", RE=calls.append
    )
    plans = SamplePlans(campaign)
    entries = [decided(campaign, "saxs")[1] for _ in range(2)]
    for entry in entries:
        plans.run(rig, entry)  # type: ignore[arg-type]
    # one empty cell for the configuration, then each sample with its request's arguments
    assert [name for name, _, _ in calls] == ["empty_cell", "sample_plan", "sample_plan"]
    for (_, args, kwargs), entry in zip(calls[1:], entries, strict=True):
        assert args == ("STATION", "LH", "CL")
        # and what a run records of its calibration: nothing on the twin, whose analysis knows its own
        assert kwargs == {**plans.request(entry).to_plan_kwargs(), "md": {}}
        assert kwargs["sample_uid"] == entry.sample_uid
