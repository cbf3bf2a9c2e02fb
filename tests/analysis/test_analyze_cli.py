"""`tandem analyze` takes its calibrations from a file or, told so, from the twin: never by default."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from tiled.client.container import Container
from typer.testing import CliRunner

from tandem.analysis.store import AnalysisStore
from tandem.cli import app
from tandem.cli.analyze import CalibrationChoiceError, choose_calibrations
from tandem.sim.calibration import twin_calibration, twin_calibrations
from tandem.sim.instruments import INSTRUMENTS
from tandem.tiled_endpoint import TiledEndpoint

NO_STORE = {"TANDEM_TILED_URI": None, "TANDEM_TILED_API_KEY": None}


def test_neither_a_file_nor_sim_is_refused_before_anything_runs() -> None:
    # no data store is configured either: the calibration is what it says first
    result = CliRunner().invoke(app, ["analyze"], env=NO_STORE)
    assert result.exit_code == 1
    assert "--calibration FILE" in result.output
    assert "--sim" in result.output
    assert "no data store" not in result.output
    with pytest.raises(CalibrationChoiceError, match="--calibration FILE"):
        choose_calibrations(None, sim=False)


def test_both_a_file_and_sim_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "calibrations.json"
    path.write_text(json.dumps({"saxs": {}}))
    result = CliRunner().invoke(app, ["analyze", "--sim", "--calibration", str(path)], env=NO_STORE)
    assert result.exit_code == 1
    assert "--sim and --calibration exclude each other" in result.output


def test_a_calibration_file_that_is_not_station_to_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calibrations.json"
    path.write_text(json.dumps({"saxs": 0.9}))
    result = CliRunner().invoke(app, ["analyze", "--calibration", str(path)], env=NO_STORE)
    assert result.exit_code == 1
    assert "station -> calibration" in result.output


def test_sim_gives_the_twins_calibrations() -> None:
    assert choose_calibrations(None, sim=True) == twin_calibrations()
    assert set(twin_calibrations()) == set(INSTRUMENTS)


def test_a_real_calibration_file_is_used(
    tmp_path: Path,
    tiled_client: Container,
    tiled_endpoint: TiledEndpoint,
    twin_run: Callable[..., str],
    unique_campaign_id: str,
) -> None:
    uid = twin_run(
        tiled_client,
        "saxs",
        {"SDS": 0.03, "PPG": 0.0, "NaCl": 0.0},
        campaign_id=unique_campaign_id,
        exposure_s=1.0,
    )
    # the twin's numbers but a counter depth of its own, to see that the file's were used
    calibration = replace(twin_calibration(INSTRUMENTS["saxs"]), saturation_counts=4.0e9)
    path = tmp_path / "calibrations.json"
    path.write_text(json.dumps({"saxs": calibration.to_dict()}))
    result = CliRunner().invoke(
        app, ["analyze", "--calibration", str(path), "--run", uid, "--no-fit"], env=tiled_endpoint.environ()
    )
    assert result.exit_code == 0, result.output
    assert uid in result.output
    (record,) = AnalysisStore(tiled_client).records(campaign_id=unique_campaign_id, with_curve=False)
    assert record.ok, record.failure_reason
    assert record.parameters["calibration"] == calibration.to_dict()
