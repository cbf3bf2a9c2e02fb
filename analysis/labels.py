"""What each run shows: its morphology, the structure its own curve shows, as a description.

Which runs share a *phase* is decided across a campaign from the curves themselves
(`tandem.analysis.phases`); the morphology describes a run (and names a phase where its
runs agree on one), it does not decide the run's phase.

What a label says. A run's label is its *morphology*: which of the structural
models of `tandem.analysis.fitting` describes its curve best (`sphere`,
`cylinder`, `lamellar`, `polymer`, `fractal`), or `no-contrast` when the curve
is flat within its noise (the probe sees no structure there: a component
contrast-matched for X-rays, say). The models are fitted with free contrast
(scale, background and the shell's SLD are fitted), so X-rays and neutrons,
which see one structure through different contrast, mostly choose the same
model. A mass fractal whose fitted dimension
is about 1 is a rod (long rods over a limited q range are fitted as well by
either), so it is labelled `cylinder`.

How. Every curve is screened once (`fitting.screen_models`: the quick round of
the model fits, a fifth of their cost) and the result is kept for as long as
the curve object lives, so labelling a campaign of N runs after each new run
costs one screen per run, not N. Flatness is tested first: the curve merged to
a few log-spaced bins, compared with its weighted mean; a χ²ᵣ below
`flat_chi2_max` means no structure stands out of the noise, and fitting
models to it would only name noise.

Probabilities. The information-criterion weights of the screen (Schwarz
weights), summed per label: a curve that two structures describe about as
well says so.

Stable names. A label is a property of one curve, so a new run never renames
the phases of earlier runs; it can only add a label not seen before. `previous`
is accepted for the callers that keep labels between calls and is not needed.

Sites. Runs whose realized compositions agree within `composition_tolerance`
are one site (the same point of composition space seen by one or both
stations); `Labelling.sites` reports them, and `Labelling.agreement` says at
how many sites both probes gave the same label.

`shape_distance` (slope profiles of two curves) is kept as a model-free
similarity for comparing curves.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.features import FeatureSettings, extract_features
from tandem.analysis.fit_search import FitSettings
from tandem.analysis.fitting import screen_models
from tandem.observations import NO_CONTRAST

FloatArray = npt.NDArray[np.float64]

#: the label of a curve no model could be fitted to
UNRESOLVED = "unresolved"


@dataclass(frozen=True, eq=False)
class LabelInput:
    """One analysed run as labelling sees it."""

    run_uid: str
    probe: str
    composition: Mapping[str, float]
    curve: Curve


class InvalidLabelSettingsError(AnalysisError, ValueError):
    """Label settings no labelling could use."""

    def __init__(self, message: str) -> None:
        super().__init__(FailureCode.INTERNAL, message)


@dataclass(frozen=True)
class LabelSettings:
    #: the curve merged into this many log-q bins for the flatness test
    flat_bins: int = 15
    #: a curve whose merged bins scatter about their mean with a χ²ᵣ below this shows no structure
    flat_chi2_max: float = 10.0
    #: a mass fractal fitted with a dimension below this is a rod
    rod_fractal_dim_max: float = 1.5
    #: runs whose compositions differ by at most this (max abs mass-fraction difference) are one site
    composition_tolerance: float = 0.005
    #: log-q windows whose mean ln I make a curve's slope profile (`shape_distance`)
    windows: int = 12
    #: two curves must share at least this factor in q to be compared (`shape_distance`)
    min_overlap_ratio: float = 2.0
    features: FeatureSettings = field(default_factory=FeatureSettings)
    #: the screen runs the candidates one after another: labelling runs beside other work
    fitting: FitSettings = field(default_factory=lambda: FitSettings(workers=1))

    def __post_init__(self) -> None:
        problems = []
        if self.flat_bins < 3:
            problems.append(f"flat_bins must be at least 3, got {self.flat_bins}")
        for name in ("flat_chi2_max", "rod_fractal_dim_max", "composition_tolerance"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                problems.append(f"{name} must be a finite number >= 0, got {value!r}")
        if problems:
            raise InvalidLabelSettingsError("; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        return {
            "scheme": "morphology",
            "candidates": [c.name for c in self.fitting.candidates],
            "flat_bins": self.flat_bins,
            "flat_chi2_max": self.flat_chi2_max,
            "rod_fractal_dim_max": self.rod_fractal_dim_max,
            "composition_tolerance": self.composition_tolerance,
            "windows": self.windows,
            "min_overlap_ratio": self.min_overlap_ratio,
        }


@dataclass(frozen=True)
class Morphology:
    """What one curve shows: its label, the label's probability, and what decided it."""

    label: str
    probabilities: Mapping[str, float]
    #: the best screened model (None for a flat curve or one no model fits)
    model: str | None = None
    #: χ²ᵣ of the curve's merged bins about their mean: how far it stands out of flat
    structure_chi2: float = math.nan
    note: str = ""


