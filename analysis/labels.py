"""Phase labels across a campaign: curve similarity, clustering that picks the number of phases, stable names.

Similarity. Two curves are compared by shape: the q range both cover is cut
into log-spaced windows, ln I is averaged in each (which tames noise and
form-factor wiggles), and the log-log slopes between neighbouring windows
make the curve's profile. Slopes ignore concentration and contrast (they scale
I) and say what phases are: a Guinier plateau, q⁻¹ rods, q⁻² sheets, q⁻⁴
compact particles, a peak. The distance is the RMS difference of the two
profiles. SAXS and SANS curves of one composition differ in contrast and q
range; their shapes agree where the contrast allows, so a cross-probe distance
exists too, but same-probe distances are preferred.

Sites. Runs whose realized compositions agree within a tolerance are one site
(the same point of composition space seen by one or both stations). The
distance between sites is the largest same-probe distance they share, so a
difference that only neutrons see splits sites that X-rays would merge. Sites
with no probe in common fall back to the smallest cross-probe distance.

Clustering. Average-linkage hierarchical clustering of the sites; the number
of phases is the one with the best silhouette among those that keep every
cluster tighter than `merge_limit` and keep clusters at least
`min_split_distance` apart (one phase when no split is convincing).

Stable names. Labels are `phase-1`, `phase-2`, … Each new clustering is
matched to the previous labels by overlap (Hungarian assignment on the number
of runs two clusters share), so adding a sample never renames the phases of
earlier samples; a cluster with no predecessor gets the next unused name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform

from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError, FailureCode

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LabelInput:
    """One analysed run as labelling sees it."""

    run_uid: str
    probe: str
    composition: Mapping[str, float]
    curve: Curve


@dataclass(frozen=True)
class LabelSettings:
    #: log-q windows whose mean ln I make a curve's slope profile
    windows: int = 12
    #: runs whose compositions differ by at most this (max abs mass-fraction difference) are one site
    composition_tolerance: float = 0.005
    max_phases: int = 10
    #: a split must beat this silhouette to be believed ...
    min_silhouette: float = 0.6
    #: ... and separate clusters by at least this distance: structure drifting smoothly inside one phase
    #: (a radius growing with concentration) changes slopes by less
    min_split_distance: float = 1.0
    #: sites farther apart than this (RMS difference of log-log slopes) are never one phase
    merge_limit: float = 3.0
    #: two curves must share at least this factor in q to be compared
    min_overlap_ratio: float = 2.0
    prefix: str = "phase-"

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "windows": self.windows,
            "composition_tolerance": self.composition_tolerance,
            "max_phases": self.max_phases,
            "min_silhouette": self.min_silhouette,
            "merge_limit": self.merge_limit,
            "min_split_distance": self.min_split_distance,
            "min_overlap_ratio": self.min_overlap_ratio,
        }


@dataclass(frozen=True)
class Labelling:
    labels: Mapping[str, str]
    probabilities: Mapping[str, Mapping[str, float]]
    n_phases: int
    silhouette: float = math.nan
    sites: Mapping[str, int] = field(default_factory=dict)


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


def _site_distances(items: Sequence[LabelInput], sites: list[list[int]], s: LabelSettings) -> FloatArray:
    n = len(sites)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            same: list[float] = []
            cross: list[float] = []
            for a in sites[i]:
                for b in sites[j]:
                    d = shape_distance(items[a].curve, items[b].curve, s)
                    if math.isnan(d):
                        continue
                    (same if items[a].probe == items[b].probe else cross).append(d)
            if same:
                d_ij = max(same)
            elif cross:
                d_ij = min(cross)
            else:
                # no common q range at all: nothing says they are alike
                d_ij = 2.0 * s.merge_limit
            dist[i, j] = dist[j, i] = d_ij
    return dist


def _silhouette(dist: FloatArray, clusters: npt.NDArray[np.int_]) -> float:
    ids = np.unique(clusters)
    if ids.size < 2 or ids.size >= clusters.size:
        return math.nan
    scores = []
    for i in range(clusters.size):
        own = clusters == clusters[i]
        if own.sum() == 1:
            scores.append(0.0)
            continue
        a = dist[i, own].sum() / (own.sum() - 1)
        b = min(dist[i, clusters == c].mean() for c in ids if c != clusters[i])
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


def _cluster(dist: FloatArray, s: LabelSettings) -> tuple[npt.NDArray[np.int_], float]:
    n = dist.shape[0]
    if n == 1:
        return np.ones(1, dtype=int), math.nan
    tree = linkage(squareform(dist, checks=False), method="average")
    floor = fcluster(tree, t=s.merge_limit, criterion="distance")
    k_min = int(np.unique(floor).size)
    best, best_score = floor, _silhouette(dist, floor) if k_min > 1 else s.min_silhouette
    if k_min == 1:
        best_score = s.min_silhouette
    for k in range(max(k_min, 2), min(s.max_phases, n - 1) + 1):
        # the closest two of the k clusters merge at the (n−k)-th step of the tree
        if tree[n - k, 2] < s.min_split_distance and k > k_min:
            break
        clusters = fcluster(tree, t=k, criterion="maxclust")
        score = _silhouette(dist, clusters)
        if not math.isnan(score) and score > best_score:
            best, best_score = clusters, score
    return np.asarray(best, dtype=int), best_score


def _stable_names(
    members: Mapping[int, list[str]], previous: Mapping[str, str], prefix: str
) -> dict[int, str]:
    """Name each new cluster after the previous label it overlaps most (Hungarian), else a fresh name."""
    old_names = sorted(set(previous.values()))
    cluster_ids = sorted(members)
    names: dict[int, str] = {}
    if old_names:
        overlap = np.array(
            [
                [sum(previous.get(run) == name for run in members[c]) for name in old_names]
                for c in cluster_ids
            ]
        )
        rows, cols = linear_sum_assignment(-overlap)
        for r, c in zip(rows, cols, strict=True):
            if overlap[r, c] > 0:
                names[cluster_ids[r]] = old_names[c]
    used = set(old_names)
    counter = 1
    for c in cluster_ids:
        if c in names:
            continue
        while f"{prefix}{counter}" in used:
            counter += 1
        names[c] = f"{prefix}{counter}"
        used.add(names[c])
    return names


def assign_labels(
    items: Sequence[LabelInput],
    previous: Mapping[str, str] | None = None,
    settings: LabelSettings | None = None,
) -> Labelling:
    """Label every run of a campaign; `previous` maps run uid to the label it had, to keep names stable."""
    s = settings or LabelSettings()
    if not items:
        return Labelling({}, {}, 0)
    uids = [it.run_uid for it in items]
    if len(set(uids)) != len(uids):
        raise AnalysisError(FailureCode.INTERNAL, "each run may appear once in a labelling")
    sites = _sites(items, s.composition_tolerance)
    dist = _site_distances(items, sites, s)
    clusters, score = _cluster(dist, s)
    members: dict[int, list[str]] = {}
    for site_index, cluster in enumerate(clusters):
        members.setdefault(int(cluster), []).extend(uids[i] for i in sites[site_index])
    names = _stable_names(members, previous or {}, s.prefix)
    labels: dict[str, str] = {}
    site_of: dict[str, int] = {}
    for site_index, cluster in enumerate(clusters):
        for i in sites[site_index]:
            labels[uids[i]] = names[int(cluster)]
            site_of[uids[i]] = site_index
    return Labelling(labels, _probabilities(dist, clusters, sites, uids, names), len(members), score, site_of)


def _probabilities(
    dist: FloatArray,
    clusters: npt.NDArray[np.int_],
    sites: list[list[int]],
    uids: list[str],
    names: Mapping[int, str],
) -> dict[str, dict[str, float]]:
    """Soft membership: exp(−d²/2w²) to each cluster's mean distance, w the typical within-cluster spread."""
    ids = np.unique(clusters)
    within = [dist[np.ix_(clusters == c, clusters == c)] for c in ids]
    spreads = [w[np.triu_indices_from(w, 1)] for w in within]
    pooled = np.concatenate(spreads) if spreads else np.array([])
    width = float(np.median(pooled)) if pooled.size and np.median(pooled) > 0 else 0.1
    out: dict[str, dict[str, float]] = {}
    for site_index in range(len(sites)):
        d = np.array([dist[site_index, clusters == c].mean() for c in ids])
        logits = -0.5 * (d / width) ** 2
        p = np.exp(logits - logits.max())
        p /= p.sum()
        probs = {names[int(c)]: float(v) for c, v in zip(ids, p, strict=True)}
        for i in sites[site_index]:
            out[uids[i]] = probs
    return out
