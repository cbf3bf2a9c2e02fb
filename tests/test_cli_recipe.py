"""`tandem recipe`: tables for people, JSON for machines, exit status 2 with every reason when infeasible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_deck import EXAMPLE_DECKS
from typer.testing import CliRunner

from tandem.cli import app

SAXS = str(EXAMPLE_DECKS / "saxs_lab.yaml")
SANS = str(EXAMPLE_DECKS / "sans_lab.yaml")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["recipe", *args], env={"COLUMNS": "140"})
    return result.exit_code, result.stdout


def test_help_explains_itself_with_an_example(runner: CliRunner) -> None:
    code, out = run(runner, "--help")
    assert code == 0
    assert "--set" in out
    assert "tandem recipe examples/decks/saxs_lab.yaml" in out
    assert "Exit status" in out


def test_a_recipe_as_tables(runner: CliRunner) -> None:
    code, out = run(
        runner,
        SAXS,
        "--set",
        "sds=20mg/ml",
        "--set",
        "nacl=0.1M",
        "--balance",
        "water",
        "--volume-ul",
        "1000",
    )
    assert code == 0, out
    assert "Recipe: 1000 µL into well 4/A1" in out
    # hand-computed: 200 µL of 100 mg/mL SDS, 50 µL of 2 M NaCl, 750 µL water
    assert "200.00" in out
    assert "50.00" in out
    assert "750.00" in out
    assert "mol/L" in out
    assert "deviation" in out


def test_a_recipe_as_json(runner: CliRunner) -> None:
    code, out = run(
        runner,
        SANS,
        "--set",
        "nacl=0.1M",
        "--set",
        "water=0.3vf",
        "--balance",
        "d2o",
        "--volume-ul",
        "1000",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["ok"] is True
    by_source: dict[str, float] = {}
    for t in data["transfers"]:
        by_source[t["source"]] = by_source.get(t["source"], 0.0) + t["volume_ul"]
    assert by_source == pytest.approx({"h2o": 300.0, "d2o": 650.0, "nacl_2m_d2o": 50.0})
    assert data["predicted"]["molarity_mol_per_l"]["nacl"] == pytest.approx(0.1)
    assert data["predicted"]["volume_fraction"]["water"] == pytest.approx(0.3)
    assert data["deviation"] <= data["tolerance"]


def test_dilution_from_the_command_line(runner: CliRunner) -> None:
    args = [
        SAXS,
        "--set",
        "nacl=1mM",
        "--balance",
        "water",
        "--volume-ul",
        "1000",
        "--tolerance",
        "1e-6",
        "--json",
    ]
    code, out = run(runner, *args)
    assert code == 2
    assert "below_min_volume" in {r["code"] for r in json.loads(out)["reasons"]}
    code, out = run(runner, *args, "--dilute")
    assert code == 0
    data = json.loads(out)
    assert data["intermediates"]
    assert data["predicted"]["molarity_mol_per_l"]["nacl"] == pytest.approx(1e-3, rel=1e-3)


def test_infeasible_targets_exit_2_with_every_reason(runner: CliRunner) -> None:
    code, out = run(
        runner,
        SANS,
        "--set",
        "sds=20mg/ml",
        "--balance",
        "water",
        "--volume-ul",
        "5000",
        "--destination",
        "4/A1",
    )
    assert code == 2
    for text in ("out_of_reach", "unwanted_component", "destination_too_small", "d2o"):
        assert text in out
    code, out = run(
        runner, SANS, "--set", "sds=20mg/ml", "--balance", "water", "--volume-ul", "1000", "--json"
    )
    assert code == 2
    data = json.loads(out)
    assert data["ok"] is False
    assert {r["code"] for r in data["reasons"]} == {"out_of_reach", "unwanted_component"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "sds=20 furlongs"], "unknown unit"),
        (["--set", "ethanol=0.1"], "unknown component 'ethanol'"),
        (["--set", "sds"], "NAME=AMOUNT"),
        (["--set", "sds=0.1", "--set", "sds=0.2"], "twice"),
        (["--set", "sds=1.5"], r"[0, 1]"),
        (["--set", "sds=-3mg/ml"], ">= 0"),
        (["--volume-ul", "-5"], "total_volume_ul"),
        (["--volume-ul", "nan"], "total_volume_ul"),
        (["--destination", "Z9"], "Z9"),
        (["--tolerance", "2"], "tolerance"),
    ],
)
def test_bad_input_exits_1_and_says_what_is_wrong(runner: CliRunner, args: list[str], message: str) -> None:
    base = {"--balance": "water", "--volume-ul": "1000"}
    for i in range(0, len(args), 2):
        base.pop(args[i], None)
    flat = [x for kv in base.items() for x in kv]
    code, out = run(runner, SAXS, *flat, *args)
    assert code == 1, out
    assert message in out


def test_a_bad_deck_file_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    deck = tmp_path / "deck.yaml"
    deck.write_text("components: []\nstocks: []\n")
    code, out = run(runner, str(deck), "--balance", "water", "--volume-ul", "100")
    assert code == 1
    assert "components" in out
    code, out = run(
        runner, str(tmp_path / "missing.yaml"), "--balance", "water", "--volume-ul", "100", "--json"
    )
    assert code == 1
    assert "cannot read" in json.loads(out)["error"]