@dataclass(frozen=True)
class Labelling:
    labels: Mapping[str, str]
    probabilities: Mapping[str, Mapping[str, float]]
    n_phases: int
    silhouette: float = math.nan
    sites: Mapping[str, int] = field(default_factory=dict)
    morphologies: Mapping[str, Morphology] = field(default_factory=dict)
    #: sites measured by both probes, and how many of them got one label from both
    sites_both_probes: int = 0
    agreement: int = 0


def slope_profile(curve: Curve, q_lo: float, q_hi: float, windows: int) -> FloatArray:
    """Log-log slopes between the mean points of `windows` log-spaced q windows in [q_lo, q_hi] (NaN where a
    window holds no point)."""
    c = _positive(curve)
    lq, ly = np.log(c.q_inv_a), np.log(c.intensity_per_cm)
    edges = np.linspace(math.log(q_lo), math.log(q_hi) * (1 + 1e-12), windows + 1)
    which = np.digitize(lq, edges) - 1
    inside = (which >= 0) & (which < windows)
    n = np.bincount(which[inside], minlength=windows).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_q = np.bincount(which[inside], weights=lq[inside], minlength=windows) / n
        mean_y = np.bincount(which[inside], weights=ly[inside], minlength=windows) / n
    return np.asarray(np.diff(mean_y) / np.diff(mean_q))


def shape_distance(a: Curve, b: Curve, settings: LabelSettings | None = None) -> float:
    """RMS difference of the slope profiles over the q range both curves cover (NaN if they hardly meet)."""
    s = settings or LabelSettings()
    a, b = _positive(a), _positive(b)
    if len(a) < s.windows or len(b) < s.windows:
        return math.nan
    lo = max(a.q_inv_a[0], b.q_inv_a[0])
    hi = min(a.q_inv_a[-1], b.q_inv_a[-1])
    if hi < s.min_overlap_ratio * lo:
        return math.nan
    diff = slope_profile(a, lo, hi, s.windows) - slope_profile(b, lo, hi, s.windows)
    diff = diff[np.isfinite(diff)]
    if diff.size < 3:
        return math.nan
    return float(np.sqrt(np.mean(diff**2)))


def _positive(c: Curve) -> Curve:
    return c.select(np.isfinite(c.intensity_per_cm) & (c.intensity_per_cm > 0))


def _sites(items: Sequence[LabelInput], tolerance: float) -> list[list[int]]:
    """Group runs by composition (greedy, in input order: a run joins the first site it matches)."""
    sites: list[list[int]] = []
    for i, item in enumerate(items):
        for site in sites:
            ref = items[site[0]].composition
            names = set(ref) | set(item.composition)
            if (
                max((abs(ref.get(n, 0.0) - item.composition.get(n, 0.0)) for n in names), default=0.0)
                <= tolerance
            ):
                site.append(i)
                break
        else:
            sites.append([i])
    return sites


