"""How much a curve can tell about where a phase boundary lies (issue 17), measured two ways.

    cd /tmp && SAS_DLL_PATH=/work/main/.venv/sasmodels-kernels /work/main/.venv/bin/python \\
        /work/main/bench/bench_boundary_information.py [ceiling|information] [--seeds 5] \\
        [--systems ...] [--sources curves,twin] [--samples 300] [--fits]

(run it from outside the repository, as `bench_phases.py`.)

**ceiling** — the demo's system (`bench_agents`' setting: the twin's default system, neutron labels,
accuracy on the 12 x 12 x 12 grid), the phase-mapping agent (Dirichlet GP + BALD) told more than each
sample's label, straight from the truth, so that nothing a model could learn from the curves is left
out. Its *depth* is the distance (unit cube of the region) from the sample to the nearest composition
of another phase, on a 28 x 28 x 28 grid of the truth:

- `labels`: the label only (the agent as shipped);
- `depth as soft label`: the label, plus each other phase at weight 0.5·exp(-distance to it / 0.1)
  (label probabilities, which the agent reads as a Dirichlet observation);
- `depth as latent`: each class latent regressed on +10·depth for the sample's phase and -10·depth
  for every other (what a descriptor that tracked the distance to its phase's edge could say);
- `distance to every phase`: each class latent regressed on the signed distance to that phase's
  region (more than one sample's curve can say: it knows where every other phase is).

Reported per variant: samples to 90 % and accuracy at 60, per seed.

**information** — per zoo system and curve source, `--samples` random grid compositions measured
(`bench_phases.Setting.measure`), each curve's features extracted as analysis does
(`extract_features`; with `--fits` also the best fitted model's parameters), and per phase with at
least 15 samples: the leave-one-out R² of a ridge regression of the depth on the composition
alone, and on the composition plus the features (log of sizes and intensities; each ridge strength
chosen by the same leave-one-out). With `--shape` the features include the leading 5 principal
components, within the phase, of the curve's whole slope profile (phase finding's descriptor). A
descriptor carries information about the boundary beyond what the labels' positions give when the
second R² clearly beats the first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from tandem.agents.gp_hyperparameters import DTYPE
from tandem.agents.phase_mapping import PhaseMappingAgent, dirichlet_targets
from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError
from tandem.analysis.features import extract_features
from tandem.analysis.fitting import fit_models
from tandem.analysis.phases.descriptors import CurveRefusedError, describe
from tandem.observations import Observation
from tandem.sim.systems import phases_of
from tandem.sim.zoo import ZOO, zoo_system
from tandem.stations import Probe

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import bench_agents as agents_bench  # noqa: E402
import bench_phases as phases_bench  # noqa: E402

FEATURES = ("guinier_rg_a", "guinier_i0_per_cm", "porod_exponent", "peak_q_inv_a")
#: latent units per unit-cube distance: 0.1 of the box ~ one log-concentration unit of the labels
DEPTH_SCALE = 10.0
SOFT_LENGTH = 0.1


# -- ceiling ---------------------------------------------------------------------------------------


class Truth:
    """Distances from any composition of the demo's region to each phase's region, from a fine grid."""

    def __init__(self, per_axis: int = 28) -> None:
        region = agents_bench.region()
        fine = agents_bench.grid(region, per_axis)
        labels = phases_of(fine)
        unit = region.to_unit(fine).numpy()
        self.region = region
        self.phases = sorted({str(p) for p in labels})
        self._inside = {c: cKDTree(unit[labels == c]) for c in self.phases}
        self._outside = {c: cKDTree(unit[labels != c]) for c in self.phases}

    def distances(self, unit: np.ndarray) -> dict[str, np.ndarray]:
        """Distance of each point to each phase's region (0 inside it)."""
        return {c: self._inside[c].query(unit)[0] for c in self.phases}

    def depth(self, unit: np.ndarray, phase: Sequence[str]) -> np.ndarray:
        """Distance of each point to the nearest point of another phase than its own."""
        return np.array([self._outside[c].query(u)[0] for u, c in zip(unit, phase, strict=True)])


