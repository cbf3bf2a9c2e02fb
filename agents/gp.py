"""Exact GPs that stay fast as a campaign grows: conditioned cheaply on fixed hyperparameters.

`CachedGP` is a BoTorch `Model` that holds the Cholesky factor of the training
covariance for fixed hyperparameters (fitted rarely, by `tandem.agents.gp_fit`).
GPyTorch's exact prediction path refactorises the training covariance on every
posterior call (O(n³)); here it is factorised once and *extended* when observations
arrive (O(n² k) for k new points), so a posterior at b points costs O(n² b) and
conditioning on a new result costs O(n²).

Kernels: a Matérn-5/2 ARD kernel on the composition (the unit cube of the
region), with, for multi-task models, an intrinsic-coregionalisation task
covariance on a last integer input column (the kernel of BoTorch's
`MultiTaskGP`). Each of the `m` outputs has its own hyperparameters
(`KernelHyperparameters`); this module also exports them and `fit_hyperparameters`,
as the agents import them from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultitaskMultivariateNormal, MultivariateNormal

from tandem.agents.errors import ModelFitError
from tandem.agents.gp_hyperparameters import DTYPE, KernelHyperparameters

#: Added to the diagonal so that duplicated compositions with tiny noise stay factorisable.
JITTER = 1e-8


@dataclass(frozen=True)
class _Factor:
    """Cholesky factor ``L`` of ``K + diag(noise)`` kept as a contiguous head and a short tail.

    ``L = [[head, 0], [tail_left, tail_right]]``. New observations extend the
    tail (a copy of O(k n) numbers, not of the whole n² factor); once the tail
    grows past `tail_limit` rows it is merged into the head. ``z = L⁻¹ (y - mean)``
    is kept alongside, so that predictions need forward solves only.
    """

    head: torch.Tensor  # m x n0 x n0
    tail_left: torch.Tensor  # m x k x n0
    tail_right: torch.Tensor  # m x k x k
    z: torch.Tensor  # m x (n0 + k) x 1

    @property
    def n_head(self) -> int:
        return int(self.head.shape[-1])

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """``L⁻¹ rhs`` for ``rhs`` of shape ``m x n x b``."""
        n0 = self.n_head
        v1 = torch.linalg.solve_triangular(self.head, rhs[:, :n0], upper=False)
        if self.tail_right.shape[-1] == 0:
            return v1
        v2 = torch.linalg.solve_triangular(self.tail_right, rhs[:, n0:] - self.tail_left @ v1, upper=False)
        return torch.cat([v1, v2], dim=-2)

    def merged(self) -> torch.Tensor:
        m, n0 = self.head.shape[0], self.n_head
        k = self.tail_right.shape[-1]
        full = torch.zeros(m, n0 + k, n0 + k, dtype=DTYPE)
        full[:, :n0, :n0] = self.head
        full[:, n0:, :n0] = self.tail_left
        full[:, n0:, n0:] = self.tail_right
        return full


class CachedGP(Model):
    """An exact GP with fixed hyperparameters and a cached, extendable Cholesky factor.

    `train_x` is ``n x D`` (D = d, or d + 1 with the task index last for
    multi-task models), `train_y` and `train_yvar` are ``n x m``.
    """

    def __init__(
        self,
        hyperparameters: KernelHyperparameters,
        train_x: torch.Tensor,
        train_y: torch.Tensor,
        train_yvar: torch.Tensor | None = None,
        *,
        tail_limit: int = 256,
        _factor: _Factor | None = None,
    ) -> None:
        super().__init__()
        hp = hyperparameters
        self.hyperparameters = hp
        m = hp.num_outputs
        if train_y.ndim != 2 or train_y.shape[-1] != m or train_x.shape[0] != train_y.shape[0]:
            raise ValueError(f"need train_x n x D and train_y n x {m}, got {train_x.shape}, {train_y.shape}")
        if train_yvar is None:
            train_yvar = self._learned_noise(train_y)
        self.train_x = train_x.to(DTYPE)
        self.train_y = train_y.to(DTYPE)
        self.train_yvar = train_yvar.to(DTYPE)
        self.tail_limit = tail_limit
        self._lengthscales = torch.as_tensor(hp.lengthscales, dtype=DTYPE)
        self._outputscales = torch.as_tensor(hp.outputscales, dtype=DTYPE)
        self._means = torch.as_tensor(hp.means, dtype=DTYPE)
        self._tasks = None if hp.task_covariance is None else torch.as_tensor(hp.task_covariance, dtype=DTYPE)
        self._factor = self._factorise() if _factor is None else _factor

    def _learned_noise(self, y: torch.Tensor) -> torch.Tensor:
        if self.hyperparameters.noise is None:
            raise ValueError("without learned noise, every observation needs its noise variance")
        return torch.as_tensor(self.hyperparameters.noise, dtype=DTYPE).expand(y.shape).clone()

    # BoTorch's Model interface
    @property
    def num_outputs(self) -> int:
        return self.hyperparameters.num_outputs

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    @property
    def num_train(self) -> int:
        return int(self.train_x.shape[0])

    def kernel(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Cross-covariances ``m x a x b`` of `x1` (``a x D``) and `x2` (``b x D``)."""
        d = self.hyperparameters.dim
        z1 = x1[..., :d].unsqueeze(0) / self._lengthscales[:, None, :]
        z2 = x2[..., :d].unsqueeze(0) / self._lengthscales[:, None, :]
        sq = (
            z1.pow(2).sum(-1, keepdim=True)
            - 2 * z1 @ z2.transpose(-1, -2)
            + z2.pow(2).sum(-1, keepdim=True).transpose(-1, -2)
        ).clamp_min(0.0)
        # the clamp keeps the gradient of the distance finite where two points coincide
        s5r = math.sqrt(5.0) * sq.clamp_min(1e-30).sqrt()
        k = (1.0 + s5r + (5.0 / 3.0) * sq) * torch.exp(-s5r)
        if self._tasks is None:
            return k * self._outputscales[:, None, None]
        t1 = x1[..., d].long()
        t2 = x2[..., d].long()
        return k * self._tasks[:, t1][:, :, t2]

    def _prior_diag(self, x: torch.Tensor) -> torch.Tensor:
        """Prior variance ``m x b`` at `x` (without forming the full matrix)."""
        if self._tasks is None:
            return self._outputscales[:, None].expand(-1, x.shape[0])
        t = x[..., self.hyperparameters.dim].long()
        return torch.diagonal(self._tasks, dim1=-2, dim2=-1)[:, t]

    def _residual(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self._means).T.unsqueeze(-1)

    def _factorise(self) -> _Factor:
        k = self.kernel(self.train_x, self.train_x)
        k = k + torch.diag_embed(self.train_yvar.T + JITTER)
        chol, info = torch.linalg.cholesky_ex(k)
        if int(info.max()) > 0:
            raise ModelFitError("the training covariance is not positive definite")
        z = torch.linalg.solve_triangular(chol, self._residual(self.train_y), upper=False)
        m = self.num_outputs
        return _Factor(
            chol, torch.zeros(m, 0, self.num_train, dtype=DTYPE), torch.zeros(m, 0, 0, dtype=DTYPE), z
        )

    def condition(self, x: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor | None = None) -> CachedGP:
        """A new model with `x`, `y` added, by extending the Cholesky factor (O(n² k) for k points)."""
        x, y = x.to(DTYPE), y.to(DTYPE)
        yvar = self._learned_noise(y) if yvar is None else yvar.to(DTYPE)
        f = self._factor
        b = f.solve(self.kernel(self.train_x, x))  # m x n x k
        schur = self.kernel(x, x) + torch.diag_embed(yvar.T + JITTER) - b.transpose(-1, -2) @ b
        l_new, info = torch.linalg.cholesky_ex(schur)
        train = (
            torch.cat([self.train_x, x]),
            torch.cat([self.train_y, y]),
            torch.cat([self.train_yvar, yvar]),
        )
        if int(info.max()) > 0:
            # numerically degenerate extension (a near-duplicate with tiny noise): start afresh
            return CachedGP(self.hyperparameters, *train, tail_limit=self.tail_limit)
        bt = b.transpose(-1, -2)  # m x k x n
        z_new = torch.linalg.solve_triangular(l_new, self._residual(y) - bt @ f.z, upper=False)
        n0, k_old, m = f.n_head, f.tail_right.shape[-1], self.num_outputs
        corner = torch.zeros(m, k_old, x.shape[0], dtype=DTYPE)
        tail_right = torch.cat(
            [torch.cat([f.tail_right, corner], -1), torch.cat([bt[:, :, n0:], l_new], -1)], dim=-2
        )
        factor = _Factor(
            f.head, torch.cat([f.tail_left, bt[:, :, :n0]], -2), tail_right, torch.cat([f.z, z_new], -2)
        )
        if tail_right.shape[-1] > self.tail_limit:
            full = factor.merged()
            factor = _Factor(
                full,
                torch.zeros(m, 0, full.shape[-1], dtype=DTYPE),
                torch.zeros(m, 0, 0, dtype=DTYPE),
                factor.z,
            )
        return CachedGP(self.hyperparameters, *train, tail_limit=self.tail_limit, _factor=factor)

    def condition_on_observations(self, X: torch.Tensor, Y: torch.Tensor, **kwargs: Any) -> CachedGP:  # noqa: N803 - BoTorch names
        noise = kwargs.get("noise")
        return self.condition(X.reshape(-1, X.shape[-1]), Y.reshape(-1, Y.shape[-1]), noise)

    def mean_and_variance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and latent variance, both ``b x m``, at the ``b x D`` points `x`."""
        v = self._factor.solve(self.kernel(self.train_x, x))  # m x n x b
        mean = self._means[:, None] + (v.transpose(-1, -2) @ self._factor.z).squeeze(-1)
        var = (self._prior_diag(x) - v.pow(2).sum(-2)).clamp_min(1e-12)
        return mean.T, var.T

    def joint(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means ``m x b x q`` and covariances ``m x b x q x q`` of ``b`` sets of ``q`` points."""
        nb, q, dim = x.shape
        flat = x.reshape(-1, dim).to(DTYPE)
        v = self._factor.solve(self.kernel(self.train_x, flat))  # m x n x bq
        mean = self._means[:, None] + (v.transpose(-1, -2) @ self._factor.z).squeeze(-1)
        v = v.reshape(self.num_outputs, -1, nb, q)
        k_qq = torch.stack([self.kernel(x[i], x[i]) for i in range(nb)], dim=1)  # m x b x q x q
        cov = k_qq - torch.einsum("mnbi,mnbj->mbij", v, v)
        return mean.reshape(self.num_outputs, nb, q), cov

    def posterior(
        self,
        X: torch.Tensor,  # noqa: N803 - BoTorch names
        output_indices: list[int] | None = None,
        observation_noise: bool | torch.Tensor = False,
        posterior_transform: Any = None,
    ) -> Any:
        batch, q, dim = X.shape[:-2], X.shape[-2], X.shape[-1]
        mean, cov = self.joint(X.reshape(-1, q, dim))
        eye = torch.eye(q, dtype=DTYPE)
        if observation_noise is True and self.hyperparameters.noise is not None:
            cov = cov + torch.as_tensor(self.hyperparameters.noise, dtype=DTYPE)[:, None, None, None] * eye
        cov = cov + 1e-10 * eye
        outputs = output_indices if output_indices is not None else list(range(self.num_outputs))
        mvns = [MultivariateNormal(mean[o].reshape(*batch, q), cov[o].reshape(*batch, q, q)) for o in outputs]
        dist = mvns[0] if len(mvns) == 1 else MultitaskMultivariateNormal.from_independent_mvns(mvns)
        posterior = GPyTorchPosterior(dist)
        if posterior_transform is not None:
            return posterior_transform(posterior)
        return posterior


__all__ = [
    "JITTER",
    "CachedGP",
]
