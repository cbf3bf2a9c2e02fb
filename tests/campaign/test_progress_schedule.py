"""How often a campaign records its map accuracy (the live display and the report's accuracy curve)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.campaign import load_campaign
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.runner import CampaignRunner
from tandem.campaign.runner_accounting import ACCURACY_EVERY_SAMPLE_UP_TO, accuracy_due
from tandem.campaign.runner_resume import CampaignRunError

DEMO = DEMO_CAMPAIGN


def test_every_sample_at_first_then_a_twentieth_of_the_campaign_apart() -> None:
    recorded = [n for n in range(1, 201) if accuracy_due(n)]
    first = 2 * ACCURACY_EVERY_SAMPLE_UP_TO
    assert recorded[:first] == list(range(1, first + 1))
    assert recorded[first : first + 4] == [42, 44, 46, 48]
    assert {60, 63, 100, 105, 200} <= set(recorded)
    assert not {41, 61, 101, 104, 199} & set(recorded)
    # never more than a twentieth of the campaign between two points; 79 points for 200 samples
    for before, after in itertools.pairwise(recorded):
        assert after - before <= max(1, after // ACCURACY_EVERY_SAMPLE_UP_TO)
    assert len(recorded) == 79


@given(st.integers(1, 10), st.integers(1, 500))
def test_a_fixed_interval_records_its_multiples(every: int, n: int) -> None:
    assert accuracy_due(n, every) == (n % every == 0)


@pytest.mark.parametrize("every", [0, -3])
def test_an_interval_below_one_sample_is_refused(every: int, tmp_path: Path) -> None:
    with pytest.raises(CampaignRunError, match="accuracy_every"):
        CampaignRunner(load_campaign(DEMO), tmp_path, accuracy_every=every)
    assert not any(tmp_path.iterdir())  # refused before anything was written
