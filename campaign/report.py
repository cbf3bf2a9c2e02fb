"""The end-of-campaign report: figures, metrics and the predicted map, written into one folder.

The report is built from plain data, a `CampaignHistory`, so the same code serves
a campaign that just finished in-process and one rebuilt from Tiled afterwards.
`write_report(history, folder)` writes:

==================  ===============================================================
``phase_map.png``   the predicted phase map beside the truth (when known), as
                    2-D slices through composition space, with the samples measured
``accuracy.png``    phase-map accuracy against samples and against station time
``timeline.png``    both stations' activities over station time (a Gantt chart)
``curves.png``      every measured I(q), one panel per station, coloured by phase
``report.json``     the metrics (accuracy, samples and hours to reach it, counts,
                    station time per station, label matching)
``phase_map.csv``   the grid: composition, label, probability (and the truth)
==================  ===============================================================

Figures use Matplotlib's object API on the Agg canvas (no pyplot state), so a
report can be written from any thread or server.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tandem.campaign.metrics import LabelMatch, first_reaching, match_labels
from tandem.errors import TandemError

#: Okabe-Ito, colour-blind safe, then Matplotlib's tab10 for any further labels.
_PALETTE = (
    "#56B4E9", "#009E73", "#E69F00", "#CC79A7", "#D55E00", "#0072B2", "#F0E442", "#000000",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
)  # fmt: skip
_UNLABELLED = "#BBBBBB"
_STATION_MARKERS = ("o", "s", "^", "D", "v", "P")
#: accuracy goals whose crossing the report states in samples and station hours
ACCURACY_GOALS = (0.8, 0.9, 0.95)
#: slices of the phase map shown along the third composition axis
MAX_SLICES = 4


class ReportError(TandemError, ValueError):
    """A history the report cannot be built from (inconsistent sizes, nothing to show)."""


@dataclass(frozen=True)
class Measurement:
    """One measured sample, as the campaign recorded it. Times are station seconds since the start."""

    sample_uid: str
    station: str
    composition: Mapping[str, float]
    label: str | None
    exposure_s: float
    start_s: float
    end_s: float
    status: str = "ok"
    decision_uid: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_uid": self.sample_uid,
            "station": self.station,
            "composition": dict(self.composition),
            "label": self.label,
            "exposure_s": self.exposure_s,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "status": self.status,
            "decision_uid": self.decision_uid,
        }


@dataclass(frozen=True)
class Activity:
    """A stretch of station time spent on one thing (prepare, load, measure, rinse, ...)."""

    station: str
    kind: str
    start_s: float
    end_s: float
    sample_uid: str | None = None


@dataclass(frozen=True)
class PhaseMap:
    """Labels and their probabilities on a grid of compositions (``n x d``, columns in `names` order)."""

    names: tuple[str, ...]
    compositions: np.ndarray
    labels: tuple[str | None, ...]
    probabilities: np.ndarray

    def __post_init__(self) -> None:
        comps = np.asarray(self.compositions, dtype=np.float64)
        probs = np.asarray(self.probabilities, dtype=np.float64)
        if comps.ndim != 2 or comps.shape[1] != len(self.names):
            raise ReportError(
                f"compositions must be an n x {len(self.names)} array ({', '.join(self.names)}), "
                f"got shape {comps.shape}"
            )
        if len(self.labels) != len(comps) or probs.shape != (len(comps),):
            raise ReportError(
                f"one label and one probability per composition: {len(comps)} compositions, "
                f"{len(self.labels)} labels, probabilities of shape {probs.shape}"
            )
        object.__setattr__(self, "compositions", comps)
        object.__setattr__(self, "probabilities", probs)
        object.__setattr__(self, "labels", tuple(self.labels))


@dataclass(frozen=True)
class AccuracyPoint:
    """The map's accuracy after `n_samples` measurements and `station_hours` of station time."""

    n_samples: int
    station_hours: float
    accuracy: float


