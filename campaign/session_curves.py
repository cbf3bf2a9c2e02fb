"""A run's reduced curve for a person at the station: one line when it is analysed, a plot on demand."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from tandem.analysis.store import AnalysisRecord
from tandem.campaign.session_config import SessionConfigError


def write_curve_plot(record: AnalysisRecord, path: Path) -> Path:
    """I(q) on log axes with its 1-σ band, titled with the sample; the label and best fit in a corner."""
    from matplotlib.figure import Figure

    if not record.ok or record.curve is None:
        raise SessionConfigError(
            f"run {record.run_uid} has no curve: its analysis failed "
            f"({record.failure_code}: {record.failure_reason})"
        )
    curve = record.curve
    q, intensity, sigma = curve.q_inv_a, curve.intensity_per_cm, curve.sigma_per_cm
    shown = (intensity > 0) & np.isfinite(intensity)
    fig = Figure(figsize=(6.0, 4.4), layout="constrained")
    ax = fig.subplots()
    lower = np.clip(intensity - sigma, intensity * 1e-3, None)
    ax.fill_between(q[shown], lower[shown], (intensity + sigma)[shown], color="#56B4E9", alpha=0.35, lw=0)
    ax.loglog(q[shown], intensity[shown], color="#0072B2", lw=1.2, label="reduced I(q) ± 1σ")
    ax.set_xlabel("q (1/Å)")
    ax.set_ylabel("I(q) (1/cm)")
    composition = ", ".join(f"{name} {100 * value:.2f} %" for name, value in record.composition.items())
    ax.set_title(
        f"{(record.station or '?').upper()} · sample {(record.sample_uid or '?')[:8]} · "
        f"{record.exposure_s:g} s\n{composition or 'composition unknown'}",
        fontsize="medium",
    )
    ax.text(
        0.97,
        0.97,
        "\n".join(_curve_summary(record)),
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"},
    )
    ax.legend(loc="lower left", frameon=False, fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def describe(record: AnalysisRecord) -> str:
    """One line about an analysed run, as the session prints it when the run closes."""
    head = f"analysed run {record.run_uid[:8]}"
    if not record.ok:
        return f"{head}: FAILED ({record.failure_code}: {record.failure_reason})"
    return f"{head}: " + "; ".join(_curve_summary(record)) + " — plot_curve() to see it"


def _curve_summary(record: AnalysisRecord) -> list[str]:
    lines = []
    if record.label is not None:
        p = record.label_probabilities.get(record.label)
        lines.append(f"label: {record.label.replace('_', ' ')}" + (f" (p={p:.2f})" if p is not None else ""))
    best = record.fits.get("best_model")
    if best:
        chi2 = record.scalar_features().get("fit_chi2_reduced", math.nan)
        lines.append(f"best fit: {str(best).replace('_', ' ')}, χ²ᵣ={chi2:.2g}")
    features = record.scalar_features()
    for name, text in (
        ("guinier_rg_a", "Rg {:.3g} Å"),
        ("peak_d_spacing_a", "d-spacing {:.3g} Å"),
        ("porod_exponent", "Porod exponent {:.2f}"),
    ):
        value = features.get(name, math.nan)
        if math.isfinite(value):
            lines.append(text.format(value))
    return lines or ["not labelled yet"]


def show_plot(path: Path, what: str) -> None:
    """Show the PNG at `path` inline in a notebook, else print `what` and where it is."""
    with contextlib.suppress(ImportError):
        from IPython import get_ipython
        from IPython.display import Image, display

        shell = get_ipython()
        if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
            display(Image(filename=str(path)))
            return
    print(f"{what}: {path}")
