"""Data folders: tandem never deletes what it did not write, and refuses folders that are not its own.

Issue 13, reproducers 1 (`tandem campaign demo --data v` emptied a folder of the user's) and 4 (`--resume`
into a folder holding another campaign started a new one there and replaced its report).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tandem.campaign.bundled import DEMO_FOLDER
from tandem.campaign.ledger import Ledger
from tandem.catalog_layout import CAMPAIGNS
from tandem.cli import app
from tandem.data_folder import (
    MARKER_FILE,
    DataFolderError,
    claim_data_folder,
    clear_data_folder,
    is_data_folder,
    marked_campaign,
)
from tandem.tiled_directory import CATALOG_FILE
from tandem.tiled_server import EmbeddedTiledServer

EXAMPLES = DEMO_FOLDER


def _thesis(root: Path) -> Path:
    chapter = root / "thesis" / "ch1.tex"
    chapter.parent.mkdir(parents=True)
    chapter.write_text("x\n")
    return chapter


# --- the folder rules -------------------------------------------------------------------------


def test_a_missing_or_empty_folder_is_taken_and_marked(tmp_path: Path) -> None:
    for folder in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        claim_data_folder(folder, campaign_id="demo")
        assert is_data_folder(folder)
        assert marked_campaign(folder) == "demo"
        assert json.loads((folder / MARKER_FILE).read_text())["tandem_data_folder"] == 1


def test_a_foreign_folder_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    chapter = _thesis(tmp_path)
    with pytest.raises(DataFolderError, match=r"not a tandem data folder.*thesis"):
        claim_data_folder(tmp_path)
    with pytest.raises(DataFolderError, match="not a tandem data folder"):
        clear_data_folder(tmp_path)
    assert chapter.read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(DataFolderError, match="is a file"):
        claim_data_folder(tmp_path / "notes")
    with pytest.raises(DataFolderError, match="is a file"):
        clear_data_folder(tmp_path / "notes")
    assert (tmp_path / "notes").read_text() == "mine"


def test_clearing_removes_only_what_tandem_writes(tmp_path: Path) -> None:
    folder = claim_data_folder(tmp_path / "data", campaign_id="demo")
    (folder / "tiled").mkdir()
    (folder / "tiled" / CATALOG_FILE).write_text("")
    (folder / "report").mkdir()
    (folder / "report" / "report.json").write_text("{}")
    chapter = _thesis(folder)  # a user's file in a tandem folder stays
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (folder / "plots").symlink_to(elsewhere)  # a link goes, never what it points to

    removed = clear_data_folder(folder)

    assert sorted(p.name for p in removed) == ["plots", "report", "tiled"]
    assert sorted(p.name for p in folder.iterdir()) == [MARKER_FILE, "thesis"]
    assert chapter.read_text() == "x\n"
    assert (elsewhere / "keep.txt").read_text() == "keep"


def test_a_folder_from_before_the_marker_is_recognised_by_its_layout(tmp_path: Path) -> None:
    (tmp_path / "tiled").mkdir()
    (tmp_path / "tiled" / CATALOG_FILE).write_text("")
    (tmp_path / "report").mkdir()
    assert is_data_folder(tmp_path)
    (tmp_path / "ch1.tex").write_text("x")  # anything else: not recognisably tandem's
    assert not is_data_folder(tmp_path)


# --- the commands -----------------------------------------------------------------------------


def test_demo_refuses_a_folder_of_the_users_and_deletes_nothing(tmp_path: Path) -> None:
    chapter = _thesis(tmp_path / "v")
    result = CliRunner().invoke(
        app, ["campaign", "demo", "--data", str(tmp_path / "v")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1, result.output
    assert "not a tandem data folder" in result.output
    assert "Traceback" not in result.output
    assert chapter.read_text() == "x\n"
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["thesis"]


def test_campaign_refuses_a_folder_of_the_users_and_writes_nothing(tmp_path: Path) -> None:
    chapter = _thesis(tmp_path / "v")
    result = CliRunner().invoke(
        app,
        ["campaign", "run", str(EXAMPLES / "demo.yaml"), "--data", str(tmp_path / "v")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output
    assert "not a tandem data folder" in result.output
    assert chapter.read_text() == "x\n"
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["thesis"]


def _other_campaign_file(tmp_path: Path) -> Path:
    for deck in ("saxs_deck.yaml", "sans_deck.yaml"):
        shutil.copy(EXAMPLES / deck, tmp_path / deck)
    spec = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
    spec["id"] = "other"
    spec["stop"] = {"max_samples": 2}
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _folder_of_campaign(folder: Path, campaign_id: str, *, marker: bool) -> None:
    """A data folder whose catalog holds `campaign_id`'s ledger, and a report of it."""
    if marker:
        claim_data_folder(folder, campaign_id=campaign_id)
    with EmbeddedTiledServer(folder / "tiled") as endpoint:
        Ledger.create(endpoint.connect(), campaign_id, {"id": campaign_id})
    (folder / "report").mkdir()
    (folder / "report" / "report.json").write_text('{"campaign": "runA"}')


def _campaigns_in(folder: Path) -> list[str]:
    with EmbeddedTiledServer(folder / "tiled") as endpoint:
        client = endpoint.connect()
        return sorted(client[CAMPAIGNS]) if CAMPAIGNS in client else []


@pytest.mark.slow
@pytest.mark.parametrize("marker", [True, False], ids=["marked", "from-before-the-marker"])
def test_resume_refuses_a_folder_holding_another_campaign(tmp_path: Path, marker: bool) -> None:
    run_a = tmp_path / "runA"
    _folder_of_campaign(run_a, "campaign-a", marker=marker)
    other = _other_campaign_file(tmp_path)

    # in a process of its own: a refusal after the lab started finalizes libca, which a process
    # can do once (the EPICS tests after this one share pytest's)
    done = subprocess.run(
        [sys.executable, "-P", "-m", "tandem.cli", "campaign", "resume", str(other), "--data", str(run_a)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "300"},
        check=False,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join((done.stdout + done.stderr).split())
    assert "'campaign-a'" in text
    assert "'other'" in text
    assert "Traceback" not in text
    assert (run_a / "report" / "report.json").read_text() == '{"campaign": "runA"}'
    assert _campaigns_in(run_a) == ["campaign-a"]