@dataclass(frozen=True)
class MeasuredCurve:
    sample_uid: str
    station: str
    q_inv_a: np.ndarray
    intensity_per_cm: np.ndarray
    label: str | None = None


@dataclass(frozen=True)
class CampaignHistory:
    """Everything the report shows, as plain values."""

    campaign_id: str
    #: the composition axes (non-solvent components), in the order of the grid's columns
    names: tuple[str, ...]
    stations: tuple[str, ...]
    measurements: tuple[Measurement, ...]
    predicted: PhaseMap | None = None
    #: true labels on the predicted map's grid, when the truth is known (the twin)
    truth: tuple[str, ...] | None = None
    accuracy: tuple[AccuracyPoint, ...] = ()
    curves: tuple[MeasuredCurve, ...] = ()
    activities: tuple[Activity, ...] = ()
    title: str = ""
    #: the truth's phase names in the order their colours are given (optional)
    phases: tuple[str, ...] = ()
    #: anything else worth keeping in report.json (agent, seeds, software versions)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: samples a stop cut off mid-run (their decisions were run again): not among `measurements`
    interrupted: int = 0

    def __post_init__(self) -> None:
        if self.truth is not None:
            if self.predicted is None:
                raise ReportError("a truth is given without a predicted map to compare it with")
            if len(self.truth) != len(self.predicted.labels):
                raise ReportError(
                    f"the truth has {len(self.truth)} labels for a grid of "
                    f"{len(self.predicted.labels)} points"
                )
        if self.predicted is not None and self.predicted.names != tuple(self.names):
            raise ReportError(
                f"the map's axes {self.predicted.names} differ from the campaign's {self.names}"
            )
        unknown = sorted({m.station for m in self.measurements} - set(self.stations))
        if unknown:
            raise ReportError(
                f"measurements at stations {unknown} not listed in stations {list(self.stations)}"
            )


@dataclass(frozen=True)
class Report:
    """Where the report went, and its metrics (the content of report.json)."""

    folder: Path
    files: Mapping[str, Path]
    metrics: Mapping[str, Any]


def write_report(history: CampaignHistory, folder: str | Path) -> Report:
    """Write the report's figures, `report.json` and `phase_map.csv` into `folder` (created if needed)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    match = (
        match_labels(history.predicted.labels, history.truth)
        if history.predicted is not None and history.truth is not None
        else None
    )
    colours = _colours(history, match)
    files: dict[str, Path] = {}
    if history.predicted is not None:
        files["phase_map_png"] = _plot_phase_map(history, match, colours, out / "phase_map.png")
        files["phase_map_csv"] = _write_csv(history, match, out / "phase_map.csv")
    files["accuracy_png"] = _plot_accuracy(history, out / "accuracy.png")
    files["timeline_png"] = _plot_timeline(history, match, colours, out / "timeline.png")
    files["curves_png"] = _plot_curves(history, match, colours, out / "curves.png")
    metrics = campaign_metrics(history, match)
    metrics["files"] = {k: p.name for k, p in files.items()} | {"report_json": "report.json"}
    files["report_json"] = out / "report.json"
    files["report_json"].write_text(json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")
    return Report(out, files, metrics)


# --- metrics ----------------------------------------------------------------------------------


def station_seconds(history: CampaignHistory) -> dict[str, float]:
    """Busy time per station: its activities when recorded, else its measurements' spans."""
    busy = dict.fromkeys(history.stations, 0.0)
    spans = (
        [(a.station, a.start_s, a.end_s) for a in history.activities]
        if history.activities
        else [(m.station, m.start_s, m.end_s) for m in history.measurements]
    )
    for station, start, end in spans:
        busy[station] = busy.get(station, 0.0) + max(0.0, end - start)
    return busy


