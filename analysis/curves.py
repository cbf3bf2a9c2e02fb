"""The reduced curve: I(q) with its uncertainty and resolution, the value every analysis step passes on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.analysis.failures import AnalysisError, FailureCode

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Curve:
    """I(q) on an absolute-like scale.

    `q_inv_a` in 1/Å, increasing; `intensity_per_cm` and `sigma_per_cm` in 1/cm
    (differential cross-section per unit volume, 1-σ counting uncertainty);
    `dq_inv_a` is the 1-σ q resolution of each point, the width a model must be
    smeared with to be compared with it.
    """

    q_inv_a: FloatArray
    intensity_per_cm: FloatArray
    sigma_per_cm: FloatArray
    dq_inv_a: FloatArray
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrays = {
            "q_inv_a": self.q_inv_a,
            "intensity_per_cm": self.intensity_per_cm,
            "sigma_per_cm": self.sigma_per_cm,
            "dq_inv_a": self.dq_inv_a,
        }
        shapes = {name: np.shape(a) for name, a in arrays.items()}
        if len(set(shapes.values())) != 1 or len(shapes["q_inv_a"]) != 1:
            raise AnalysisError(
                FailureCode.BAD_FRAME, f"a curve needs four 1-D arrays of one length, got {shapes}"
            )
        for name, a in arrays.items():
            object.__setattr__(self, name, np.asarray(a, dtype=np.float64))
        q = self.q_inv_a
        if q.size and (not np.all(np.isfinite(q)) or np.any(np.diff(q) <= 0) or q[0] <= 0):
            raise AnalysisError(FailureCode.BAD_FRAME, "q must be finite, positive and strictly increasing")

    def __len__(self) -> int:
        return int(self.q_inv_a.size)

    def select(self, keep: npt.NDArray[np.bool_]) -> Curve:
        return Curve(
            self.q_inv_a[keep],
            self.intensity_per_cm[keep],
            self.sigma_per_cm[keep],
            self.dq_inv_a[keep],
            self.metadata,
        )

    def q_range(self, q_min_inv_a: float, q_max_inv_a: float) -> Curve:
        return self.select((self.q_inv_a >= q_min_inv_a) & (self.q_inv_a <= q_max_inv_a))

    def coarsened(self, factor: int) -> Curve:
        """Every `factor` neighbouring points merged into one, weighted by 1/σ².

        The merged point stands for the weighted mean of its points, so its resolution widens by the
        weighted spread of their q: a model smeared with the new `dq_inv_a` at the new `q_inv_a`
        matches the merged intensity to first order, peaks included. What is left over at the end
        joins the last group.
        """
        if factor < 1:
            raise AnalysisError(
                FailureCode.INTERNAL, f"a coarsening factor is a positive integer, got {factor}"
            )
        n = len(self)
        if factor == 1 or n < 2 * factor:
            return self
        if not np.all(np.isfinite(self.sigma_per_cm) & (self.sigma_per_cm > 0)):
            raise AnalysisError(FailureCode.INTERNAL, "only points with a finite, positive σ can be merged")
        starts = np.arange(0, n, factor)
        if n % factor:
            starts = starts[:-1]
        weight = 1.0 / np.square(self.sigma_per_cm)
        sums = np.add.reduceat(weight, starts)

        def mean(values: FloatArray) -> FloatArray:
            return np.asarray(np.add.reduceat(weight * values, starts) / sums, dtype=np.float64)

        q = mean(self.q_inv_a)
        group = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
        spread = mean(np.square(self.q_inv_a - q[group]))
        return Curve(
            q,
            mean(self.intensity_per_cm),
            1.0 / np.sqrt(sums),
            np.sqrt(mean(np.square(self.dq_inv_a)) + spread),
            {**self.metadata, "coarsened_by": factor},
        )

    def minus(self, other: Curve, factor: float = 1.0) -> Curve:
        """This curve less `factor` × `other` on the same q points (uncertainties add in quadrature)."""
        if other.q_inv_a.shape != self.q_inv_a.shape or not np.allclose(
            other.q_inv_a, self.q_inv_a, rtol=1e-9, atol=0
        ):
            raise AnalysisError(
                FailureCode.BAD_NORMALISATION,
                "curves to subtract must share q points: reduce both with the same geometry and binning",
            )
        return Curve(
            self.q_inv_a,
            self.intensity_per_cm - factor * other.intensity_per_cm,
            np.hypot(self.sigma_per_cm, factor * other.sigma_per_cm),
            self.dq_inv_a,
            self.metadata,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "q_inv_a": self.q_inv_a.tolist(),
            "intensity_per_cm": self.intensity_per_cm.tolist(),
            "sigma_per_cm": self.sigma_per_cm.tolist(),
            "dq_inv_a": self.dq_inv_a.tolist(),
        }
