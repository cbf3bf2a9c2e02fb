"""The twin hosts any system: a campaign over its own components, and one whose samples keep failing.

Each campaign runs as `tandem campaign` in a subprocess (its own Tiled server, IOCs and CA
repeater), with the truth plug-ins of `tests/twin_truths.py` importable through PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from twin_truths import campaign_files

from tandem.campaign import CampaignConfigError, load_campaign
from tandem.campaign.ledger import Ledger, LedgerEntry, SampleStatus
from tandem.cli.campaign import FAILURES_EXIT_CODE
from tandem.tiled_server import EmbeddedTiledServer

#: tests/, where `twin_truths` lives (pytest puts it on sys.path; the subprocess gets it through PYTHONPATH)
TESTS = Path(__file__).resolve().parents[1]


def _tandem_campaign(config: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-P", "-m", "tandem.cli", "campaign", "run", str(config), "--data", str(data)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _ledger(data: Path, campaign_id: str) -> list[LedgerEntry]:
    with EmbeddedTiledServer(data / "tiled") as server:
        return list(Ledger.open(server.connect(), campaign_id).entries())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_campaign_over_its_own_components_measures_every_sample_on_the_twin(tmp_path: Path) -> None:
    config = campaign_files(tmp_path, campaign_id="nonionic-oil", max_samples=6)
    campaign = load_campaign(config)
    # the stations' instruments know the campaign's components, in each station's solvent
    for sid, solvent in (("saxs", "H2O"), ("sans", "D2O")):
        instrument = campaign.stations[sid].instrument
        assert set(instrument.components) == {"H2O", "D2O", "C12E5", "decane"}
        assert instrument.solvent.name == solvent
    done = _tandem_campaign(config, tmp_path / "data")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "sample budget reached (6)" in output
    entries = _ledger(tmp_path / "data", "nonionic-oil")
    assert len(entries) == 6
    assert [e.reason for e in entries if e.status is not SampleStatus.MEASURED] == []
    assert {e.station for e in entries} <= {"saxs", "sans"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_campaign_whose_samples_keep_failing_stops_and_says_why(tmp_path: Path) -> None:
    config = campaign_files(
        tmp_path,
        campaign_id="always-fails",
        truth="twin_truths:fails_at_the_station",
        max_samples=20,
        max_consecutive_failures=3,
    )
    done = _tandem_campaign(config, tmp_path / "data")
    output = done.stdout + done.stderr
    assert done.returncode == FAILURES_EXIT_CODE, output
    assert "3 samples in a row failed (stop.max_consecutive_failures is 3)" in output
    assert "the truth cannot answer here" in output  # the last failure's own message
    entries = _ledger(tmp_path / "data", "always-fails")
    assert len(entries) == 3
    assert all(e.status is SampleStatus.FAILED for e in entries)


def test_max_consecutive_failures_is_checked_when_the_file_is_loaded(tmp_path: Path) -> None:
    config = campaign_files(tmp_path, campaign_id="bad-stop", max_consecutive_failures=0)
    with pytest.raises(
        CampaignConfigError, match=r"stop\.max_consecutive_failures.*greater than or equal to 1"
    ):
        load_campaign(config)
    good = load_campaign(campaign_files(tmp_path, campaign_id="default-stop"))
    assert good.stop.max_consecutive_failures == 5


def test_a_truth_that_cannot_answer_for_the_campaign_components_is_a_clear_file_error(tmp_path: Path) -> None:
    """The default system does not know C12E5: the file check says so at the centre of the space."""
    config = campaign_files(tmp_path, campaign_id="wrong-truth", truth="tandem.sim.systems:default_system")
    with pytest.raises(CampaignConfigError) as caught:
        load_campaign(config)
    message = str(caught.value)
    assert "twin.truth" in message
    assert "fails at the centre of the space" in message
    assert "C12E5" in message


@pytest.mark.parametrize(
    ("truth", "expected"),
    [
        ("twin_truths:names_no_model", r"sasmodels has no model 'no_such_model'.*name a sasmodels model"),
        ("twin_truths:misspells_a_parameter", r"no parameter\(s\) 'raduis'.*use its parameters: .*radius"),
    ],
)
def test_a_truth_answer_the_twin_cannot_draw_is_a_clear_file_error(
    tmp_path: Path, truth: str, expected: str
) -> None:
    config = campaign_files(tmp_path, campaign_id="undrawable", truth=truth)
    with pytest.raises(CampaignConfigError, match=expected):
        load_campaign(config)