def campaign_metrics(history: CampaignHistory, match: LabelMatch | None = None) -> dict[str, Any]:
    """The numbers of report.json."""
    per_station: dict[str, dict[str, Any]] = {}
    busy = station_seconds(history)
    for station in history.stations:
        mine = [m for m in history.measurements if m.station == station]
        per_station[station] = {
            "samples": len(mine),
            "failed": sum(not m.ok for m in mine),
            "station_hours": busy.get(station, 0.0) / 3600.0,
            "exposure_hours": sum(m.exposure_s for m in mine) / 3600.0,
            "last_end_s": max((m.end_s for m in mine), default=0.0),
        }
    metrics: dict[str, Any] = {
        "campaign_id": history.campaign_id,
        "title": history.title or history.campaign_id,
        "axes": list(history.names),
        "samples": len(history.measurements),
        "failed": sum(not m.ok for m in history.measurements),
        "interrupted": history.interrupted,
        "station_hours": sum(busy.values()) / 3600.0,
        "stations": per_station,
        "labels_measured": _counts(m.label for m in history.measurements if m.ok),
    }
    if history.predicted is not None:
        probs = history.predicted.probabilities
        metrics["map"] = {
            "grid_points": len(history.predicted.labels),
            "mean_confidence": float(np.mean(probs)) if probs.size else None,
            "labels_predicted": _counts(history.predicted.labels),
        }
    if match is not None:
        metrics["accuracy"] = match.accuracy
        metrics["label_matching"] = match.to_dict()
    if history.accuracy:
        xs_n = [float(p.n_samples) for p in history.accuracy]
        xs_h = [p.station_hours for p in history.accuracy]
        ys = [p.accuracy for p in history.accuracy]
        metrics["accuracy_series"] = [
            {"n_samples": p.n_samples, "station_hours": p.station_hours, "accuracy": p.accuracy}
            for p in history.accuracy
        ]
        metrics["to_reach"] = {
            f"{goal:g}": {
                "samples": _int_or_none(first_reaching(xs_n, ys, goal)),
                "station_hours": first_reaching(xs_h, ys, goal),
            }
            for goal in ACCURACY_GOALS
        }
    if history.metadata:
        metrics["metadata"] = dict(history.metadata)
    return metrics


