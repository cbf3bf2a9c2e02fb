"""PNG renderings of the twin: detector frames (log scale) and the phase diagram.

Matplotlib runs on the Agg backend through its object API (no pyplot state), so
these are safe in servers, tests and threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch

from tandem.sim.detector_image import SimulatedFrame
from tandem.sim.system_phases import DEFAULT_BOUNDS, NEUTRON_ONLY_BOUNDARY, PHASES
from tandem.sim.systems import DEFAULT_SYSTEM, FormulationSystem

#: one colour per phase, in `PHASES` order (colour-blind-safe Okabe-Ito picks)
PHASE_COLOURS: tuple[str, ...] = ("#56B4E9", "#009E73", "#E69F00", "#CC79A7", "#D55E00")


def plot_frames(
    frames: Sequence[SimulatedFrame], path: str | Path, *, titles: Sequence[str] | None = None
) -> Path:
    """Frames side by side on a log colour scale, beam stop outlined; returns the PNG's path."""
    if not frames:
        raise ValueError("plot_frames needs at least one frame")
    labels = (
        list(titles) if titles is not None else [f"{f.configuration}, {f.exposure_s:g} s" for f in frames]
    )
    fig = Figure(figsize=(4.2 * len(frames), 4.0), layout="constrained")
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    for ax, frame, label in zip(axes, frames, labels, strict=True):
        counts = frame.counts.astype(np.float64)
        positive = counts[counts > 0]
        vmin = max(float(positive.min()) if positive.size else 1.0, 0.5)
        vmax = max(float(counts.max()), vmin * 10)
        image = ax.imshow(
            np.where(counts > 0, counts, np.nan),
            origin="lower",
            norm=LogNorm(vmin=vmin, vmax=vmax),
            cmap="viridis",
            interpolation="nearest",
        )
        geometry = frame.geometry
        ax.add_patch(
            Circle(
                (geometry.beam_center_x_px - 0.5, geometry.beam_center_y_px - 0.5),
                geometry.beamstop_radius_mm / geometry.pixel_size_mm,
                fill=False,
                color="white",
                lw=0.8,
            )
        )
        ax.set_title(label + (" (saturated)" if frame.saturated else ""), fontsize=9)
        ax.set_xlabel("pixel x")
        ax.set_ylabel("pixel y")
        fig.colorbar(image, ax=ax, shrink=0.8, label="counts")
    return _save(fig, path)


def plot_phase_diagram(
    path: str | Path,
    *,
    system: FormulationSystem = DEFAULT_SYSTEM,
    salt_fractions: Sequence[float] = (0.0, 0.02, 0.04),
    resolution: int = 240,
) -> Path:
    """SDS x PPG slices at fixed NaCl, coloured by phase; the neutron-only boundary dashed."""
    sds = np.linspace(*DEFAULT_BOUNDS["SDS"], resolution)
    ppg = np.linspace(*DEFAULT_BOUNDS["PPG"], resolution)
    s_grid, p_grid = np.meshgrid(sds, ppg)
    cmap = ListedColormap(PHASE_COLOURS)
    norm = BoundaryNorm(np.arange(len(PHASES) + 1) - 0.5, cmap.N)
    fig = Figure(figsize=(4.2 * len(salt_fractions), 4.2), layout="constrained")
    axes = fig.subplots(1, len(salt_fractions), squeeze=False)[0]
    clusters = PHASES.index(NEUTRON_ONLY_BOUNDARY[1])
    solution = PHASES.index(NEUTRON_ONLY_BOUNDARY[0])
    for ax, salt in zip(axes, salt_fractions, strict=True):
        codes = system.phase_codes(s_grid, p_grid, np.full_like(s_grid, salt)).reshape(s_grid.shape)
        ax.pcolormesh(sds, ppg, codes, cmap=cmap, norm=norm, shading="nearest")
        # the neutron-only boundary: where clusters meet the polymer solution
        is_clusters = (codes == clusters).astype(float)
        polymer = (codes == clusters) | (codes == solution)
        if polymer.any() and 0 < is_clusters[polymer].mean() < 1:
            masked = np.where(polymer, is_clusters, np.nan)
            ax.contour(sds, ppg, masked, levels=[0.5], colors="black", linestyles="--", linewidths=1.5)
        ax.set_title(f"NaCl mass fraction {salt:g}", fontsize=10)
        ax.set_xlabel("SDS mass fraction")
        ax.set_ylabel("PPG mass fraction")
    handles: list[Patch | Line2D] = [
        Patch(color=c, label=name.replace("_", " ")) for c, name in zip(PHASE_COLOURS, PHASES, strict=True)
    ]
    handles.append(Line2D([], [], color="black", ls="--", label="neutron-only boundary"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=120)
    return target
