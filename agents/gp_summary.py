"""A bounded training set for a GP whose observations carry their noise: nearby rows merged.

Two observations ``y1``, ``y2`` of one latent value, with noise variances ``v1``, ``v2``, tell a GP
exactly what one observation tells, of value ``(y1/v1 + y2/v2) / (1/v1 + 1/v2)`` and variance
``1 / (1/v1 + 1/v2)``. Rows close together on the scale of the kernel's lengthscales are nearly
that: merged into one row at their centre, they keep what the GP can resolve, and the rows the
posterior conditions on stop growing with the campaign. The phase agents' Dirichlet GPs
(heteroskedastic, one noise variance per observation) are such models; a model that learns one
noise for all rows is not summarised (`tandem.agents.modelling`).

Which rows merge is decided by k-means in lengthscale units, seeded and so reproducible: where the
agent sampled densely (along a boundary) the clusters are small; no cluster spans two tasks of a
multi-task model.
"""

from __future__ import annotations

import numpy as np
import torch

from tandem.agents.gp_hyperparameters import DTYPE

#: Lloyd iterations at most; the assignment usually settles in a handful
MAX_ITERATIONS = 25


def summarise(
    x: torch.Tensor,
    y: torch.Tensor,
    yvar: torch.Tensor,
    *,
    rows: int,
    lengthscales: np.ndarray,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """At most `rows` rows carrying the information of ``x`` (``n x D``), ``y`` and ``yvar`` (``n x m``).

    `lengthscales` (``d``, the composition's columns: ``D`` is ``d`` or ``d + 1`` with the task index
    last) sets the scale on which rows count as near. With ``n <= rows`` the rows are returned as they
    are.
    """
    n = int(x.shape[0])
    if rows < 1:
        raise ValueError(f"a summary needs at least one row, got {rows}")
    if n <= rows:
        return x, y, yvar
    d = int(np.asarray(lengthscales).shape[-1])
    scaled = x[:, :d].numpy() / np.asarray(lengthscales, dtype=np.float64)
    tasks = x[:, d].long().numpy() if x.shape[1] > d else np.zeros(n, dtype=np.int64)
    groups = [np.flatnonzero(tasks == t) for t in np.unique(tasks)]
    budgets = _shares(np.array([len(g) for g in groups]), rows)
    rng = np.random.default_rng(seed)
    out_x, out_y, out_v = [], [], []
    for members, budget in zip(groups, budgets, strict=True):
        for cluster in _clusters(scaled[members], budget, rng):
            index = members[cluster]
            precision = 1.0 / yvar[index]
            out_x.append(x[index].mean(dim=0))
            out_y.append((y[index] * precision).sum(dim=0) / precision.sum(dim=0))
            out_v.append(1.0 / precision.sum(dim=0))
    return torch.stack(out_x).to(DTYPE), torch.stack(out_y).to(DTYPE), torch.stack(out_v).to(DTYPE)


def _shares(sizes: np.ndarray, rows: int) -> np.ndarray:
    """Rows per group in proportion to its size, each at least one and none more than its size."""
    share = np.maximum(1, np.floor(rows * sizes / sizes.sum()).astype(np.int64))
    return np.minimum(share, sizes)


def _clusters(points: np.ndarray, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The indices of each non-empty k-means cluster of `points` (k-means++ start, Lloyd steps)."""
    n = points.shape[0]
    if n <= k:
        return [np.array([i]) for i in range(n)]
    centres = _kmeans_plus_plus(points, k, rng)
    labels = np.full(n, -1)
    for _ in range(MAX_ITERATIONS):
        distance = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        new_labels = distance.argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, points)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [points[rng.integers(len(points))]]
    nearest = ((points - centres[0]) ** 2).sum(-1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = rng.choice(len(points), p=nearest / total) if total > 0 else rng.integers(len(points))
        centres.append(points[pick])
        nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(-1))
    return np.array(centres, dtype=np.float64)


__all__ = ["summarise"]