def structure_chi2(curve: Curve, bins: int = 15) -> float:
    """χ²ᵣ of the curve merged into `bins` log-q bins about their weighted mean (≈ 1 for a flat curve)."""
    ok = np.isfinite(curve.intensity_per_cm) & np.isfinite(curve.sigma_per_cm) & (curve.sigma_per_cm > 0)
    q, i, sigma = curve.q_inv_a[ok], curve.intensity_per_cm[ok], curve.sigma_per_cm[ok]
    if q.size < 3:
        return math.nan
    edges = np.geomspace(q[0], q[-1] * (1 + 1e-12), bins + 1)
    which = np.clip(np.digitize(q, edges) - 1, 0, bins - 1)
    w = 1.0 / sigma**2
    weight = np.bincount(which, weights=w, minlength=bins)
    filled = weight > 0
    mean = np.bincount(which, weights=w * i, minlength=bins)[filled] / weight[filled]
    weight = weight[filled]
    if mean.size < 2:
        return math.nan
    level = float(np.sum(weight * mean) / np.sum(weight))
    return float(np.sum(weight * (mean - level) ** 2) / (mean.size - 1))


def _classify(curve: Curve, s: LabelSettings) -> Morphology:
    chi2 = structure_chi2(curve, s.flat_bins)
    if math.isfinite(chi2) and chi2 <= s.flat_chi2_max:
        return Morphology(NO_CONTRAST, {NO_CONTRAST: 1.0}, None, chi2, "no structure above the noise")
    try:
        report = screen_models(curve, extract_features(curve, s.features), s.fitting)
    except AnalysisError as exc:
        return Morphology(UNRESOLVED, {UNRESOLVED: 1.0}, None, chi2, exc.message)
    probabilities: dict[str, float] = {}
    for fit in report.fits:
        weight = report.weights.get(fit.model, 0.0)
        if weight > 0:
            label = _label_of(fit.model, fit.parameters, s)
            probabilities[label] = probabilities.get(label, 0.0) + weight
    label = _label_of(report.best.model, report.best.parameters, s)
    return Morphology(label, probabilities, report.best.model, chi2)


def _label_of(model: str, parameters: Mapping[str, tuple[float, float]], s: LabelSettings) -> str:
    dimension = parameters.get("fractal_dim_mass", (math.nan, math.nan))[0]
    if model == "fractal" and dimension < s.rod_fractal_dim_max:
        return "cylinder"
    return model


class _MorphologyCache:
    """Each curve's morphology, kept while the curve object lives (the pipeline keeps its curves)."""

    def __init__(self) -> None:
        self._known: weakref.WeakKeyDictionary[Curve, tuple[LabelSettings, Morphology]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, curve: Curve, settings: LabelSettings) -> Morphology:
        with self._lock:
            hit = self._known.get(curve)
        if hit is not None and hit[0] == settings:
            return hit[1]
        found = _classify(curve, settings)
        with self._lock:
            self._known[curve] = (settings, found)
        return found


_CACHE = _MorphologyCache()


def morphology(curve: Curve, settings: LabelSettings | None = None) -> Morphology:
    """The structure a curve shows: its label, probabilities and the model that decided it."""
    return _CACHE.get(curve, settings or LabelSettings())


def assign_labels(items: Sequence[LabelInput], settings: LabelSettings | None = None) -> Labelling:
    """Label every run of a campaign by the structure its curve shows.

    A run's label depends on its own curve only, so earlier runs keep theirs whatever arrives.
    """
    s = settings or LabelSettings()
    if not items:
        return Labelling({}, {}, 0)
    uids = [it.run_uid for it in items]
    if len(set(uids)) != len(uids):
        raise AnalysisError(FailureCode.INTERNAL, "each run may appear once in a labelling")
    found = {it.run_uid: morphology(it.curve, s) for it in items}
    labels = {uid: m.label for uid, m in found.items()}
    site_of: dict[str, int] = {}
    sites = _sites(items, s.composition_tolerance)
    both = agree = 0
    for index, members in enumerate(sites):
        for i in members:
            site_of[uids[i]] = index
        by_probe: dict[str, set[str]] = {}
        for i in members:
            by_probe.setdefault(items[i].probe, set()).add(labels[uids[i]])
        if len(by_probe) > 1:
            both += 1
            agree += len(set.intersection(*by_probe.values())) > 0
    return Labelling(
        labels=labels,
        probabilities={uid: dict(m.probabilities) for uid, m in found.items()},
        n_phases=len(set(labels.values())),
        sites=site_of,
        morphologies=found,
        sites_both_probes=both,
        agreement=agree,
    )
