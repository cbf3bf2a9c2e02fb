"""The model catalogue of the fits: each candidate structure, its free parameters and bounds, and its starts.

A candidate is a sasmodels model with the parameters the fit searches (each with its bounds, lengths
in log space), the ones it holds fixed, and the starting points it takes from the curve's features
(Guinier radius, peak position, Porod exponent) and a small grid of shapes the measured q range can
see. SLDs are not known to analysis, so every model has a unit contrast (`sld` − `sld_solvent` =
1e-6/Å², or the core's for core-shell structures, the shell's fitted relative to it) and `scale`
absorbs volume fraction × contrast². How a candidate is fitted is `tandem.analysis.fit_search`;
which one describes a curve best is `tandem.analysis.fitting`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tandem.analysis.curves import Curve
from tandem.analysis.features import Features

Starts = Callable[[Features, Curve], list[dict[str, float]]]


@dataclass(frozen=True)
class FitParameter:
    """A free shape parameter, fitted in log space when `log` (lengths: positive, scale-free steps)."""

    name: str
    lower: float
    upper: float
    log: bool = True
    #: for lengths: cap the upper bound at this many 1/q_min. Longer objects look alike over the measured
    #: range, and some kernels (cylinder orientation averages) cost in proportion to q·length.
    max_times_inverse_q_min: float | None = None


@dataclass(frozen=True)
class CandidateModel:
    """One structural hypothesis: a sasmodels model, what is free, what is fixed, and where to start."""

    name: str
    sasmodel: str
    free: tuple[FitParameter, ...]
    starts: Starts
    fixed: Mapping[str, float] = field(default_factory=dict)
    #: model evaluation points per data point: sharp (Bragg) peaks need the model sampled finer than the
    #: data to be smeared correctly; smooth curves do not, and sampling costs time
    oversample: int = 1


def _rg_or(features: Features, default: float) -> float:
    rg = features.guinier_rg_a
    return rg.value if rg.valid else default


def _peak_d_or(features: Features, curve: Curve) -> float:
    if features.peak_d_spacing_a.valid:
        return features.peak_d_spacing_a.value
    return 2 * math.pi / float(np.sqrt(curve.q_inv_a[0] * curve.q_inv_a[-1]))


def _sizes(curve: Curve, n: int) -> list[float]:
    """Lengths the measured q range can see, from ~1/q_max to ~1/q_min, log-spaced."""
    return [float(x) for x in np.geomspace(3.0 / curve.q_inv_a[-1], 1.0 / curve.q_inv_a[0], n)]


def _sphere_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    # Rg² = 3R²/5 for a sphere
    rg = _rg_or(features, 0.0)
    radii = ([rg * math.sqrt(5 / 3)] if rg > 0 else []) + _sizes(curve, 6)
    return [{"radius": r, "radius_pd": pd} for r in radii for pd in (0.05, 0.15)]


def _cylinder_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    # Rods have a second length scale that Rg alone does not fix: a grid of radii and aspect ratios.
    return [
        {"radius": r, "length": 2 * aspect * r}
        for r in _sizes(curve, 6)
        for aspect in (1.0, 3.0, 10.0, 30.0)
        if 2 * aspect * r < 20 / curve.q_inv_a[0]
    ]


def _lamellar_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    d = _peak_d_or(features, curve)
    # sigma_d of the paracrystal is relative: σ_D / <D>
    return [{"d_spacing": d, "thickness": f * d, "sigma_d": s} for f in (0.15, 0.3, 0.5) for s in (0.03, 0.1)]


def _polymer_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    rg = _rg_or(features, 0.0)
    exponents = [2.0, 1.7]
    if features.porod_exponent.valid and 1.2 < features.porod_exponent.value < 3.0:
        exponents.insert(0, features.porod_exponent.value)
    sizes = ([rg] if rg > 0 else []) + _sizes(curve, 5)
    return [{"rg": r, "porod_exp": p} for r in sizes for p in exponents]


UNIT_CONTRAST = {"sld": 1.0, "sld_solvent": 0.0}
#: core-shell structures: the core's contrast is the unit, the shell's is fitted relative to it (signed)
UNIT_CORE = {"sld_core": 1.0, "sld_solvent": 0.0}
SHELL_RATIOS = (-2.0, -0.7, 1.5)


def _core_shell_sphere_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    return [
        {"radius": r, "thickness": t, "sld_shell": ratio, "radius_pd": 0.1}
        for r in _sizes(curve, 6)
        for t in (4.0, 8.0)
        for ratio in SHELL_RATIOS
    ]


def _core_shell_cylinder_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    return [
        {"radius": r, "thickness": t, "length": 2 * aspect * r, "sld_shell": ratio}
        for r in _sizes(curve, 5)
        for t in (6.0,)
        for aspect in (3.0, 30.0)
        for ratio in SHELL_RATIOS
        if 2 * aspect * r < 20 / curve.q_inv_a[0]
    ]


def _bilayer_stack_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    d = _peak_d_or(features, curve)
    spacings = [d] if features.peak_d_spacing_a.valid else _sizes(curve, 5)
    return [
        {
            "d_spacing": dd,
            "length_tail": tail,
            "length_head": 6.0,
            "sld_head": ratio,
            "Caille_parameter": eta,
            "Nlayers": n_layers,
        }
        for dd in spacings
        for tail in (8.0, 14.0)
        for ratio in (-1.0, 1.5)
        for eta in (0.1, 0.3)
        for n_layers in (6.0, 15.0)
    ]


def _fractal_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    return [
        {"radius": r, "fractal_dim_mass": dim, "cutoff_length": cut}
        for r in _sizes(curve, 4)
        for dim in (1.8, 2.5)
        for cut in (3.0 / float(curve.q_inv_a[0]), 30.0 / float(curve.q_inv_a[0]))
    ]


SPHERE = CandidateModel(
    "sphere",
    "sphere",
    (FitParameter("radius", 3.0, 2000.0), FitParameter("radius_pd", 0.0, 0.4, log=False)),
    _sphere_starts,
    {**UNIT_CONTRAST, "radius_pd_n": 35, "radius_pd_nsigma": 3},
    oversample=2,
)
CYLINDER = CandidateModel(
    "cylinder",
    "cylinder",
    (FitParameter("radius", 3.0, 1000.0), FitParameter("length", 6.0, 20000.0, max_times_inverse_q_min=10.0)),
    _cylinder_starts,
    UNIT_CONTRAST,
)
LAMELLAR = CandidateModel(
    "lamellar",
    "lamellar_stack_paracrystal",
    (
        FitParameter("d_spacing", 10.0, 2000.0),
        FitParameter("thickness", 5.0, 1000.0),
        FitParameter("sigma_d", 0.0, 0.4, log=False),
    ),
    _lamellar_starts,
    {**UNIT_CONTRAST, "Nlayers": 20},
    oversample=3,
)
POLYMER = CandidateModel(
    "polymer",
    "polymer_excl_volume",
    (FitParameter("rg", 3.0, 5000.0), FitParameter("porod_exp", 1.0, 3.5, log=False)),
    _polymer_starts,
)

CORE_SHELL_SPHERE = CandidateModel(
    "sphere",
    "core_shell_sphere",
    (
        FitParameter("radius", 3.0, 1000.0),
        FitParameter("thickness", 1.0, 100.0),
        FitParameter("sld_shell", -20.0, 20.0, log=False),
        FitParameter("radius_pd", 0.0, 0.4, log=False),
    ),
    _core_shell_sphere_starts,
    {**UNIT_CORE, "radius_pd_n": 25, "radius_pd_nsigma": 3},
    oversample=2,
)
CORE_SHELL_CYLINDER = CandidateModel(
    "cylinder",
    "core_shell_cylinder",
    (
        FitParameter("radius", 3.0, 500.0),
        FitParameter("thickness", 1.0, 100.0),
        FitParameter("length", 6.0, 20000.0, max_times_inverse_q_min=20.0),
        FitParameter("sld_shell", -20.0, 20.0, log=False),
    ),
    _core_shell_cylinder_starts,
    UNIT_CORE,
)
BILAYER_STACK = CandidateModel(
    "lamellar",
    "lamellar_hg_stack_caille",
    (
        FitParameter("d_spacing", 10.0, 3000.0),
        FitParameter("length_tail", 2.0, 50.0),
        FitParameter("length_head", 1.0, 30.0),
        FitParameter("sld_head", -20.0, 20.0, log=False),
        FitParameter("Caille_parameter", 0.0, 0.8, log=False),
    ),
    _bilayer_stack_starts,
    # the tails carry the unit contrast; the number of layers is an integer, fixed per start
    {"sld": 1.0, "sld_solvent": 0.0},
    oversample=3,
)
FRACTAL = CandidateModel(
    "fractal",
    "mass_fractal",
    (
        FitParameter("radius", 2.0, 1000.0),
        FitParameter("fractal_dim_mass", 1.0, 3.0, log=False),
        FitParameter("cutoff_length", 10.0, 1e5),
    ),
    _fractal_starts,
)

#: Homogeneous particles and a paracrystalline stack: fewer parameters, for systems without core-shell
#: structure (and for testing the machinery on models it can fit exactly).
HOMOGENEOUS_CANDIDATES: tuple[CandidateModel, ...] = (SPHERE, CYLINDER, LAMELLAR, POLYMER)
#: The structures of the formulation systems tandem targets: surfactant micelles (core of tails, shell of
#: heads) as spheres and rods, head/tail bilayer stacks, polymer coils and polymer-rich fractal clusters.
DEFAULT_CANDIDATES: tuple[CandidateModel, ...] = (
    CORE_SHELL_SPHERE,
    CORE_SHELL_CYLINDER,
    BILAYER_STACK,
    POLYMER,
    FRACTAL,
)