def _told(truth: Truth, variant: str) -> type[PhaseMappingAgent]:
    """A phase-mapping agent that learns, besides each label, what `variant` says."""

    class Told(PhaseMappingAgent):
        def _admitted(self, observations: list[Observation]) -> None:
            super()._admitted(observations)
            if len(self.labels) < 2:
                return
            unit = self.observed_unit()
            phase = [str(o.label) for o in self.observations]
            if variant == "soft":
                distances = truth.distances(unit)
                probs = np.array(
                    [
                        [1.0 if c == p else 0.5 * np.exp(-distances[c][i] / SOFT_LENGTH) for c in self.labels]
                        for i, p in enumerate(phase)
                    ]
                )
                y, yvar = dirichlet_targets(probs / probs.sum(1, keepdims=True), self.settings.alpha_epsilon)
            elif variant == "depth":
                sign = np.where(np.array(self.labels)[None, :] == np.array(phase)[:, None], 1.0, -1.0)
                y = torch.as_tensor(DEPTH_SCALE * sign * truth.depth(unit, phase)[:, None], dtype=DTYPE)
                yvar = torch.full_like(y, 0.05)
            else:
                distances = truth.distances(unit)
                depth = truth.depth(unit, phase)
                signed = np.stack(
                    [np.where(distances[c] > 0, -distances[c], depth) for c in self.labels], axis=1
                )
                y = torch.as_tensor(DEPTH_SCALE * signed, dtype=DTYPE)
                yvar = torch.full_like(y, 0.05)
            self.gp.replace_outputs(torch.as_tensor(unit, dtype=DTYPE), y, yvar)

    return Told


def ceiling(seeds: int, max_samples: int) -> None:
    print(f"\n## What more than a label could buy: the demo's system, neutron labels, {seeds} seed(s)")
    truth = Truth()
    points = agents_bench.grid(truth.region)
    variants: dict[str, Callable[[int], PhaseMappingAgent]] = {
        "labels": lambda seed: PhaseMappingAgent(truth.region, seed=seed),
        "depth as soft label": lambda seed: _told(truth, "soft")(truth.region, seed=seed),
        "depth as latent": lambda seed: _told(truth, "depth")(truth.region, seed=seed),
        "distance to every phase": lambda seed: _told(truth, "every")(truth.region, seed=seed),
    }
    print(f"{'told':>24} {'samples to 90 % (per seed)':>34} {'accuracy at ' + str(max_samples):>16}")
    for name, make in variants.items():
        reached, final = [], []
        for seed in range(seeds):
            curve = agents_bench._campaign(make(seed), None, max_samples, 5, points)
            reached.append(agents_bench.samples_to(curve, 0.9))
            final.append(curve[-1][1])
        shown = "/".join("–" if n is None else str(n) for n in reached)
        censored = [n if n is not None else max_samples + 5 for n in reached]
        print(
            f"{name:>24} {statistics.median(censored):>8.0f} ({shown:>22}) "
            f"{statistics.median(final):>9.3f} ({min(final):.3f}–{max(final):.3f})",
            flush=True,
        )


# -- information -----------------------------------------------------------------------------------


