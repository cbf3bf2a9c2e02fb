"""The figure of `tandem map`: predicted phases as coloured regions, measured curves marked by phase.

One axis: a strip along it. Two: the plane. Three: three slices of the third axis (low, middle,
high). More: the two leading axes with the others at the middle of their range. Suggestions are
stars, curves left out grey crosses. Matplotlib's object API on the Agg canvas (no pyplot state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tandem.campaign.report_figures import cell_edges

if TYPE_CHECKING:
    from pathlib import Path

    from tandem.campaign.mapping import CurveMap

#: Okabe-Ito, colour-blind safe, then Matplotlib's tab10 (as the campaign report)
PALETTE = (
    "#56B4E9", "#009E73", "#E69F00", "#CC79A7", "#D55E00", "#0072B2", "#F0E442", "#000000",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
)  # fmt: skip
_LEFT_OUT = "#888888"


def plot_map(result: CurveMap, path: Path) -> Path:
    """Draw `result`'s map to `path` (PNG)."""
    pm = result.prediction
    comps = np.asarray(pm.compositions, dtype=np.float64)
    d = comps.shape[1]
    phases = list(pm.labels) or list(result.phases)
    colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(phases)}
    best = pm.most_likely()
    codes = np.array([np.nan if b is None else phases.index(b) for b in best], dtype=np.float64)
    levels = [np.unique(np.round(comps[:, k], 12)) for k in range(d)]
    slices: list[float | None] = [None]
    if d >= 3:
        z = levels[2]
        slices = [float(z[i]) for i in sorted({0, len(z) // 2, len(z) - 1})]
    fixed = {k: float(levels[k][len(levels[k]) // 2]) for k in range(3, d)}
    fig = Figure(figsize=(4.6 * len(slices) + 1.0, 2.8 if d == 1 else 4.6), layout="constrained")
    axes = fig.subplots(1, len(slices), squeeze=False)[0]
    cmap = ListedColormap([colours[p] for p in phases] or ["white"]).with_extremes(bad="white")
    for ax, level in zip(axes, slices, strict=True):
        keep = np.ones(len(comps), dtype=bool)
        if level is not None:
            keep &= np.isclose(comps[:, 2], level, atol=1e-9)
        for k, value in fixed.items():
            keep &= np.isclose(comps[:, k], value, atol=1e-9)
        if d == 1:
            _strip(ax, xs=levels[0], x=comps[keep, 0], codes=codes[keep], cmap=cmap, n=len(phases))
        else:
            _plane(
                ax, xs=levels[0], ys=levels[1], comps=comps[keep], codes=codes[keep], cmap=cmap, n=len(phases)
            )
        _points(ax, result, colours, level, levels[2] if d >= 3 else None)
        ax.set_xlabel(f"{result.names[0]} (mass fraction)")
        if d > 1:
            ax.set_ylabel(f"{result.names[1]} (mass fraction)")
        if level is not None:
            extra = ", ".join(f"{result.names[k]} = {v:.3g}" for k, v in fixed.items())
            ax.set_title(
                f"{result.names[2]} = {level:.3g}" + (f", {extra}" if extra else ""), fontsize="medium"
            )
    handles: list[Any] = [Patch(color=colours[p], label=p.replace("_", " ")) for p in phases]
    handles.append(Line2D([], [], marker="o", color="white", markeredgecolor="k", ls="", label="measured"))
    if result.excluded:
        handles.append(Line2D([], [], marker="x", color=_LEFT_OUT, ls="", label="left out"))
    if result.suggestions:
        handles.append(Line2D([], [], marker="*", color="k", markersize=11, ls="", label="suggested next"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
    fig.suptitle(
        f"phase map: {len(result.phases)} phase(s) from {len(result.labels)} curve(s)", fontsize="medium"
    )
    fig.savefig(path, dpi=110)
    return path


def _plane(
    ax: Axes,
    *,
    xs: np.ndarray,
    ys: np.ndarray,
    comps: np.ndarray,
    codes: np.ndarray,
    cmap: Colormap,
    n: int,
) -> None:
    grid = np.full((len(ys), len(xs)), np.nan)
    ix = np.searchsorted(xs, np.round(comps[:, 0], 12))
    iy = np.searchsorted(ys, np.round(comps[:, 1], 12))
    grid[iy, ix] = codes
    ax.pcolormesh(
        cell_edges(xs), cell_edges(ys), np.ma.masked_invalid(grid),
        cmap=cmap, vmin=-0.5, vmax=max(n, 1) - 0.5, alpha=0.55,
    )  # fmt: skip


def _strip(ax: Axes, *, xs: np.ndarray, x: np.ndarray, codes: np.ndarray, cmap: Colormap, n: int) -> None:
    grid = np.full((1, len(xs)), np.nan)
    grid[0, np.searchsorted(xs, np.round(x, 12))] = codes
    ax.pcolormesh(
        cell_edges(xs), [-1.0, 1.0], np.ma.masked_invalid(grid), cmap=cmap, vmin=-0.5, vmax=max(n, 1) - 0.5,
        alpha=0.55,
    )  # fmt: skip
    ax.set_yticks([])


def _points(
    ax: Axes, result: CurveMap, colours: dict[str, str], level: float | None, z_levels: np.ndarray | None
) -> None:
    """Measured curves (by phase), left-out curves and suggestions nearest this slice."""
    names = result.names
    half = np.inf
    if level is not None and z_levels is not None and len(z_levels) > 1:
        half = float(z_levels[-1] - z_levels[0]) / 4.0

    def near(comp: Any) -> bool:
        return level is None or abs(float(comp[names[2]]) - level) <= half

    def xy(comp: Any) -> tuple[float, float]:
        return float(comp[names[0]]), (float(comp[names[1]]) if len(names) > 1 else 0.0)

    for curve, phase in result.labels.items():
        comp = result.compositions[curve]
        if near(comp):
            ax.plot(*xy(comp), "o", color=colours.get(phase, _LEFT_OUT), markeredgecolor="k", markersize=6)
    for curve in result.excluded:
        left = result.compositions.get(curve)
        if left is not None and near(left):
            ax.plot(*xy(left), "x", color=_LEFT_OUT, markersize=7)
    for s in result.suggestions:
        if near(s):
            ax.plot(*xy(s), "*", color="k", markersize=13, markeredgecolor="white")
