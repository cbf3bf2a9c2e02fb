"""One set of stop rules for the in-process runner and the agent daemon (`tandem.campaign.stop_rules`)."""

from __future__ import annotations

from tandem.campaign.config.schema import StopSpec
from tandem.campaign.stop_rules import MIN_SAMPLES_FOR_CONFIDENCE, CampaignProgress, stop_reason


def progress(
    samples: int = 0,
    hours: float = 0.0,
    streak: int = 0,
    last: str | None = None,
    confidence: float | None = None,
) -> tuple[CampaignProgress, list[int]]:
    asked: list[int] = []

    def ask() -> float | None:
        asked.append(1)
        return confidence

    return CampaignProgress(samples, hours, streak, last, ask), asked


def test_the_sample_and_beamtime_budgets_stop_at_their_limits() -> None:
    stop = StopSpec(max_samples=20, max_station_hours=2.0)
    assert stop_reason(stop, progress(19, 1.99)[0]) is None
    assert stop_reason(stop, progress(20, 0.5)[0]) == "sample budget reached (20)"
    reason = stop_reason(stop, progress(5, 2.0)[0])
    assert reason is not None
    assert reason.startswith("beamtime budget reached (2.00 of 2 station hours)")


def test_failures_in_a_row_stop_and_name_the_last_reason() -> None:
    stop = StopSpec(max_samples=100, max_consecutive_failures=3)
    assert stop_reason(stop, progress(10, streak=2, last="robot jammed")[0]) is None
    reason = stop_reason(stop, progress(10, streak=3, last="robot jammed")[0])
    assert reason is not None
    assert "3 samples in a row failed" in reason
    assert reason.endswith("the last failed with: robot jammed")


def test_the_confidence_is_not_asked_before_enough_samples_nor_when_no_target() -> None:
    stop = StopSpec(max_samples=100, target_confidence=0.9)
    few, asked = progress(MIN_SAMPLES_FOR_CONFIDENCE - 1, confidence=1.0)
    assert stop_reason(stop, few) is None
    assert not asked
    enough, asked = progress(MIN_SAMPLES_FOR_CONFIDENCE, confidence=0.95)
    assert stop_reason(stop, enough) == "confidence target reached (0.950 >= 0.9)"
    assert asked
    unsure, _ = progress(MIN_SAMPLES_FOR_CONFIDENCE, confidence=0.5)
    assert stop_reason(stop, unsure) is None
    no_target, asked = progress(50, confidence=1.0)
    assert stop_reason(StopSpec(max_samples=100), no_target) is None
    assert not asked


def test_budgets_come_before_failures_and_failures_before_the_confidence() -> None:
    stop = StopSpec(max_samples=10, max_consecutive_failures=2, target_confidence=0.5)
    reason = stop_reason(stop, progress(10, streak=5, last="x", confidence=1.0)[0])
    assert reason == "sample budget reached (10)"
    stop = StopSpec(max_samples=100, max_consecutive_failures=2, target_confidence=0.5)
    reason = stop_reason(stop, progress(20, streak=2, last="x", confidence=1.0)[0])
    assert reason is not None
    assert "in a row failed" in reason
