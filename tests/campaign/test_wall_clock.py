"""A real station's wall clock: station time is the wall's, and only the RunEngine's work is busy time."""

from __future__ import annotations

import itertools
import time

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import pytest
from bluesky import RunEngine
from ophyd import Signal

from tandem.campaign.runner_accounting import activities
from tandem.campaign.wall_clock import RunTimekeeper, WallClock
from tandem.protocols import StationTime

pytestmark = pytest.mark.timeout(60)


def test_station_time_counts_from_the_labs_start() -> None:
    clock = WallClock("saxs", start_s=100.0, started_at=1_000.0)
    assert clock.at(1_010.0) == 110.0
    time_of: StationTime = clock  # the runner's seam
    assert time_of.timeline == ()


def test_a_resumed_history_moves_the_clock_on_and_counts_as_busy() -> None:
    clock = WallClock("saxs")
    clock.record("load", 0.0, 3_600.0)
    clock.record("expose", 3_600.0, 5_400.0)
    assert clock.now_s >= 5_400.0
    assert clock.busy_s() == 5_400.0
    assert clock.busy_s("expose") == 1_800.0
    with pytest.raises(ValueError, match="forwards"):
        clock.record("load", 10.0, 5.0)


def test_a_pause_is_waited_on_the_wall_unless_a_stop_is_requested() -> None:
    clock = WallClock("saxs", stop_requested=lambda: True)
    clock.idle_until(clock.now_s + 3_600.0)  # returns at once: the stop was asked for
    assert clock.timeline == ()
    WallClock("sans").idle_until(-1.0)  # already past


@pytest.fixture
def run_engine() -> tuple[RunEngine, WallClock]:
    clock = WallClock("saxs")
    keeper = RunTimekeeper(clock)
    engine = RunEngine({}, context_managers=[])
    engine.subscribe(keeper)
    engine.state_hook = keeper.state_changed
    return engine, clock


def _sample(signal: Signal) -> object:
    def body() -> object:
        yield from bps.trigger_and_read([signal], name="preparation")
        yield from bps.trigger_and_read([signal], name="load")
        yield from bps.trigger_and_read([signal], name="transmission")
        yield from bps.trigger_and_read([signal], name="primary")
        yield from bps.trigger_and_read([signal], name="rinse")

    return bpp.run_wrapper(body(), md={"plan_name": "sample_plan"})


def test_the_run_engines_work_is_the_timeline_and_the_time_between_is_idle(
    run_engine: tuple[RunEngine, WallClock],
) -> None:
    engine, clock = run_engine
    signal = Signal(name="reading", value=1.0)
    engine(_sample(signal))
    first = clock.timeline
    time.sleep(0.01)  # the agent deciding: the station idles
    engine(_sample(signal))
    second = clock.timeline[len(first) :]

    kinds = [kind for kind, _start, _end in activities(first)]
    assert kinds[:4] == ["prepare", "load", "measure", "rinse"]
    for intervals in (first, second):
        # one RunEngine call is one stretch of work, its activities end to end
        assert all(a.end_s == b.start_s for a, b in itertools.pairwise(intervals))
    assert second[0].start_s > first[-1].end_s  # the gap is not on the timeline
    assert clock.busy_s() == pytest.approx(sum(i.duration_s for i in clock.timeline))
    assert clock.busy_s() < clock.now_s
