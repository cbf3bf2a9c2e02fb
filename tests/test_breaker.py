"""The per-station circuit breaker (`tandem.breaker`): trip, pause, one trial, back or set aside again."""

from __future__ import annotations

import pytest

from tandem.breaker import BreakerError, BreakerSettings, BreakerState, StationBreaker

SETTINGS = BreakerSettings(failures_to_trip=3, retry_after_s=100.0)


def fail(breaker: StationBreaker, station: str, n: int, now_s: float = 0.0) -> list[bool]:
    return [breaker.record(station, ok=False, now_s=now_s, reason=f"failure {i}") for i in range(n)]


def test_a_station_is_set_aside_at_the_nth_failure_in_a_row() -> None:
    breaker = StationBreaker(["saxs", "sans"], SETTINGS)
    assert fail(breaker, "saxs", 3, now_s=10.0) == [False, False, True]
    assert breaker.state("saxs", 10.0) is BreakerState.OPEN
    assert not breaker.may_send("saxs", 10.0)
    assert breaker.may_send("sans", 10.0)  # the other station is not touched
    health = breaker.health(10.0)["saxs"].to_dict()
    assert health == {
        "station": "saxs",
        "state": "open",
        "failures_in_a_row": 3,
        "last_failure": "failure 2",
        "set_aside_at_s": 10.0,
        "retry_at_s": 110.0,
    }
    assert breaker.next_retry_s() == 110.0


def test_a_success_resets_the_count() -> None:
    breaker = StationBreaker(["saxs"], SETTINGS)
    fail(breaker, "saxs", 2)
    assert not breaker.record("saxs", ok=True, now_s=1.0)
    assert fail(breaker, "saxs", 2) == [False, False]  # two more in a row: still below three
    assert breaker.state("saxs", 1.0) is BreakerState.CLOSED
    assert breaker.health(1.0)["saxs"].failures_in_a_row == 2


def test_after_the_pause_exactly_one_trial_is_allowed_and_its_success_closes_the_breaker() -> None:
    breaker = StationBreaker(["saxs"], SETTINGS)
    fail(breaker, "saxs", 3, now_s=0.0)
    assert not breaker.may_send("saxs", 99.9)
    assert breaker.state("saxs", 100.0) is BreakerState.HALF_OPEN
    assert breaker.may_send("saxs", 100.0)
    breaker.sent("saxs", 100.0)
    assert not breaker.may_send("saxs", 100.0)  # the trial runs: no second sample
    assert not breaker.may_send("saxs", 500.0)
    assert not breaker.record("saxs", ok=True, now_s=120.0)
    assert breaker.state("saxs", 120.0) is BreakerState.CLOSED
    assert breaker.may_send("saxs", 120.0)
    assert breaker.next_retry_s() is None


def test_a_failed_trial_sets_the_station_aside_again_at_once() -> None:
    breaker = StationBreaker(["saxs"], SETTINGS)
    fail(breaker, "saxs", 3, now_s=0.0)
    breaker.sent("saxs", 100.0)
    assert breaker.record("saxs", ok=False, now_s=150.0, reason="still dead")  # one failure suffices
    assert breaker.state("saxs", 150.0) is BreakerState.OPEN
    health = breaker.health(150.0)["saxs"]
    assert (health.set_aside_at_s, health.retry_at_s, health.last_failure) == (150.0, 250.0, "still dead")
    assert breaker.may_send("saxs", 250.0)  # and gets another trial after another pause


def test_all_set_aside_only_when_every_station_is() -> None:
    breaker = StationBreaker(["saxs", "sans"], SETTINGS)
    fail(breaker, "saxs", 3)
    assert not breaker.all_set_aside()
    fail(breaker, "sans", 3, now_s=5.0)
    assert breaker.all_set_aside()
    assert breaker.next_retry_s() == 100.0
    # a station in its trial is still set aside: nothing has worked since
    breaker.sent("saxs", 100.0)
    assert breaker.all_set_aside()
    breaker.record("saxs", ok=True, now_s=101.0)
    assert not breaker.all_set_aside()


def test_bad_settings_and_unknown_stations_are_refused() -> None:
    with pytest.raises(BreakerError, match="failures_to_trip"):
        BreakerSettings(failures_to_trip=0)
    with pytest.raises(BreakerError, match="retry_after_s"):
        BreakerSettings(retry_after_s=0)
    with pytest.raises(BreakerError, match="at least one station"):
        StationBreaker([])
    with pytest.raises(BreakerError, match="no station 'xrd'"):
        StationBreaker(["saxs"]).may_send("xrd", 0.0)
