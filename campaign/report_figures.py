"""The report's figures: the phase map beside the truth, accuracy, station timelines, curves.

Each phase has one colour in every figure: a predicted label is shown under the
truth's name it was matched to. Figures use Matplotlib's object API on the Agg
canvas (no pyplot state), so a report can be drawn from any thread or server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tandem.campaign.metrics import LabelMatch
from tandem.campaign.report_data import CampaignHistory
from tandem.campaign.report_metrics import ACCURACY_GOALS, station_seconds

#: Okabe-Ito, colour-blind safe, then Matplotlib's tab10 for any further labels.
_PALETTE = (
    "#56B4E9", "#009E73", "#E69F00", "#CC79A7", "#D55E00", "#0072B2", "#F0E442", "#000000",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
)  # fmt: skip
_UNLABELLED = "#BBBBBB"
_STATION_MARKERS = ("o", "s", "^", "D", "v", "P")
#: slices of the phase map shown along the third composition axis
MAX_SLICES = 4


# --- colours ----------------------------------------------------------------------------------


def phase_colours(history: CampaignHistory, match: LabelMatch | None) -> dict[str, str]:
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


def plot_phase_map(
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


def plot_accuracy(history: CampaignHistory, path: Path) -> Path:
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


def plot_timeline(
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


def plot_curves(
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