def _counts(labels: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for label in labels:
        key = label if label is not None else "(none)"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _int_or_none(x: float | None) -> int | None:
    return None if x is None else int(x)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


# --- colours ----------------------------------------------------------------------------------


def _colours(history: CampaignHistory, match: LabelMatch | None) -> dict[str, str]:
    """One colour per name: truth phases first (in `phases` order), then any unmatched predicted label.

    Predicted labels are shown under the truth name they were matched to, so the same
    phase has the same colour in the predicted map, the truth, the curves and the timeline.
    """
    names: list[str] = list(history.phases)
    measured: list[str | None] = [m.label for m in history.measurements] + [c.label for c in history.curves]
    if history.predicted is not None:
        measured += list(history.predicted.labels)
    for label in [*(history.truth or ()), *(_shown(lab, match) for lab in measured if lab is not None)]:
        if label not in names:
            names.append(label)
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def _shown(label: str, match: LabelMatch | None) -> str:
    """A predicted label in the truth's name when it was matched, else as it is."""
    if match is None:
        return label
    return match.mapping.get(label, label)


# --- figures ----------------------------------------------------------------------------------


def _axis_levels(values: np.ndarray) -> np.ndarray:
    return np.unique(np.round(values, 12))


def _slices(history: CampaignHistory) -> tuple[int, int, int | None, list[float], dict[int, float]]:
    """Axes shown (x, y), the axis sliced (third) and its levels, and fixed values of any further axes."""
    assert history.predicted is not None
    comps = history.predicted.compositions
    d = comps.shape[1]
    x, y = 0, (1 if d > 1 else 0)
    if d < 3:
        return x, y, None, [math.nan], {}
    levels = _axis_levels(comps[:, 2])
    picks = np.unique(np.linspace(0, len(levels) - 1, min(MAX_SLICES, len(levels))).round().astype(int))
    fixed = {}
    for k in range(3, d):
        lv = _axis_levels(comps[:, k])
        fixed[k] = float(lv[len(lv) // 2])
    return x, y, 2, [float(levels[i]) for i in picks], fixed


def _plot_phase_map(
    history: CampaignHistory, match: LabelMatch | None, colours: Mapping[str, str], path: Path
) -> Path:
    assert history.predicted is not None
    pm = history.predicted
    x, y, z, levels, fixed = _slices(history)
    rows: list[tuple[str, list[str | None] | None]] = []
    if history.truth is not None:
        rows.append(("truth", list(history.truth)))
    predicted_shown = [None if lab is None else _shown(lab, match) for lab in pm.labels]
    title = "predicted" + (f" (accuracy {match.accuracy:.1%})" if match is not None else "")
    rows.append((title, predicted_shown))
    rows.append(("confidence", None))
    names = list(colours)
    # one code per name, and one more for "no label"; points outside the space stay blank
    code = {name: i for i, name in enumerate(names)}
    cmap = ListedColormap([*(colours[n] for n in names), _UNLABELLED]).with_extremes(bad="white")
    fig = Figure(figsize=(3.4 * len(levels) + 1.5, 3.0 * len(rows) + 0.8), layout="constrained")
    axes = fig.subplots(len(rows), len(levels), squeeze=False)
    xs_all = _axis_levels(pm.compositions[:, x])
    ys_all = _axis_levels(pm.compositions[:, y])
    confidence_image = None
    for col, level in enumerate(levels):
        keep = np.ones(len(pm.compositions), dtype=bool)
        if z is not None:
            keep &= np.isclose(pm.compositions[:, z], level, atol=1e-9)
        for k, value in fixed.items():
            keep &= np.isclose(pm.compositions[:, k], value, atol=1e-9)
        ix = np.searchsorted(xs_all, np.round(pm.compositions[keep, x], 12))
        iy = np.searchsorted(ys_all, np.round(pm.compositions[keep, y], 12))
        for row, (label, values) in enumerate(rows):
            ax: Axes = axes[row][col]
            grid = np.full((len(ys_all), len(xs_all)), np.nan)
            if values is None:
                grid[iy, ix] = pm.probabilities[keep]
                confidence_image = ax.pcolormesh(
                    cell_edges(xs_all), cell_edges(ys_all), grid, cmap="viridis", vmin=0.0, vmax=1.0
                )
            else:
                chosen = [values[i] for i in np.flatnonzero(keep)]
                grid[iy, ix] = [len(names) if v is None else code[v] for v in chosen]
                ax.pcolormesh(
                    cell_edges(xs_all),
                    cell_edges(ys_all),
                    np.ma.masked_invalid(grid),
                    cmap=cmap,
                    vmin=-0.5,
                    vmax=len(names) + 0.5,
                )
            _samples_on_slice(ax, history, x=x, y=y, z=z, level=level, levels=levels)
            if row == len(rows) - 1 or values is None:
                ax.set_xlabel(f"{history.names[x]} (mass fraction)")
            if col == 0:
                ax.set_ylabel(f"{label}\n{history.names[y]} (mass fraction)")
            if row == 0 and z is not None:
                ax.set_title(f"{history.names[z]} = {level:.4g}")
    if confidence_image is not None:
        fig.colorbar(confidence_image, ax=axes[-1, :].tolist(), label="probability of the label", shrink=0.8)
    handles: list[Any] = [Patch(color=colours[n], label=n.replace("_", " ")) for n in names]
    if any(v is None for _, values in rows if values is not None for v in values):
        handles.append(Patch(color=_UNLABELLED, label="no label"))
    handles += [
        Line2D([], [], marker=_STATION_MARKERS[i % len(_STATION_MARKERS)], color="white", markeredgecolor="k",
               linestyle="", label=f"measured at {s}")
        for i, s in enumerate(history.stations)
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False)
    fig.suptitle(f"{history.title or history.campaign_id}: phase map", fontsize="medium")
    fig.savefig(path, dpi=110)
    return path


def cell_edges(levels: np.ndarray) -> np.ndarray:
    """Edges of the cells around grid levels (for pcolormesh): midpoints, and half a step beyond the ends."""
    if len(levels) == 1:
        return np.array([levels[0] - 0.5, levels[0] + 0.5])
    mid = (levels[1:] + levels[:-1]) / 2.0
    return np.concatenate([[2 * levels[0] - mid[0]], mid, [2 * levels[-1] - mid[-1]]])


def _samples_on_slice(
    ax: Axes,
    history: CampaignHistory,
    *,
    x: int,
    y: int,
    z: int | None,
    level: float,
    levels: Sequence[float],
) -> None:
    """Measured samples near this slice (closer to it than to its neighbours)."""
    half = (max(levels) - min(levels)) / (2 * max(len(levels) - 1, 1)) if z is not None else math.inf
    for i, station in enumerate(history.stations):
        pts = []
        for m in history.measurements:
            if m.station != station:
                continue
            values = [float(m.composition.get(n, 0.0)) for n in history.names]
            if z is None or abs(values[z] - level) <= half + 1e-12:
                pts.append((values[x], values[y]))
        if pts:
            arr = np.asarray(pts)
            ax.scatter(
                arr[:, 0],
                arr[:, 1],
                marker=_STATION_MARKERS[i % len(_STATION_MARKERS)],
                facecolors="white",
                edgecolors="black",
                s=22,
                linewidths=0.8,
                zorder=3,
            )


def _plot_accuracy(history: CampaignHistory, path: Path) -> Path:
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax_n, ax_h = fig.subplots(1, 2, sharey=True)
    if history.accuracy:
        n = [p.n_samples for p in history.accuracy]
        h = [p.station_hours for p in history.accuracy]
        a = [p.accuracy for p in history.accuracy]
        ax_n.plot(n, a, marker=".", color="#0072B2")
        ax_h.plot(h, a, marker=".", color="#D55E00")
        for goal in ACCURACY_GOALS:
            for ax in (ax_n, ax_h):
                ax.axhline(goal, color="0.8", linewidth=0.8, zorder=0)
            ax_h.annotate(f"{goal:.0%}", (1.0, goal), xycoords=("axes fraction", "data"), xytext=(3, 0),
                          textcoords="offset points", va="center", fontsize="small", color="0.5")  # fmt: skip
    else:
        for ax in (ax_n, ax_h):
            ax.text(0.5, 0.5, "no accuracy recorded\n(the truth is unknown)", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
    ax_n.set_xlabel("samples measured")
    ax_h.set_xlabel("station time (hours, all stations)")
    ax_n.set_ylabel("phase-map accuracy (labels matched)")
    ax_n.set_ylim(0.0, 1.02)
    fig.suptitle(f"{history.title or history.campaign_id}: accuracy", fontsize="medium")
    fig.savefig(path, dpi=110)
    return path


def _plot_timeline(
    history: CampaignHistory, match: LabelMatch | None, colours: Mapping[str, str], path: Path
) -> Path:
    fig = Figure(figsize=(10.0, 1.2 + 0.9 * max(len(history.stations), 1)), layout="constrained")
    ax = fig.subplots()
    y_of = {s: i for i, s in enumerate(history.stations)}
    handles: dict[str, Any] = {}
    if history.activities:
        kinds = sorted({a.kind for a in history.activities})
        kind_colour = {k: _PALETTE[(i + 5) % len(_PALETTE)] for i, k in enumerate(kinds)}
        for act in history.activities:
            ax.broken_barh(
                [(act.start_s / 3600.0, (act.end_s - act.start_s) / 3600.0)],
                (y_of[act.station] - 0.35, 0.7),
                facecolors=kind_colour[act.kind],
            )
        handles = {k: Patch(color=c, label=k) for k, c in kind_colour.items()}
    else:
        for m in history.measurements:
            label = _shown(m.label, match) if m.ok and m.label is not None else None
            colour = colours.get(label, _UNLABELLED) if label is not None else _UNLABELLED
            ax.broken_barh(
                [(m.start_s / 3600.0, (m.end_s - m.start_s) / 3600.0)],
                (y_of[m.station] - 0.35, 0.7),
                facecolors=colour,
                edgecolors="black" if m.ok else "#D55E00",
                linewidth=0.3 if m.ok else 1.0,
                hatch=None if m.ok else "///",
            )
            key = label if label is not None else ("failed" if not m.ok else "no label")
            handles.setdefault(key, Patch(facecolor=colour, label=key.replace("_", " ")))
    ax.set_yticks(range(len(history.stations)), [s.upper() for s in history.stations])
    ax.set_ylim(-0.6, len(history.stations) - 0.4)
    ax.set_xlabel("station time since the start (hours)")
    busy = station_seconds(history)
    ax.set_title(
        "station timelines — busy: "
        + ", ".join(f"{s} {busy.get(s, 0.0) / 3600:.2f} h" for s in history.stations),
        fontsize="medium",
    )
    if handles:
        order = {name: i for i, name in enumerate(colours)}
        keys = sorted(handles, key=lambda k: order.get(k, len(order)))
        ax.legend(
            handles=[handles[k] for k in keys], loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False
        )
    fig.savefig(path, dpi=110)
    return path


def _plot_curves(
    history: CampaignHistory, match: LabelMatch | None, colours: Mapping[str, str], path: Path
) -> Path:
    stations = list(history.stations) or ["(none)"]
    fig = Figure(figsize=(4.6 * len(stations), 4.0), layout="constrained")
    axes = fig.subplots(1, len(stations), squeeze=False)[0]
    seen: dict[str, Any] = {}
    for ax, station in zip(axes, stations, strict=True):
        mine = [c for c in history.curves if c.station == station]
        for curve in mine:
            q = np.asarray(curve.q_inv_a, dtype=np.float64)
            intensity = np.asarray(curve.intensity_per_cm, dtype=np.float64)
            ok = np.isfinite(q) & np.isfinite(intensity) & (q > 0) & (intensity > 0)
            if not ok.any():
                continue
            label = None if curve.label is None else _shown(curve.label, match)
            colour = colours.get(label, _UNLABELLED) if label is not None else _UNLABELLED
            ax.loglog(q[ok], intensity[ok], color=colour, linewidth=0.8, alpha=0.8)
            key = label or "no label"
            seen.setdefault(key, Line2D([], [], color=colour, label=key.replace("_", " ")))
        ax.set_title(f"{station.upper()}: {len(mine)} curves", fontsize="medium")
        ax.set_xlabel("q (1/Å)")
        if not mine:
            ax.text(0.5, 0.5, "no curves", ha="center", va="center", transform=ax.transAxes)
    axes[0].set_ylabel("I(q) (1/cm)")
    if seen:
        order = {name: i for i, name in enumerate(colours)}
        keys = sorted(seen, key=lambda k: order.get(k, len(order)))
        fig.legend(handles=[seen[k] for k in keys], loc="outside right upper", frameon=False)
    fig.savefig(path, dpi=110)
    return path


# --- the grid as CSV --------------------------------------------------------------------------


def _write_csv(history: CampaignHistory, match: LabelMatch | None, path: Path) -> Path:
    assert history.predicted is not None
    pm = history.predicted
    header = [*pm.names, "label", "probability"]
    if history.truth is not None:
        header += ["label_matched", "truth"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for i, row in enumerate(pm.compositions):
            label = pm.labels[i]
            values: list[Any] = [f"{float(v):.6g}" for v in row]
            values += [label or "", f"{float(pm.probabilities[i]):.6g}"]
            if history.truth is not None:
                matched = None if (label is None or match is None) else match.mapping.get(label)
                values += [matched or "", history.truth[i]]
            writer.writerow(values)
    return path


__all__ = [
    "ACCURACY_GOALS",
    "AccuracyPoint",
    "Activity",
    "CampaignHistory",
    "MeasuredCurve",
    "Measurement",
    "PhaseMap",
    "Report",
    "ReportError",
    "campaign_metrics",
    "station_seconds",
    "write_report",
]
