"""The campaign report: accuracy with label matching by hand; all files from a synthetic history."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.image import imread

from tandem.campaign.metrics import MetricInputError, first_reaching, match_labels, phase_map_accuracy
from tandem.campaign.report import write_report
from tandem.campaign.report_data import (
    AccuracyPoint,
    Activity,
    CampaignHistory,
    MeasuredCurve,
    Measurement,
    PhaseMap,
    ReportError,
)
from tandem.campaign.report_metrics import station_seconds

# --- label matching, by hand ------------------------------------------------------------------


def test_cluster_names_are_matched_to_phase_names() -> None:
    predicted = ["c0", "c0", "c1", "c1", "c1", "c2"]
    truth = ["micelles", "micelles", "lamellar", "lamellar", "micelles", "lamellar"]
    match = match_labels(predicted, truth)
    # c0 -> micelles (2 right), c1 -> lamellar (2 right); c2 has no partner left: 4 of 6
    assert match.mapping == {"c0": "micelles", "c1": "lamellar"}
    assert match.accuracy == pytest.approx(4 / 6)
    assert match.translate(["c1", "c2", None]) == ["lamellar", None, None]
    # rows c0, c1, c2; columns lamellar, micelles (sorted)
    assert match.confusion.tolist() == [[0, 2], [2, 1], [1, 0]]


def test_matching_is_one_to_one_and_maximises_agreement() -> None:
    # greedy would give c0 -> a (3) and leave c1 with b (0); the optimum is c0 -> b, c1 -> a
    predicted = ["c0"] * 3 + ["c0"] * 2 + ["c1"] * 3
    truth = ["a"] * 3 + ["b"] * 2 + ["a"] * 3
    match = match_labels(predicted, truth)
    assert match.mapping == {"c0": "b", "c1": "a"}
    assert match.accuracy == pytest.approx(5 / 8)


def test_a_split_phase_and_missing_predictions_cost_accuracy() -> None:
    assert phase_map_accuracy(["x", "y", "z", "z"], ["a", "a", "b", "b"]) == pytest.approx(3 / 4)
    assert phase_map_accuracy(["x", None, "y", None], ["a", "a", "b", "b"]) == pytest.approx(2 / 4)
    assert phase_map_accuracy(["x", "x", "x"], ["a", "b", "c"]) == pytest.approx(1 / 3)


def test_plain_name_equality_is_available_and_differs_from_matching() -> None:
    assert phase_map_accuracy(["b", "a"], ["a", "b"], matched=False) == 0.0
    assert phase_map_accuracy(["b", "a"], ["a", "b"]) == 1.0


def test_a_pairing_that_agrees_nowhere_is_not_a_match() -> None:
    match = match_labels(["x", "x", "y"], ["a", "a", "a"])
    assert match.mapping == {"x": "a"}
    assert match.accuracy == pytest.approx(2 / 3)


def test_empty_and_inconsistent_inputs() -> None:
    assert match_labels([], []).accuracy == 0.0
    with pytest.raises(MetricInputError, match="same points"):
        match_labels(["a"], ["a", "b"])
    with pytest.raises(MetricInputError, match="true label"):
        match_labels(["a"], [None])  # type: ignore[list-item]
    with pytest.raises(MetricInputError):
        phase_map_accuracy(["a"], [], matched=False)


labels = st.sampled_from(["a", "b", "c", "d"])


@given(st.lists(st.tuples(labels, labels), min_size=1, max_size=60), st.permutations(["p", "q", "r", "s"]))
def test_accuracy_ignores_how_clusters_are_named(pairs: list[tuple[str, str]], names: list[str]) -> None:
    predicted = [p for p, _ in pairs]
    truth = [t for _, t in pairs]
    rename = dict(zip("abcd", names, strict=True))
    plain = phase_map_accuracy(predicted, truth, matched=False)
    matched = phase_map_accuracy(predicted, truth)
    assert 0.0 <= plain <= matched <= 1.0
    assert phase_map_accuracy([rename[p] for p in predicted], truth) == pytest.approx(matched)


def test_first_reaching_counts_only_a_crossing_that_lasts() -> None:
    xs = [1, 2, 3, 4, 5]
    assert first_reaching(xs, [0.5, 0.92, 0.85, 0.91, 0.95], 0.9) == 4
    assert first_reaching(xs, [0.5, 0.92, 0.93, 0.91, 0.95], 0.9) == 2
    assert first_reaching(xs, [0.5, 0.6, 0.7, 0.95, 0.8], 0.9) is None
    with pytest.raises(MetricInputError):
        first_reaching([1], [0.1, 0.2], 0.5)


# --- the report from a synthetic history ------------------------------------------------------

NAMES = ("SDS", "PPG", "NaCl")
PHASES = ("micelles", "rods", "polymer")


def truth_of(w: np.ndarray) -> str:
    if w[1] > 0.05:
        return "polymer"
    return "rods" if w[2] > 0.02 else "micelles"


def synthetic_history(*, with_truth: bool = True, activities: bool = False) -> CampaignHistory:
    axes = [np.linspace(0, 0.15, 6), np.linspace(0, 0.1, 5), np.linspace(0, 0.05, 4)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    truth = tuple(truth_of(w) for w in grid)
    cluster = {"micelles": "k2", "rods": "k0", "polymer": "k1"}
    predicted = [cluster[t] for t in truth]
    predicted[0] = "k1"  # one mistake
    predicted[1] = None  # and one point the agent has no label for
    rng = np.random.default_rng(3)
    measurements, curves, accuracy = [], [], []
    clock = {"saxs": 0.0, "sans": 0.0}
    for i in range(12):
        station = "sans" if i % 3 == 0 else "saxs"
        w = grid[rng.integers(len(grid))]
        duration = 900.0 if station == "sans" else 60.0
        status = "failed" if i == 5 else "ok"
        label = None if status == "failed" else cluster[truth_of(w)]
        measurements.append(
            Measurement(f"s{i}", station, dict(zip(NAMES, map(float, w), strict=True)), label,
                        300.0 if station == "sans" else 1.0, clock[station], clock[station] + duration,
                        status, f"d{i}")
        )  # fmt: skip
        clock[station] += duration + 40.0
        q = np.geomspace(0.003, 0.5, 80)
        curves.append(MeasuredCurve(f"s{i}", station, q, 10.0 * q ** -(1.0 + i % 3), label))
        accuracy.append(AccuracyPoint(i + 1, sum(clock.values()) / 3600.0, min(1.0, 0.24 + 0.07 * i)))
    acts = (
        tuple(
            Activity(m.station, kind, m.start_s + k * 20.0, m.start_s + (k + 1) * 20.0, m.sample_uid)
            for m in measurements
            for k, kind in enumerate(("load", "measure", "rinse"))
        )
        if activities
        else ()
    )
    return CampaignHistory(
        campaign_id="synthetic",
        names=NAMES,
        stations=("saxs", "sans"),
        measurements=tuple(measurements),
        predicted=PhaseMap(NAMES, grid, tuple(predicted), rng.uniform(0.3, 1.0, len(grid))),
        truth=truth if with_truth else None,
        accuracy=tuple(accuracy) if with_truth else (),
        curves=tuple(curves),
        activities=acts,
        title="a synthetic campaign",
        phases=PHASES,
        metadata={"agent": "multi_probe", "seed": 1},
    )


def assert_png(path: Path) -> None:
    image = imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 200
    assert image.shape[1] > 400
    assert np.ptp(image[..., :3]) > 0  # not a blank canvas


def test_the_report_writes_every_file_with_the_right_numbers(tmp_path: Path) -> None:
    history = synthetic_history()
    report = write_report(history, tmp_path / "report")
    expected = {"phase_map.png", "accuracy.png", "timeline.png", "curves.png", "report.json", "phase_map.csv"}
    assert {p.name for p in (tmp_path / "report").iterdir()} == expected
    for name in ("phase_map.png", "accuracy.png", "timeline.png", "curves.png"):
        assert_png(tmp_path / "report" / name)

    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data == json.loads(json.dumps(report.metrics))
    n_grid = len(history.predicted.labels) if history.predicted else 0
    assert data["samples"] == 12
    assert data["failed"] == 1
    assert data["stations"]["sans"]["samples"] == 4
    assert data["stations"]["sans"]["station_hours"] == pytest.approx(4 * 900 / 3600)
    assert data["stations"]["saxs"]["station_hours"] == pytest.approx(8 * 60 / 3600)
    assert data["accuracy"] == pytest.approx((n_grid - 2) / n_grid)
    assert data["label_matching"]["mapping"] == {"k0": "rods", "k1": "polymer", "k2": "micelles"}
    assert data["to_reach"]["0.9"]["samples"] == 11  # 0.94 after the 11th sample
    assert data["to_reach"]["0.95"]["samples"] == 12
    assert data["to_reach"]["0.9"]["station_hours"] == pytest.approx(
        data["accuracy_series"][10]["station_hours"]
    )
    assert data["metadata"] == {"agent": "multi_probe", "seed": 1}
    assert data["files"]["phase_map_csv"] == "phase_map.csv"

    with (tmp_path / "report" / "phase_map.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_grid
    assert list(rows[0]) == ["SDS", "PPG", "NaCl", "label", "probability", "label_matched", "truth"]
    assert rows[0]["label"] == "k1"
    assert rows[0]["label_matched"] == "polymer"
    assert rows[0]["truth"] == "micelles"
    assert rows[1]["label"] == ""
    right = sum(r["label_matched"] == r["truth"] for r in rows)
    assert right / n_grid == pytest.approx(data["accuracy"])


def test_without_a_truth_the_report_leaves_accuracy_out(tmp_path: Path) -> None:
    report = write_report(synthetic_history(with_truth=False), tmp_path)
    assert "accuracy" not in report.metrics
    assert "to_reach" not in report.metrics
    with (tmp_path / "phase_map.csv").open() as fh:
        assert next(csv.reader(fh)) == ["SDS", "PPG", "NaCl", "label", "probability"]
    assert_png(tmp_path / "accuracy.png")


def test_station_time_comes_from_activities_when_they_are_recorded(tmp_path: Path) -> None:
    history = synthetic_history(activities=True)
    assert station_seconds(history) == pytest.approx({"saxs": 8 * 60.0, "sans": 4 * 60.0})
    write_report(history, tmp_path)
    assert_png(tmp_path / "timeline.png")


@pytest.mark.parametrize("d", [2, 4])
def test_the_phase_map_is_drawn_for_other_dimensions(tmp_path: Path, d: int) -> None:
    names = tuple(f"c{k}" for k in range(d))
    grid = np.stack(np.meshgrid(*[np.linspace(0, 0.1, 4)] * d, indexing="ij"), -1).reshape(-1, d)
    truth = tuple("a" if w[0] > 0.05 else "b" for w in grid)
    history = CampaignHistory(
        campaign_id=f"d{d}",
        names=names,
        stations=("saxs",),
        measurements=(Measurement("s", "saxs", dict.fromkeys(names, 0.05), "x", 1.0, 0.0, 10.0),),
        predicted=PhaseMap(names, grid, tuple("x" if t == "a" else "y" for t in truth), np.ones(len(grid))),
        truth=truth,
    )
    report = write_report(history, tmp_path)
    assert report.metrics["accuracy"] == 1.0
    assert_png(tmp_path / "phase_map.png")


def test_an_inconsistent_history_is_refused() -> None:
    good = synthetic_history()
    assert good.predicted is not None
    with pytest.raises(ReportError, match="truth has 3 labels"):
        CampaignHistory("x", NAMES, ("saxs", "sans"), (), good.predicted, ("a", "b", "c"))
    with pytest.raises(ReportError, match="not listed in stations"):
        CampaignHistory("x", NAMES, ("saxs",), good.measurements)
    with pytest.raises(ReportError, match="without a predicted map"):
        CampaignHistory("x", NAMES, ("saxs",), (), None, ("a",))
    with pytest.raises(ReportError, match="one label and one probability"):
        PhaseMap(NAMES, np.zeros((3, 3)), ("a", "b"), np.ones(3))
    with pytest.raises(ReportError, match="n x 3"):
        PhaseMap(NAMES, np.zeros((3, 2)), ("a", "b", "c"), np.ones(3))
