"""Which curves share a phase: shape distances and a clustering that chooses how many phases.

Distance. Two descriptors (`tandem.analysis.phases.descriptors`) are compared on the
log-q bins both have structure in, as the weighted RMS difference of their log-log
slopes; each bin weighs by the slopes' uncertainties plus a floor (`slope_floor`: two
curves of one phase are never alike to better than that, whatever their counting
statistics). Curves of one phase differ in size, and a change of every length by a
factor λ moves a slope profile by ln λ along ln q without changing it: the profiles
are compared at shifts of up to `max_shift_bins` bins, and a shift costs
``(shift / ln 2)²`` — a size twice as large costs as much as a slope off by one.
Two curves that share fewer than `min_common_bins` bins cannot be compared (NaN).

How many phases. Curves of one phase vary by different amounts in different phases
(sharp Bragg peaks move with the d-spacing; a sphere's Guinier knee barely moves), so
no one distance separates every phase. The distances are made relative to each
curve's own neighbourhood (self-tuning scales, Zelnik-Manor & Perona 2004): ``d_ij /
sqrt(σ_i σ_j)``, with ``σ_i`` the distance to the curve's `neighbours`-th nearest
curve (the fifth; a quarter of the runs while there are fewer than 20), kept between
`scale_floor` (counting noise) and `scale_cap` (a difference that large always separates
phases, however few curves there are). Average-linkage
agglomeration then merges groups until the next merge would join groups whose
relative distance exceeds `cut`: a group is a phase when it stands apart from every
other by more than `cut` times the spacing of curves within it. The count is what the
data gives; nothing says how many phases to expect.

Continuity. A phase is a region of composition space, and inside it curves change
smoothly with composition; at a boundary they jump. Relative distances alone split a
phase whose curves drift a long way across it (a contrast that changes with
composition, a size that grows) once its samples are dense. So two neighbouring groups
that the agglomeration left apart are joined again when their border shows no jump:
the curve distances of their `border_pairs` closest cross pairs (in composition) are
within `jump_ratio` times what the groups' own rate of change (the median curve
distance per composition distance between each curve and its nearest neighbour in its
group, the smaller of the two groups') plus `jump_floor` predicts over that
composition distance. Groups whose curves differ on the whole by more than
`merge_within` (relative) stay apart whatever their border: a smooth crossover between
two clearly different shapes is still two phases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from tandem.analysis.phases.descriptors import BIN_WIDTH_LN_Q, ShapeDescriptor

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class GroupingSettings:
    #: slope differences below this are not told apart (model mismatch within a phase)
    slope_floor: float = 0.15
    #: largest shift of one slope profile against another, in log-q bins (8 × 0.1: sizes within 2.2×)
    max_shift_bins: int = 8
    #: a size ratio of this costs as much as a slope off by one
    shift_scale_ln: float = math.log(4.0)
    min_common_bins: int = 5
    #: which neighbour sets a curve's own scale (at most; a quarter of the runs, at least the second,
    #: while there are few): closed-loop agents sample densely along boundaries, and a tighter
    #: neighbourhood (3) let those samples found phases of their own; 5 measured best over the zoo's
    #: seven systems (bench/README.md, Phases)
    neighbours: int = 5
    scale_floor: float = 0.05
    scale_cap: float = 0.5
    #: groups further apart than this, relative to their curves' scales, are different phases
    cut: float = 3.0
    #: how far apart two groups are: "single" (their closest curves), "average" (all pairs)
    linkage: str = "average"
    #: continuity (see the module docstring): a border is a jump above this ratio ...
    jump_ratio: float = 2.0
    #: ... of (this + the groups' rate of change × composition distance)
    jump_floor: float = 0.1
    border_pairs: int = 3
    #: groups this far apart on the whole (relative) are never joined for a smooth border
    merge_within: float = 4.5


def _stack(descriptors: Sequence[ShapeDescriptor]) -> tuple[FloatArray, FloatArray]:
    slopes = np.stack([d.slopes for d in descriptors]) if descriptors else np.zeros((0, 0))
    sigmas = np.stack([d.slope_sigmas for d in descriptors]) if descriptors else np.zeros((0, 0))
    return slopes, sigmas


def distances_to(
    one: ShapeDescriptor, others: Sequence[ShapeDescriptor], settings: GroupingSettings | None = None
) -> FloatArray:
    """The shape distance of `one` to each of `others` (NaN where they share too few bins)."""
    s = settings or GroupingSettings()
    if not others:
        return np.zeros(0)
    slopes, sigmas = _stack(others)
    return _distances(one.slopes, one.slope_sigmas, slopes, sigmas, s)


def _distances(
    a: FloatArray, a_sigma: FloatArray, b: FloatArray, b_sigma: FloatArray, s: GroupingSettings
) -> FloatArray:
    n_bins = a.size
    best = np.full(b.shape[0], np.inf)
    for shift in range(-s.max_shift_bins, s.max_shift_bins + 1):
        if shift >= 0:
            x, ex = a[shift:], a_sigma[shift:]
            y, ey = b[:, : n_bins - shift], b_sigma[:, : n_bins - shift]
        else:
            x, ex = a[: n_bins + shift], a_sigma[: n_bins + shift]
            y, ey = b[:, -shift:], b_sigma[:, -shift:]
        both = np.isfinite(x)[None, :] & np.isfinite(y)
        w = np.where(
            both, 1.0 / (np.nan_to_num(ex)[None, :] ** 2 + np.nan_to_num(ey) ** 2 + s.slope_floor**2), 0.0
        )
        diff = np.where(both, np.nan_to_num(x)[None, :] - np.nan_to_num(y), 0.0)
        total = w.sum(axis=1)
        enough = both.sum(axis=1) >= s.min_common_bins
        with np.errstate(invalid="ignore", divide="ignore"):
            d2 = (w * diff**2).sum(axis=1) / total + (shift * BIN_WIDTH_LN_Q / s.shift_scale_ln) ** 2
        best = np.where(enough & (d2 < best), d2, best)
    return np.where(np.isfinite(best), np.sqrt(best), np.nan)


class DistanceMatrix:
    """Pairwise shape distances of a growing set of descriptors: each new one costs one row."""

    def __init__(self, settings: GroupingSettings | None = None) -> None:
        self.settings = settings or GroupingSettings()
        self._slopes = np.zeros((0, 0))
        self._sigmas = np.zeros((0, 0))
        self._d = np.zeros((0, 0))

    def __len__(self) -> int:
        return int(self._d.shape[0])

    @property
    def matrix(self) -> FloatArray:
        return self._d

    def add(self, descriptor: ShapeDescriptor) -> FloatArray:
        """Add one descriptor; return its distances to the ones before it."""
        n = len(self)
        row = (
            _distances(descriptor.slopes, descriptor.slope_sigmas, self._slopes, self._sigmas, self.settings)
            if n
            else np.zeros(0)
        )
        d = np.full((n + 1, n + 1), 0.0)
        d[:n, :n] = self._d
        d[n, :n] = d[:n, n] = row
        self._d = d
        self._slopes = descriptor.slopes[None, :] if n == 0 else np.vstack([self._slopes, descriptor.slopes])
        self._sigmas = (
            descriptor.slope_sigmas[None, :] if n == 0 else np.vstack([self._sigmas, descriptor.slope_sigmas])
        )
        return row

    def subset(self, rows: Sequence[int]) -> FloatArray:
        index = np.asarray(rows, dtype=np.int64)
        return self._d[np.ix_(index, index)]


def relative_distances(distances: FloatArray, settings: GroupingSettings | None = None) -> FloatArray:
    """Distances over the geometric mean of the two curves' own scales (see the module docstring)."""
    s = settings or GroupingSettings()
    n = distances.shape[0]
    d = np.array(distances, dtype=np.float64)
    unknown = ~np.isfinite(d)
    if n < 2:
        return np.zeros_like(d)
    sorted_rows = np.sort(np.where(unknown, np.inf, d), axis=1)
    # a neighbourhood must stay inside a phase: with few runs a phase holds only a few of them
    k = int(min(max(2, n // 4), s.neighbours, n - 1))
    scale = np.clip(sorted_rows[:, k], s.scale_floor, s.scale_cap)
    scale = np.where(np.isfinite(scale), scale, s.scale_cap)
    relative = d / np.sqrt(scale[:, None] * scale[None, :])
    # curves that cannot be compared are never put together by their distance alone
    relative[unknown] = 1e3 * s.cut
    np.fill_diagonal(relative, 0.0)
    return relative


def group(
    distances: FloatArray, settings: GroupingSettings | None = None, coordinates: FloatArray | None = None
) -> IntArray:
    """Group labels 0..k-1 for the curves of `distances` (square, symmetric, NaN = not comparable).

    With `coordinates` (the runs' compositions, one row each, in comparable units), neighbouring
    groups whose border shows no jump are joined (see the module docstring). Labels are numbered
    by each group's first curve, so the same input gives the same labels.
    """
    s = settings or GroupingSettings()
    n = distances.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    relative = relative_distances(distances, s)
    tree = linkage(squareform(relative, checks=False), method=s.linkage)
    labels = fcluster(tree, s.cut, criterion="distance").astype(np.int64)
    if coordinates is not None and len(set(labels.tolist())) > 1:
        labels = _join_smooth_borders(labels, distances, relative, np.asarray(coordinates, np.float64), s)
    order: dict[int, int] = {}
    for value in labels:
        order.setdefault(int(value), len(order))
    return np.array([order[int(v)] for v in labels], dtype=np.int64)


def _rates(labels: IntArray, distances: FloatArray, composition: FloatArray) -> dict[int, float]:
    """Each group's rate of change: median curve distance per composition distance to the nearest member."""
    rates: dict[int, float] = {}
    for g in np.unique(labels):
        members = np.nonzero(labels == g)[0]
        if members.size < 2:
            continue  # a group of one has no rate: it is never joined for a smooth border
        sub = composition[np.ix_(members, members)].copy()
        np.fill_diagonal(sub, np.inf)
        nearest = members[np.argmin(sub, axis=1)]
        d_curve = distances[members, nearest]
        d_comp = np.maximum(composition[members, nearest], 1e-9)
        ok = np.isfinite(d_curve)
        if ok.any():
            rates[int(g)] = float(np.median(d_curve[ok] / d_comp[ok]))
    return rates


def _join_smooth_borders(
    labels: IntArray,
    distances: FloatArray,
    relative: FloatArray,
    coordinates: FloatArray,
    s: GroupingSettings,
) -> IntArray:
    composition = np.sqrt(((coordinates[:, None, :] - coordinates[None, :, :]) ** 2).sum(-1))
    labels = labels.copy()
    while True:
        rates = _rates(labels, distances, composition)
        groups = sorted(rates)
        best: tuple[float, int, int] | None = None
        for i, a in enumerate(groups):
            for b in groups[i + 1 :]:
                in_a, in_b = np.nonzero(labels == a)[0], np.nonzero(labels == b)[0]
                if np.mean(relative[np.ix_(in_a, in_b)]) > s.merge_within:
                    continue
                cross = composition[np.ix_(in_a, in_b)]
                closest = np.argsort(cross, axis=None)[: s.border_pairs]
                pa, pb = in_a[closest // in_b.size], in_b[closest % in_b.size]
                expected = s.jump_floor + min(rates[a], rates[b]) * composition[pa, pb]
                ratios = distances[pa, pb] / expected
                ratios = ratios[np.isfinite(ratios)]
                if ratios.size == 0:
                    continue
                ratio = float(np.median(ratios))
                if ratio < s.jump_ratio and (best is None or ratio < best[0]):
                    best = (ratio, a, b)
        if best is None:
            return labels
        labels[labels == best[2]] = best[1]
