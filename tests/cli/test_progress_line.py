"""The campaign's progress line fits an 80-column terminal and says the same things as the wide one."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from tandem.campaign.runner_accounting import Progress as CampaignProgress
from tandem.cli.campaign import WIDE, progress_columns, status_line

SNAPSHOT = CampaignProgress(
    samples_by_station={"saxs": 48, "sans": 12},
    failed=3,
    station_time_s={"saxs": 7089.0, "sans": 7318.0},
    busy_s={"saxs": 7000.0, "sans": 7318.0},
    accuracy=0.733,
    budget_samples=60,
)


def test_both_lines_say_samples_utilisation_beamtime_accuracy_and_failures() -> None:
    wide, compact = status_line(SNAPSHOT), status_line(SNAPSHOT, compact=True)
    assert wide == "saxs 48 (96% busy)  sans 12 (100% busy)  beamtime 4.0 h  map accuracy 73%  failed 3"
    assert compact == "saxs 48 96% · sans 12 100% · 4.0 h · map 73% · 3 failed"


def test_the_compact_line_fits_80_columns_with_the_bar() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    assert console.width < WIDE
    with Progress(*progress_columns(wide=False), console=console, auto_refresh=False) as progress:
        task = progress.add_task("samples", total=60, status=status_line(SNAPSHOT, compact=True))
        progress.update(task, completed=60)
        progress.refresh()
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert lines
    assert all(len(line) <= 80 for line in lines)
    assert "map 73%" in lines[-1]
    assert "3 failed" in lines[-1]