def ridge_loo_r2(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out R² of a ridge regression of `y` on `x` (standardised, intercept free), best strength."""
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    design = np.column_stack([np.ones(len(y)), x])
    best = -np.inf
    for strength in np.logspace(-2, 3, 11):
        penalty = strength * np.eye(design.shape[1])
        penalty[0, 0] = 0.0
        hat = design @ np.linalg.solve(design.T @ design + penalty, design.T)
        loo = (y - hat @ y) / np.clip(1.0 - np.diag(hat), 1e-6, None)
        best = max(best, 1.0 - float(np.mean(loo**2)) / max(float(np.var(y)), 1e-12))
    return best


def _descriptors(curve: Curve, fits: bool) -> tuple[dict[str, float], np.ndarray | None]:
    """The curve's features (and best fit's parameters), and its slope profile (None: refused)."""
    features = extract_features(curve)
    out: dict[str, float] = {}
    for name, value in features.scalars().items():
        if name in FEATURES:
            out[name] = value if name == "porod_exponent" else float(np.log(value)) if value > 0 else np.nan
    if fits:
        try:
            report = fit_models(curve, features)
        except AnalysisError:  # no model converged: a run with features and no fit, as analysis has it
            out["model"] = hash(None)
        else:
            out["model"] = hash(report.best.model)
            for name, (value, _sigma) in report.best.parameters.items():
                out[f"fit_{name}"] = float(np.log(abs(value) + 1e-9))
    try:
        slopes: np.ndarray | None = describe(curve).slopes
    except CurveRefusedError:
        slopes = None
    return out, slopes


def _principal_components(profiles: list[np.ndarray | None], k: int = 5) -> np.ndarray:
    """The leading `k` principal components of slope profiles (bins some profile lacks: its mean)."""
    blank = np.full_like(next(p for p in profiles if p is not None), np.nan)
    table = np.array([p if p is not None else blank for p in profiles])
    table = table[:, np.isfinite(table).mean(0) >= 0.5]
    table = np.where(np.isfinite(table), table, np.nanmean(table, axis=0))
    centred = table - table.mean(0)
    _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:k].T


def information(
    systems: Sequence[str], sources: Sequence[str], n_samples: int, fits: bool, shape: bool
) -> None:
    print(
        "\n## Boundary information in the curves: leave-one-out R² of each sample's depth in its phase, "
        "from its composition alone | from its composition and its curve's features"
    )
    for name in systems:
        system = zoo_system(name)
        for source in sources:
            setting = phases_bench.Setting(system, source, Probe.NEUTRON, n_samples, n_samples)
            unit_grid = setting.region.to_unit(setting.grid).numpy()
            labels = np.array(setting.truth)
            rng = np.random.default_rng(0)
            rows = []
            for k, i in enumerate(rng.choice(len(setting.grid), size=n_samples, replace=False)):
                curve = setting.measure(setting.grid[i], 0, k)
                if curve is not None:
                    rows.append((unit_grid[i], labels[i], *_descriptors(curve, fits)))
            cells = []
            for phase in sorted({r[1] for r in rows}):
                mine = [r for r in rows if r[1] == phase]
                if fits:  # one fitted model's parameters: the phase's most common best model
                    common = statistics.mode(r[2]["model"] for r in mine)
                    mine = [r for r in mine if r[2]["model"] == common]
                if len(mine) < 15:
                    continue
                unit = np.array([r[0] for r in mine])
                depth = cKDTree(unit_grid[labels != phase]).query(unit)[0]
                if np.var(depth) <= 1e-12:
                    continue
                keys = [k for k in mine[0][2] if k != "model"]
                values = np.array([[r[2].get(k, np.nan) for k in keys] for r in mine])
                usable = np.isfinite(values).mean(0) >= 0.7
                values = values[:, usable]
                values = np.where(np.isfinite(values), values, np.nanmedian(values, axis=0))
                if shape and any(r[3] is not None for r in mine):
                    values = np.column_stack([values, _principal_components([r[3] for r in mine])])
                alone = ridge_loo_r2(unit, depth)
                both = ridge_loo_r2(np.column_stack([unit, values]), depth)
                cells.append(f"{phase} ({len(mine)}): {alone:.2f} | {both:.2f}")
            print(f"{name:>18} {source:>6}: " + "; ".join(cells), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", nargs="?", default="all", choices=["all", "ceiling", "information"])
    parser.add_argument("--seeds", type=int, default=5, help="ceiling: seeds per variant")
    parser.add_argument("--max-samples", type=int, default=60, help="ceiling: samples per campaign")
    parser.add_argument(
        "--systems",
        type=phases_bench._csv(sorted(ZOO)),
        default=sorted(ZOO),
        help=f"information: zoo systems, comma-separated (default: all of {', '.join(sorted(ZOO))})",
    )
    parser.add_argument(
        "--sources",
        type=phases_bench._csv(phases_bench.SOURCES),
        default=["curves"],
        help="information: curve sources, comma-separated: curves (1-D, another facility's), twin "
        "(2-D frames reduced as the pipeline does); default curves",
    )
    parser.add_argument("--samples", type=int, default=300, help="information: compositions per system")
    parser.add_argument("--fits", action="store_true", help="information: add the best fit's parameters")
    parser.add_argument(
        "--shape", action="store_true", help="information: add the slope profile's principal components"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="sasmodels")
    if args.part in ("all", "ceiling"):
        ceiling(args.seeds, args.max_samples)
    if args.part in ("all", "information"):
        information(args.systems, args.sources, args.samples, args.fits, args.shape)


if __name__ == "__main__":
    main()
