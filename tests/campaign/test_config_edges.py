"""Edges of the input files (issue 13 #7): numbers too large to be a plan or to be stored, and paths
that are not files, are refused when the file is loaded, with their place, before anything starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.campaign import CampaignConfigError, load_campaign
from tandem.campaign.bundled import DEMO_FOLDER
from tandem.campaign.config import MAX_SAMPLES, MAX_SEED
from tandem.cli import app
from tandem.files import MAX_INPUT_BYTES, InputFileError, read_text
from tandem.robots.deck_file import DeckFileError, load_deck_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = DEMO_FOLDER
DEMO_TEXT = (EXAMPLES / "demo.yaml").read_text()
HUGE = 10**23


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def refused(folder: Path, old: str, new: str) -> tuple[str, str]:
    """The problems of the demo file with `old` replaced by `new`, and the text."""
    assert DEMO_TEXT.count(old) == 1, old
    text = DEMO_TEXT.replace(old, new)
    path = folder / "campaign.yaml"
    path.write_text(text)
    with pytest.raises(CampaignConfigError) as info:
        load_campaign(path)
    return str(info.value), text


def line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, line in enumerate(text.splitlines()) if needle in line)


def test_a_huge_sample_budget_is_refused_with_its_line_and_the_range(folder: Path) -> None:
    message, text = refused(folder, "max_samples: 60", f"max_samples: {HUGE}")
    assert f"campaign.yaml:{line_of(text, 'max_samples')}:" in message
    assert "stop.max_samples" in message
    assert f"less than or equal to {MAX_SAMPLES}" in message


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ("seed: 1", "seed: -1", "agent.seed", "greater than or equal to 0"),
        ("seed: 1", f"seed: {MAX_SEED + 1}", "agent.seed", f"less than or equal to {MAX_SEED}"),
        ("time_scale: 0", "time_scale: 1e300", "twin.time_scale", "less than or equal to"),
        ("batch_size: 1", f"batch_size: {HUGE}", "agent.batch_size", "less than or equal to 64"),
        (
            "batch_size: 1",
            f"batch_size: 1\n  settings: {{n_initial: {HUGE}}}",
            "agent.settings.n_initial",
            "too large a number to store",
        ),
        (
            "temperature_c: 25\n    costs: {per_station_hour: 10}",
            f"temperature_c: 25\n      n_frames: {HUGE}\n    costs: {{per_station_hour: 10}}",
            "stations.sans.scan.n_frames",
            "less than or equal",
        ),
    ],
)
def test_out_of_range_numbers_are_refused_at_their_key(
    folder: Path, old: str, new: str, key: str, expected: str
) -> None:
    message, _text = refused(folder, old, new)
    assert key in message
    assert expected in message


def test_a_rack_of_absurdly_many_tips_is_refused(tmp_path: Path) -> None:
    deck = tmp_path / "deck.yaml"
    deck.write_text(
        (ROOT / "examples" / "decks" / "saxs_lab.yaml").read_text().replace("n_tips: 96", f"n_tips: {HUGE}")
    )
    with pytest.raises(DeckFileError, match="n_tips"):
        load_deck_file(deck)


# --- files that are not files -----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_devices_pipes_and_folders_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for path, kind in ((Path("/dev/zero"), "a device"), (fifo, "a pipe"), (tmp_path, "a folder")):
        with pytest.raises(InputFileError, match=f"not a regular file \\({kind}\\)"):
            read_text(path)
        with pytest.raises(CampaignConfigError, match="not a regular file"):
            load_campaign(path)
        with pytest.raises(DeckFileError, match="not a regular file"):
            load_deck_file(path)


def test_files_too_large_or_not_text_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk is filled
    with pytest.raises(InputFileError, match="more than the"):
        read_text(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"id: x\n\xff\xfe")
    with pytest.raises(CampaignConfigError, match="not a text file"):
        load_campaign(binary)


@pytest.mark.timeout(60)
def test_recipe_refuses_dev_zero_at_once() -> None:
    result = CliRunner().invoke(
        app, ["recipe", "/dev/zero", "--set", "sds=0.1", "--balance", "water", "--volume-ul", "100"]
    )
    assert result.exit_code == 1, result.output
    assert "not a regular file" in result.output


def test_every_agent_settings_type_the_checker_names_exists() -> None:
    # named by string so that loading a campaign imports no agent; a rename must not slip past it
    import importlib

    from tandem.campaign.config.agent_checks import _AGENT_SETTINGS

    for kind, spec in _AGENT_SETTINGS.items():
        module_name, _, attr = spec.partition(":")
        settings_type = getattr(importlib.import_module(module_name), attr)
        assert hasattr(settings_type, "from_dict"), kind
