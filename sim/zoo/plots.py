"""Pictures of the zoo's phase maps: one panel per probe view, the ternary as a Gibbs triangle.

Matplotlib's object API on the Agg backend (no pyplot state), as in
`tandem.sim.plots`. A phase map is drawn from `phases_of` on a fine grid, so
what the picture shows is exactly what maps are scored against.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.tri import Triangulation

from tandem.sim.zoo.base import FloatArray, ZooSystem
from tandem.sim.zoo.crossover import Crossover
from tandem.stations import Probe

#: Okabe-Ito colours (colour-blind safe); a name keeps its colour across a figure's panels
COLOURS: tuple[str, ...] = ("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#0072B2", "#F0E442")
#: points per axis of the picture's grid (finer than the 50 × 50 scoring grid, for crisp boundaries)
PICTURE_POINTS = 240
#: NaCl slices through the default system's 3-D space
DEFAULT_SLICES = 3


def _views(system: ZooSystem) -> list[tuple[str, dict[str, str]]]:
    """(title, phase -> shown name) per distinct probe view: one unless a probe is blind to a boundary."""
    neutron, xray = dict(system.seen_as(Probe.NEUTRON)), dict(system.seen_as(Probe.XRAY))
    if neutron == xray:
        return [("both probes", neutron)]
    return [("neutrons (SANS)", neutron), ("X-rays (SAXS)", xray)]


def plot_zoo_system(system: ZooSystem, path: str | Path | None = None) -> Figure:
    """The phase map of `system` as each probe could at best see it; saved as PNG if `path` is given."""
    views = _views(system)
    names = list(dict.fromkeys(name for _t, seen in views for name in seen.values()))
    colour_of = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}
    slices = DEFAULT_SLICES if len(system.solutes) == 3 else 1
    panels = len(views) * slices
    fig = Figure(figsize=(max(4.6 * panels, 5.6), 4.8), layout="constrained")
    axes = fig.subplots(1, len(views) * slices, squeeze=False)[0]
    for v, (view_title, seen) in enumerate(views):
        for k in range(slices):
            ax = axes[v * slices + k]
            title = view_title
            if system.ternary:
                _draw_ternary(ax, system, seen, names)
            else:
                fixed = _draw_plane(ax, system, seen, names, k)
                if fixed:
                    title += f"\n{fixed}"
            ax.set_title(title, fontsize=10)
    fig.legend(
        handles=[Patch(color=colour_of[n], label=n) for n in names],
        loc="outside lower center",
        ncols=min(len(names), 5),
        frameon=False,
    )
    fig.suptitle("\n".join(textwrap.wrap(system.title, width=26 * panels + 24)), fontsize=11)
    if path is not None:
        fig.savefig(Path(path), dpi=110)
    return fig


def _codes(labels: np.ndarray, seen: dict[str, str], names: list[str]) -> FloatArray:
    index = {name: i for i, name in enumerate(names)}
    return np.asarray([index[seen[str(label)]] for label in labels], dtype=np.float64)


def _cmap(names: list[str]) -> tuple[ListedColormap, BoundaryNorm]:
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(names))]
    return ListedColormap(colours), BoundaryNorm(np.arange(len(names) + 1) - 0.5, len(names))


def _draw_plane(ax: Axes, system: ZooSystem, seen: dict[str, str], names: list[str], k: int) -> str:
    """A 2-D system's plane, or slice `k` of the default system's third axis; returns the slice's label."""
    a, b = system.solutes[0], system.solutes[1]
    xs = np.linspace(*system.bounds[a], PICTURE_POINTS)
    ys = np.linspace(*system.bounds[b], PICTURE_POINTS)
    gx, gy = np.meshgrid(xs, ys)
    columns = [gx.ravel(), gy.ravel()]
    label = ""
    if len(system.solutes) == 3:
        c = system.solutes[2]
        lo, hi = system.bounds[c]
        value = lo + (hi - lo) * k / (DEFAULT_SLICES - 1)
        columns.append(np.full(gx.size, value))
        label = f"{c} = {value:.3g}"
    points = np.column_stack(columns)
    codes = _codes(system.phases_of(points), seen, names).reshape(gx.shape)
    cmap, norm = _cmap(names)
    ax.pcolormesh(xs, ys, codes, cmap=cmap, norm=norm, shading="nearest", rasterized=True)
    if isinstance(system, Crossover):
        growth = system.growth(points).reshape(gx.shape)
        contours = ax.contour(
            xs, ys, growth, levels=[0.02, 0.5, 0.98], colors="k", linestyles=["--", ":", "--"]
        )
        ax.clabel(contours, fmt={0.02: "band", 0.5: "midline", 0.98: "band"}, fontsize=7)
    ax.set_xlabel(f"{a} (mass fraction)")
    ax.set_ylabel(f"{b} (mass fraction)")
    return label


def _draw_ternary(ax: Axes, system: ZooSystem, seen: dict[str, str], names: list[str]) -> None:
    """The Gibbs triangle: water bottom left, the second solute bottom right, the first at the top."""
    n = PICTURE_POINTS
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = (i + j) <= n - 1
    top, right = i[keep] / (n - 1), j[keep] / (n - 1)
    mesh = Triangulation(right + 0.5 * top, np.sqrt(3.0) / 2.0 * top)
    # colour each small triangle by the phase at its centroid: averaging categorical codes would invent phases
    centroid_top = top[mesh.triangles].mean(axis=1)
    centroid_right = right[mesh.triangles].mean(axis=1)
    codes = _codes(system.phases_of(np.column_stack([centroid_top, centroid_right])), seen, names)
    cmap, norm = _cmap(names)
    ax.tripcolor(mesh, facecolors=codes, cmap=cmap, norm=norm, rasterized=True)
    ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], color="k", lw=1)
    for f in (0.2, 0.4, 0.6, 0.8):
        h = np.sqrt(3.0) / 2.0 * f
        ax.plot([0.5 * f, 1 - 0.5 * f], [h, h], color="k", lw=0.3, alpha=0.5)
        ax.text(1 - 0.5 * f + 0.02, h, f"{f:.1f}", fontsize=7, va="center")
    ax.text(0.5, np.sqrt(3) / 2 + 0.03, system.solutes[0], ha="center", fontsize=9)
    ax.text(-0.02, -0.05, "water", ha="center", fontsize=9)
    ax.text(1.02, -0.05, system.solutes[1], ha="center", fontsize=9)
    ax.set_aspect("equal")
    ax.set_axis_off()
