"""`map_curves`: a folder of someone else's curves through the campaign's phase finding and agent."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tandem.analysis.curve_files import write_curve_text, write_nxcansas
from tandem.campaign.map_inputs import MapInputError, load_curves
from tandem.campaign.mapping import OUTPUT_FILES, CurveMap, map_curves, write_map
from tandem.campaign.metrics import match_labels
from tandem.sim.curve_source import simulate_curve
from tandem.sim.zoo import zoo_system

SYSTEM = "surfactant_salt"  # spheres, worms, lamellar over SLES and NaCl
N_CURVES = 24
#: measured on this data set: every curve in its true phase (accuracy 1.0); the margin is for noise
MIN_ACCURACY = 0.9


def make_folder(folder: Path, n: int = N_CURVES, seed: int = 3, system: str = SYSTEM) -> dict[str, str]:
    """`n` curves of a zoo system, text and NXcanSAS alternately, with compositions.csv; their true phases."""
    zoo = zoo_system(system)
    rng = np.random.default_rng(seed)
    lo = np.array([zoo.bounds[k][0] for k in zoo.solutes])
    hi = np.array([zoo.bounds[k][1] for k in zoo.solutes])
    points = lo + rng.random((n, len(lo))) * (hi - lo)
    truth = zoo.phases_of(points)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [["file", *zoo.solutes]]
    phases = {}
    for i, x in enumerate(points):
        composition = dict(zip(zoo.solutes, map(float, x), strict=True))
        curve = simulate_curve(zoo, composition, "xray", rng)
        name = f"s{i:02d}.h5" if i % 2 else f"s{i:02d}.dat"
        if i % 2:
            write_nxcansas(curve, folder / name, title=name)
        else:
            write_curve_text(curve, folder / name)
        rows.append([name, *(f"{v:.6f}" for v in x)])
        phases[name] = str(truth[i])
    with (folder / "compositions.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return phases


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("curves")
    return path, make_folder(path)


@pytest.fixture(scope="module")
def result(folder: tuple[Path, dict[str, str]]) -> CurveMap:
    path, _ = folder
    inputs = load_curves(path, path / "compositions.csv")
    # phase identity does not use the fits (they name phases): the test of names fits fewer curves
    return map_curves(inputs.curves, inputs.compositions, inputs.probes, n_suggestions=3, fits=False)


def test_the_phases_found_are_the_true_ones(result: CurveMap, folder: tuple[Path, dict[str, str]]) -> None:
    _, truth = folder
    assert not result.excluded
    names = list(result.labels)
    match = match_labels([result.labels[n] for n in names], [truth[n] for n in names])
    assert match.accuracy >= MIN_ACCURACY
    assert len(result.phases) == len(set(truth.values()))
    assert sorted(m for members in result.phases.values() for m in members) == sorted(truth)
    assert [e["kind"] for e in result.events] == ["new"] * len(result.phases)


def test_with_fits_phases_are_named_by_the_structure_their_curves_show(tmp_path: Path) -> None:
    truth = make_folder(tmp_path, n=12, seed=4)
    inputs = load_curves(tmp_path, tmp_path / "compositions.csv")
    found = map_curves(inputs.curves, inputs.compositions, "xray", n_suggestions=1)
    assert all(found.morphologies[n] is not None for n in truth)
    known = {"sphere", "cylinder", "lamellar", "polymer", "fractal", "no-contrast"}
    assert {name.rsplit("-", 1)[0] if name[-1].isdigit() else name for name in found.phases} <= known
    names = list(found.labels)
    assert match_labels([found.labels[n] for n in names], [truth[n] for n in names]).accuracy >= MIN_ACCURACY


def test_the_map_is_a_50_by_50_grid_that_agrees_with_the_measured_points(result: CurveMap) -> None:
    pm = result.prediction
    assert pm.compositions.shape == (2500, 2)
    assert set(pm.labels) == set(result.phases)
    lo = np.array([result.bounds[n][0] for n in result.names])
    hi = np.array([result.bounds[n][1] for n in result.names])
    assert np.all(pm.compositions >= lo - 1e-12)
    assert np.all(pm.compositions <= hi + 1e-12)
    # the prediction at each measured point is mostly that point's phase
    grid_u = (pm.compositions - lo) / (hi - lo)
    best = pm.most_likely()
    agree = 0
    for name, phase in result.labels.items():
        u = (np.array([result.compositions[name][n] for n in result.names]) - lo) / (hi - lo)
        agree += best[int(np.argmin(((grid_u - u) ** 2).sum(axis=1)))] == phase
    assert agree / len(result.labels) >= 0.8


def test_suggestions_lie_inside_the_bounds_and_are_not_measured_points(result: CurveMap) -> None:
    assert len(result.suggestions) == 3
    lo = np.array([result.bounds[n][0] for n in result.names])
    hi = np.array([result.bounds[n][1] for n in result.names])
    measured = np.array([[c[n] for n in result.names] for c in result.compositions.values()])
    for s in result.suggestions:
        x = np.array([s[n] for n in result.names])
        assert np.all(x >= lo - 1e-9)
        assert np.all(x <= hi + 1e-9)
        assert np.min(np.max(np.abs((measured - x) / (hi - lo)), axis=1)) > 1e-3


def test_the_bounds_default_to_the_span_of_the_table(result: CurveMap) -> None:
    for n in result.names:
        values = [c[n] for c in result.compositions.values()]
        assert result.bounds[n] == pytest.approx((min(values), max(values)))


def test_the_files_are_written_and_well_formed(result: CurveMap, tmp_path: Path) -> None:
    paths = write_map(result, tmp_path / "map")
    assert sorted(p.name for p in (tmp_path / "map").iterdir()) == sorted(OUTPUT_FILES)
    assert paths["phase_map_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with paths["phase_map_csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2500
    assert {r["label"] for r in rows} == set(result.phases)
    data = json.loads(paths["phases_json"].read_text())
    assert {c["file"] for c in data["curves"]} == set(result.compositions)
    assert all(c["phase"] == result.labels[c["file"]] and c["excluded"] is None for c in data["curves"])
    assert {p: sorted(v["members"]) for p, v in data["phases"].items()} == {
        p: sorted(m) for p, m in result.phases.items()
    }
    assert all(sum(v["morphologies"].values()) == len(v["members"]) for v in data["phases"].values())
    assert len(data["events"]) == len(result.events)
    assert len(data["suggestions"]) == 3
    with paths["suggestions_csv"].open() as fh:
        suggested = list(csv.DictReader(fh))
    assert [float(s["SLES"]) for s in suggested] == pytest.approx([s["SLES"] for s in result.suggestions])


def test_an_unreadable_curve_is_left_out_with_the_readers_message(
    folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    source, _ = folder
    for p in source.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "s03.h5").write_bytes(b"not an HDF5 file at all")
    (tmp_path / "s04.dat").write_text("0.01 1.0\n0.02 abc\n")
    inputs = load_curves(tmp_path, tmp_path / "compositions.csv")
    assert set(inputs.unreadable) == {"s03.h5", "s04.dat"}
    assert "s04.dat" in inputs.unreadable["s04.dat"]
    assert "line 2" in inputs.unreadable["s04.dat"]
    found = map_curves(
        inputs.curves, inputs.compositions, "xray", fits=False, unreadable=inputs.unreadable, n_suggestions=1
    )
    assert set(found.excluded) == {"s03.h5", "s04.dat"}
    assert len(found.labels) == N_CURVES - 2
    assert all(n.startswith("phase-") for n in found.phases)  # no morphology without fits
    out = write_map(found, tmp_path / "map")
    data = json.loads(out["phases_json"].read_text())
    left = {c["file"]: c for c in data["curves"] if c["phase"] is None}
    assert set(left) == {"s03.h5", "s04.dat"}
    assert left["s03.h5"]["excluded"].startswith("unreadable:")


def test_fewer_than_two_usable_curves_is_nothing_to_map(folder: tuple[Path, dict[str, str]]) -> None:
    path, _ = folder
    inputs = load_curves(path, path / "compositions.csv")
    one = dict(list(inputs.curves.items())[:1])
    unreadable = {n: "unreadable: broken" for n in inputs.curves if n not in one}
    with pytest.raises(MapInputError, match="nothing to map: 1 usable curve"):
        map_curves(one, inputs.compositions, "xray", fits=False, unreadable=unreadable)


def test_bounds_must_contain_the_tables_compositions(folder: tuple[Path, dict[str, str]]) -> None:
    path, _ = folder
    inputs = load_curves(path, path / "compositions.csv")
    with pytest.raises(MapInputError, match=r"bounds SLES=0.1:0.2 leave out .* widen the bounds"):
        map_curves(inputs.curves, inputs.compositions, "xray", {"SLES": (0.1, 0.2)}, fits=False)
    with pytest.raises(MapInputError, match="bounds name glycerol, not in the table; components: SLES, NaCl"):
        map_curves(inputs.curves, inputs.compositions, "xray", {"glycerol": (0.0, 0.1)}, fits=False)
    with pytest.raises(MapInputError, match="0 <= LO < HI <= 1"):
        map_curves(inputs.curves, inputs.compositions, "xray", {"NaCl": (0.0, 1.5)}, fits=False)


def test_missing_folder_table_or_file_are_typed_errors(
    folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, _ = folder
    with pytest.raises(MapInputError, match="no such folder"):
        load_curves(tmp_path / "nowhere", path / "compositions.csv")
    with pytest.raises(MapInputError, match="no such composition table"):
        load_curves(path, tmp_path / "none.csv")
    table = tmp_path / "table.csv"
    table.write_text("file,SLES,NaCl\ns00.dat,0.1,0.01\nghost.dat,0.2,0.02\n")
    with pytest.raises(MapInputError, match=rf"{table}: no curve file 'ghost.dat'"):
        load_curves(path, table)
    table.write_text("file,SLES,NaCl\ns00.dat,10,0.01\n")
    with pytest.raises(MapInputError, match=r"line 2: SLES = 10 is not in \[0, 1\] \(percent\?"):
        load_curves(path, table)


def test_a_probe_column_gives_each_curve_its_probe(
    folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, _ = folder
    table = tmp_path / "mixed.csv"
    table.write_text("file,probe,SLES,NaCl\n# a comment\ns00.dat,SANS,0.1,0.01\ns01.h5,,0.2,0.02\n")
    inputs = load_curves(path, table, probe="xray")
    assert {n: p.value for n, p in inputs.probes.items()} == {"s00.dat": "neutron", "s01.h5": "xray"}
    assert inputs.compositions["s00.dat"] == {"SLES": 0.1, "NaCl": 0.01}
    table.write_text("file,probe,SLES,NaCl\ns00.dat,light,0.1,0.01\n")
    with pytest.raises(MapInputError, match="'light' is not a probe; valid: xray"):
        load_curves(path, table)
    table.write_text("file,probe,SLES,NaCl\ns00.dat,xray,abc,0.01\n")
    with pytest.raises(MapInputError, match=rf"{table}, line 2: SLES = 'abc' is not a number"):
        load_curves(path, table)


def test_write_map_never_touches_files_it_did_not_write(result: CurveMap, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(MapInputError, match=r"holds 1 file.* a map does not write .*--force"):
        write_map(result, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    write_map(result, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES, "notes.txt"])
    write_map(result, tmp_path / "fresh")
    write_map(result, tmp_path / "fresh")  # its own files only: replaced without --force


def test_three_and_one_component_maps(tmp_path: Path) -> None:
    make_folder(tmp_path / "three", n=10, seed=5, system="default")
    inputs = load_curves(tmp_path / "three", tmp_path / "three" / "compositions.csv")
    found = map_curves(inputs.curves, inputs.compositions, "xray", fits=False, n_suggestions=1)
    assert found.prediction.compositions.shape == (12**3, 3)
    assert write_map(found, tmp_path / "map3")["phase_map_png"].stat().st_size > 0
    make_folder(tmp_path / "two", n=8, seed=7)
    two = load_curves(tmp_path / "two", tmp_path / "two" / "compositions.csv")
    line = {n: {"SLES": c["SLES"]} for n, c in two.compositions.items()}
    found = map_curves(two.curves, line, "xray", fits=False, n_suggestions=1)
    assert found.names == ("SLES",)
    assert found.prediction.compositions.shape == (200, 1)
    assert write_map(found, tmp_path / "map1")["phase_map_png"].stat().st_size > 0
