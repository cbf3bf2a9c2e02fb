"""Kernel hyperparameters of the GPs, and the precision every GP computes in.

`KernelHyperparameters` is what `tandem.agents.gp_fit` fits, what `tandem.agents.gp.CachedGP`
conditions with, and what an agent's saved state carries (`to_dict` / `from_dict`): a
Matérn-5/2 ARD kernel per output, with an intrinsic-coregionalisation task covariance for
multi-task models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tandem.agents.errors import AgentStateError

DTYPE = torch.float64


@dataclass(frozen=True)
class KernelHyperparameters:
    """Hyperparameters of `m` independent outputs (arrays are indexed by output first).

    `noise` is the learned homoscedastic noise variance per output, or None when
    every observation brings its own noise variance. `task_covariance` (``m x T x
    T``) is present for multi-task models; it then plays the role of the
    output scale.
    """

    lengthscales: np.ndarray  # m x d
    outputscales: np.ndarray  # m
    means: np.ndarray  # m
    noise: np.ndarray | None = None  # m
    task_covariance: np.ndarray | None = None  # m x T x T

    @property
    def num_outputs(self) -> int:
        return int(self.lengthscales.shape[0])

    @property
    def dim(self) -> int:
        return int(self.lengthscales.shape[1])

    @property
    def num_tasks(self) -> int:
        return 0 if self.task_covariance is None else int(self.task_covariance.shape[-1])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kernel": "matern52_ard" + ("*icm" if self.task_covariance is not None else ""),
            "lengthscales": self.lengthscales.tolist(),
            "outputscales": self.outputscales.tolist(),
            "means": self.means.tolist(),
        }
        if self.noise is not None:
            out["noise"] = self.noise.tolist()
        if self.task_covariance is not None:
            out["task_covariance"] = self.task_covariance.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KernelHyperparameters:
        try:
            hp = cls(
                lengthscales=np.asarray(data["lengthscales"], dtype=np.float64),
                outputscales=np.asarray(data["outputscales"], dtype=np.float64),
                means=np.asarray(data["means"], dtype=np.float64),
                noise=None if data.get("noise") is None else np.asarray(data["noise"], dtype=np.float64),
                task_covariance=(
                    None
                    if data.get("task_covariance") is None
                    else np.asarray(data["task_covariance"], dtype=np.float64)
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentStateError(f"malformed kernel hyperparameters: {exc!r}") from None
        m = hp.num_outputs
        if hp.lengthscales.ndim != 2 or hp.outputscales.shape != (m,) or hp.means.shape != (m,):
            raise AgentStateError(
                "kernel hyperparameters need lengthscales (m x d), outputscales and means (m)"
            )
        return hp
