"""`tandem campaign check`: a campaign file, its profiles and decks read without touching hardware; what
each station will use, or every problem with its file and line."""

from __future__ import annotations

from pathlib import Path

from real_line import write_line
from typer.testing import CliRunner

from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.session_config import EpicsPrefixes
from tandem.cli import app

OT2 = {"backend": "opentrons_ot2", "options": {"host": "10.2.0.40", "port": 31950}}


def _check(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["campaign", "check", str(path)], env={"COLUMNS": "80"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output.splitlines()


def test_a_real_line_is_summed_up_station_by_station(tmp_path: Path) -> None:
    path = write_line(tmp_path, EpicsPrefixes("BL12:SAXS:", "BL12:SAXS:CL:"), OT2)
    code, lines = _check(path)
    assert code == 0
    assert lines[0] == f"{path}: campaign 'saxs-line' is ready to run (1 station)"
    assert "  saxs: instrument profile 'saxs_line', backend epics" in lines
    # whole lines on a narrow terminal: prefixes and paths are there to be copied
    assert (
        "    EPICS       station at BL12:SAXS: (profile saxs_line), "
        "cell loader at BL12:SAXS:CL: (profile saxs_line)"
    ) in lines
    assert "    robot       opentrons_ot2 (host=10.2.0.40, port=31950)" in lines
    calibration = tmp_path / "saxs_line_calibration.json"
    assert f"    short       calibration {calibration}  (the default configuration)" in lines


def test_the_twins_stations_say_so() -> None:
    code, lines = _check(DEMO_CAMPAIGN)
    assert code == 0
    assert "  sans: the digital twin's instrument 'sans'" in lines


def test_a_problem_in_a_profile_is_shown_at_its_line(tmp_path: Path) -> None:
    path = write_line(tmp_path, EpicsPrefixes("BL12:SAXS:", "BL12:SAXS:CL:"))
    profile = tmp_path / "saxs_line.yaml"
    profile.write_text(profile.read_text().replace("distance_mm: 1000.0", "distance_mm: -5"))
    code, lines = _check(path)
    assert code == 2
    assert lines[0] == f"{path}: the campaign file has problems."
    (problem,) = [line for line in lines if "distance_mm" in line]
    assert "saxs_line.yaml:" in problem
    assert "greater than 0" in problem
