"""User text is shown as it is: `[...]` never read as rich markup, `:x:` never an emoji (issue 13 #3),
and a terminal that cannot encode "µ" gets a stand-in instead of a traceback (issue 13 #7)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tandem.campaign.bundled import DEMO_FOLDER
from tandem.cli import app
from tandem.cli.output import ascii_stand_in

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = DEMO_FOLDER
SAXS_DECK = ROOT / "examples" / "decks" / "saxs_lab.yaml"
TRICKY = "SDS [/] PPG [bold]x[/bold] :x:"


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def _campaign(tmp_path: Path, **changes: object) -> Path:
    for deck in ("saxs_deck.yaml", "sans_deck.yaml"):
        shutil.copy(EXAMPLES / deck, tmp_path / deck)
    spec = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
    spec.update(changes)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    return path


def test_a_campaign_name_and_data_path_with_markup_are_shown_as_written(tmp_path: Path) -> None:
    config = _campaign(tmp_path, name=TRICKY)
    data = tmp_path / "d[" / "x]:x:"  # the path reads .../d[/x]:x:
    data.mkdir(parents=True)
    (data / "mine.txt").write_text("x")  # a folder that is not tandem's: refused before anything starts

    code, out = _invoke("campaign", "run", str(config), "--data", str(data))

    assert code == 1, out
    assert TRICKY in out
    assert "d[/x]:x:" in out
    assert "not a tandem data folder" in out
    assert "❌" not in out


def test_a_key_with_markup_in_a_campaign_file_is_shown_as_written(tmp_path: Path) -> None:
    config = _campaign(tmp_path, **{"[/k]:x:": 1})
    code, out = _invoke("campaign", "run", str(config))
    assert code == 2, out
    assert "[/k]:x:" in out


def test_a_deck_path_and_station_id_with_markup_are_shown_as_written(tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
    stations = spec["stations"]
    stations["[/s]"] = stations.pop("saxs")
    stations["[/s]"]["deck"] = "[/d]/deck.yaml"
    stations["[/s]"]["instrument"] = "saxs"
    config = _campaign(tmp_path, stations=stations)
    code, out = _invoke("campaign", "run", str(config))
    assert code == 2, out
    assert "[/d]/deck.yaml" in out
    assert "[/s]" in out


def test_recipe_shows_deck_names_with_markup_as_written(tmp_path: Path) -> None:
    deck = tmp_path / "deck.yaml"
    deck.write_text(SAXS_DECK.read_text().replace("sds_100", "'sds [/b] :x:'"))
    code, out = _invoke(
        "recipe", str(deck), "--set", "sds=20mg/ml", "--balance", "water", "--volume-ul", "1000"
    )
    assert code == 0, out
    assert "sds [/b] :x:" in out
    code, out = _invoke("recipe", str(deck), "--set", "[/c]=0.1", "--balance", "water", "--volume-ul", "1")
    assert code == 1, out
    assert "[/c]" in out


def test_an_ascii_terminal_gets_stand_ins_not_a_traceback() -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "200"}
    command = [sys.executable, "-P", "-m", "tandem.cli", "recipe", str(SAXS_DECK)]
    command += ["--set", "sds=20mg/ml", "--balance", "water", "--volume-ul", "1000"]
    done = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode("ascii", "replace")
    assert "Recipe: 1000 uL into well" in done.stdout.decode("ascii")


@pytest.mark.parametrize(
    ("char", "shown"), [("µ", "u"), ("Å", "A"), ("°", "deg"), ("é", "e"), ("─", "-"), ("✗", "?")]
)
def test_ascii_stand_ins(char: str, shown: str) -> None:
    assert ascii_stand_in(char) == shown
