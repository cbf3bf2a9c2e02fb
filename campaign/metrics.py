"""How good a phase map is: accuracy against the truth, with cluster labels matched to phase names.

Analysis names its clusters on its own (``cluster_0``, or names that happen to be
stable across a campaign), the truth names phases (``lamellar``). A map is judged
after the best one-to-one matching of predicted labels to truth labels: the
assignment that maximises the number of grid points on which they agree
(Hungarian algorithm on the confusion matrix). A predicted label left without a
partner (more clusters than phases) and a missing prediction count as wrong, so
splitting one phase into two clusters costs accuracy, as it should.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from tandem.errors import TandemError


class MetricInputError(TandemError, ValueError):
    """Predicted and true labels that cannot be compared."""


@dataclass(frozen=True)
class LabelMatch:
    """The result of matching predicted labels to truth labels on the same points."""

    #: predicted label -> truth label it stands for (unmatched predicted labels are absent)
    mapping: Mapping[str, str]
    #: share of points whose predicted label, matched, equals the truth (0 when there are no points)
    accuracy: float
    #: rows: predicted labels, columns: truth labels, as in `predicted_labels` / `truth_labels`
    confusion: np.ndarray = field(repr=False)
    predicted_labels: tuple[str, ...] = ()
    truth_labels: tuple[str, ...] = ()
    n_points: int = 0

    def translate(self, labels: Sequence[str | None]) -> list[str | None]:
        """Predicted labels in the truth's names (None where a label has no partner)."""
        return [None if lab is None else self.mapping.get(lab) for lab in labels]

    def to_dict(self) -> dict[str, object]:
        return {
            "accuracy": self.accuracy,
            "n_points": self.n_points,
            "mapping": dict(self.mapping),
            "predicted_labels": list(self.predicted_labels),
            "truth_labels": list(self.truth_labels),
            "confusion": self.confusion.astype(int).tolist(),
        }


def match_labels(predicted: Sequence[str | None], truth: Sequence[str]) -> LabelMatch:
    """Match predicted labels to truth labels one-to-one so that they agree on the most points.

    `predicted` may hold None (no prediction there): such points are always wrong.
    """
    if len(predicted) != len(truth):
        raise MetricInputError(
            f"predicted and true labels must be given for the same points: "
            f"{len(predicted)} predicted, {len(truth)} true"
        )
    if any(t is None for t in truth):
        raise MetricInputError("every point needs a true label; leave points without one out")
    pred_names = tuple(sorted({p for p in predicted if p is not None}))
    true_names = tuple(sorted(set(truth)))
    confusion = np.zeros((len(pred_names), len(true_names)), dtype=np.int64)
    p_index = {name: i for i, name in enumerate(pred_names)}
    t_index = {name: j for j, name in enumerate(true_names)}
    for p, t in zip(predicted, truth, strict=True):
        if p is not None:
            confusion[p_index[p], t_index[t]] += 1
    mapping: dict[str, str] = {}
    correct = 0
    if confusion.size:
        rows, cols = linear_sum_assignment(confusion, maximize=True)
        for r, c in zip(rows, cols, strict=True):
            if confusion[r, c] > 0:  # a pairing that agrees nowhere is no match
                mapping[pred_names[r]] = true_names[c]
                correct += int(confusion[r, c])
    n = len(truth)
    return LabelMatch(
        mapping=mapping,
        accuracy=correct / n if n else 0.0,
        confusion=confusion,
        predicted_labels=pred_names,
        truth_labels=true_names,
        n_points=n,
    )


def phase_map_accuracy(
    predicted: Sequence[str | None], truth: Sequence[str], *, matched: bool = True
) -> float:
    """Share of points labelled right: after label matching (default), or by plain name equality."""
    if not matched:
        if len(predicted) != len(truth):
            raise MetricInputError(f"{len(predicted)} predicted labels for {len(truth)} true ones")
        n = len(truth)
        return sum(p == t for p, t in zip(predicted, truth, strict=True)) / n if n else 0.0
    return match_labels(predicted, truth).accuracy


def first_reaching(xs: Sequence[float], accuracies: Sequence[float], goal: float) -> float | None:
    """The first x at which the accuracy reaches `goal` and never drops below it again; None if never."""
    if len(xs) != len(accuracies):
        raise MetricInputError(f"{len(xs)} x values for {len(accuracies)} accuracies")
    reached: float | None = None
    for x, a in zip(xs, accuracies, strict=True):
        if a < goal:
            reached = None  # dropped below again: only a crossing that lasts counts
        elif reached is None:
            reached = x
    return reached


__all__ = ["LabelMatch", "MetricInputError", "first_reaching", "match_labels", "phase_map_accuracy"]
