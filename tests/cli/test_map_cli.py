"""`tandem map`: a summary for people, the files in --out, exit status 2 with one line for bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tandem.analysis.curve_files import write_curve_text, write_nxcansas
from tandem.cli import app
from tandem.sim.curve_source import simulate_curve
from tandem.sim.zoo import zoo_system

N_CURVES = 24


def make_folder(folder: Path, n: int = N_CURVES, seed: int = 11) -> None:
    """`n` curves of the size_only zoo system (text and NXcanSAS alternately) and compositions.csv."""
    zoo = zoo_system("size_only")
    rng = np.random.default_rng(seed)
    lo = np.array([zoo.bounds[k][0] for k in zoo.solutes])
    hi = np.array([zoo.bounds[k][1] for k in zoo.solutes])
    folder.mkdir(parents=True, exist_ok=True)
    rows = [["file", *zoo.solutes]]
    for i, x in enumerate(lo + rng.random((n, len(lo))) * (hi - lo)):
        curve = simulate_curve(zoo, dict(zip(zoo.solutes, map(float, x), strict=True)), "xray", rng)
        name = f"run_{i:02d}.nxs" if i % 2 else f"run_{i:02d}.txt"
        if i % 2:
            write_nxcansas(curve, folder / name, title=name)
        else:
            write_curve_text(curve, folder / name)
        rows.append([name.rsplit(".", 1)[0], *(f"{v:.6f}" for v in x)])  # stems: the reader finds the file
    with (folder / "compositions.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("beamtime")
    make_folder(path)
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["map", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_explains_itself_with_an_example(runner: CliRunner) -> None:
    code, out, _ = run(runner, "--help")
    assert code == 0
    for option in ("--table", "--probe", "--bounds", "--suggest", "--out", "--no-fits", "--force"):
        assert option in out
    assert "tandem map beamtime/" in out
    assert "Exit status" in out


def test_a_map_from_a_folder(runner: CliRunner, folder: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "map"
    code, out, err = run(runner, str(folder), "--no-fits", "--suggest", "4", "--out", str(out_dir))
    assert code == 0, (out, err)
    # size_only: swollen micelles and droplets, both spheres; the curves tell them apart
    assert "2 phase(s) from 24 curve(s) over C16E10, hexadecane:" in out
    assert "phase-1" in out
    assert "phase-2" in out
    assert "next compositions" in out
    assert out.count("C16E10=") == 4
    assert f"written to {out_dir}/: phase_map.png, phase_map.csv, phases.json, suggestions.csv" in out
    assert "left out" not in out
    assert err.strip() == ""  # progress is transient; no library banner or warning
    data = json.loads((out_dir / "phases.json").read_text())
    assert sum(len(p["members"]) for p in data["phases"].values()) == N_CURVES
    with (out_dir / "suggestions.csv").open() as fh:
        suggested = list(csv.DictReader(fh))
    assert len(suggested) == 4
    lo, hi = data["bounds"]["C16E10"]
    for row in suggested:
        assert lo <= float(row["C16E10"]) <= hi


def test_unreadable_curves_are_listed_and_foreign_files_kept_with_force(
    runner: CliRunner, folder: Path, tmp_path: Path
) -> None:
    curves = tmp_path / "curves"
    curves.mkdir()
    for p in folder.iterdir():
        (curves / p.name).write_bytes(p.read_bytes())
    (curves / "run_05.nxs").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    out_dir = tmp_path / "map"
    out_dir.mkdir()
    (out_dir / "notes.md").write_text("mine")
    code, out, err = run(runner, str(curves), "--no-fits", "--out", str(out_dir))
    assert_one_line_error(code, out, err, "notes.md", "--force")
    assert sorted(p.name for p in out_dir.iterdir()) == ["notes.md"]
    code, out, err = run(
        runner, str(curves), "--no-fits", "--out", str(out_dir), "--force", "--bounds", "C16E10=0:0.12"
    )
    assert code == 0, (out, err)
    assert "from 23 curve(s)" in out
    assert "1 curve(s) left out" in out
    assert "run_05: unreadable:" in out
    assert (out_dir / "notes.md").read_text() == "mine"
    data = json.loads((out_dir / "phases.json").read_text())
    assert data["bounds"]["C16E10"] == [0.0, 0.12]
    (left,) = [c for c in data["curves"] if c["excluded"]]
    assert left["file"] == "run_05"
    assert left["phase"] is None


def test_a_probe_column_and_a_bad_probe(runner: CliRunner, folder: Path, tmp_path: Path) -> None:
    code, out, err = run(runner, str(folder), "--probe", "gamma", "--out", str(tmp_path / "m"))
    assert_one_line_error(code, out, err, "'gamma' is not a probe", "xray", "neutron")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["{missing}"], ["no such folder"]),
        (["{folder}", "--table", "{missing}"], ["no such composition table"]),
        (["{folder}", "--table", "{ghost_table}"], ["no curve file 'ghost'", "as named or ending"]),
        (["{folder}", "--bounds", "C16E10=0.05:0.06"], ["leave out", "widen the bounds"]),
        (["{folder}", "--bounds", "C16E10=0.05"], ["--bounds takes NAME=LO:HI"]),
        (["{folder}", "--bounds", "glycerol=0:0.1"], ["bounds name glycerol, not in the table"]),
        (["{folder}", "--table", "{one_table}"], ["nothing to map: 1 usable curve(s) of 1"]),
        (["{folder}", "--table", "{bad_table}"], ["line 2", "hexadecane = 7", "percent?"]),
        (["{folder}", "--out", "{a_file}"], ["is a file"]),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    runner: CliRunner, folder: Path, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    tables = {
        "ghost_table": "file,C16E10,hexadecane\nrun_00,0.05,0.01\nghost,0.06,0.02\n",
        "one_table": "file,C16E10,hexadecane\nrun_00,0.05,0.01\n",
        "bad_table": "file,C16E10,hexadecane\nrun_00,0.05,7\n",
    }
    paths = {"folder": str(folder), "missing": str(tmp_path / "missing")}
    paths["a_file"] = str(folder / "run_00.txt")
    for key, text in tables.items():
        (folder / f"{key}.csv").write_text(text)
        paths[key] = str(folder / f"{key}.csv")
    try:
        filled = [a.format(**paths) for a in args]
        if "--out" not in filled:
            filled += ["--out", str(tmp_path / "map")]
        code, out, err = run(runner, *filled, "--no-fits")
    finally:
        for key in tables:
            (folder / f"{key}.csv").unlink()
    assert_one_line_error(code, out, err, *fragments)
    assert not (tmp_path / "map").exists()
