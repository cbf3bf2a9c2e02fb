"""Kernel hyperparameters fitted by maximising the marginal likelihood, rarely.

`fit_hyperparameters` fits a BoTorch `SingleTaskGP` (warm-started from the previous fit,
on at most `max_points` observations: hyperparameters need a few hundred points, not
thousands) and reads its kernel back as `KernelHyperparameters`, which
`tandem.agents.gp.CachedGP` then conditions with cheaply.

The fitted model has the kernels `CachedGP` computes (see `tandem.agents.gp`): GPyTorch's
Matérn-5/2 ARD kernel, times an `IndexKernel` over the task column for multi-task models.
"""

from __future__ import annotations

import math
import warnings

import gpytorch
import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.kernels import IndexKernel, MaternKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import ConstantMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior, LogNormalPrior

from tandem.agents.errors import ModelFitError
from tandem.agents.gp_hyperparameters import DTYPE, KernelHyperparameters


def _build_fit_model(
    x: torch.Tensor,
    y: torch.Tensor,
    yvar: torch.Tensor | None,
    num_tasks: int,
    lengthscale_prior_median: float = 0.3,
) -> SingleTaskGP:
    m = y.shape[-1]
    batch = torch.Size([m]) if m > 1 else torch.Size([])
    d = x.shape[-1] - (1 if num_tasks else 0)
    matern = MaternKernel(
        nu=2.5,
        ard_num_dims=d,
        active_dims=list(range(d)) if num_tasks else None,
        batch_shape=batch,
        lengthscale_prior=LogNormalPrior(math.log(lengthscale_prior_median), 0.75),
    )
    covar: gpytorch.kernels.Kernel
    if num_tasks:
        task = IndexKernel(num_tasks=num_tasks, rank=num_tasks, batch_shape=batch, active_dims=[d])
        covar = matern * task
    else:
        covar = ScaleKernel(matern, batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.5))
    likelihood = None
    if yvar is None:
        likelihood = GaussianLikelihood(batch_shape=batch, noise_prior=GammaPrior(1.1, 20.0))
    return SingleTaskGP(
        x,
        y,
        train_Yvar=yvar,
        likelihood=likelihood,
        covar_module=covar,
        mean_module=ConstantMean(batch_shape=batch),
        outcome_transform=None,
    )


def _load(model: SingleTaskGP, hp: KernelHyperparameters) -> None:
    m = hp.num_outputs
    squeeze = m == 1
    with torch.no_grad():
        means = torch.as_tensor(hp.means, dtype=DTYPE)
        model.mean_module.constant = means[0] if squeeze else means
        covar = model.covar_module
        if hp.task_covariance is None:
            ls = torch.as_tensor(hp.lengthscales, dtype=DTYPE).unsqueeze(-2)
            covar.base_kernel.lengthscale = ls[0] if squeeze else ls
            os_ = torch.as_tensor(hp.outputscales, dtype=DTYPE)
            covar.outputscale = os_[0] if squeeze else os_
        else:
            matern, task = covar.kernels
            ls = torch.as_tensor(hp.lengthscales, dtype=DTYPE).unsqueeze(-2)
            matern.lengthscale = ls[0] if squeeze else ls
            b = torch.as_tensor(hp.task_covariance, dtype=DTYPE)
            chol = torch.linalg.cholesky(b + 1e-6 * torch.eye(b.shape[-1], dtype=DTYPE))
            task.covar_factor.data.copy_(chol[0] if squeeze else chol)
            task.var = torch.full_like(task.var, 1e-4)
        if hp.noise is not None and isinstance(model.likelihood, GaussianLikelihood):
            noise = torch.as_tensor(hp.noise, dtype=DTYPE)
            model.likelihood.noise = (noise[0] if squeeze else noise).clamp_min(1e-4)


def _read(model: SingleTaskGP, m: int, learned_noise: bool) -> KernelHyperparameters:
    covar = model.covar_module
    with torch.no_grad():
        if isinstance(covar, ScaleKernel):
            ls = covar.base_kernel.lengthscale.reshape(m, -1)
            outputscales = covar.outputscale.reshape(m)
            task = None
        else:
            matern, index = covar.kernels
            ls = matern.lengthscale.reshape(m, -1)
            t = index.covar_factor.shape[-2]
            b = index.covar_matrix.to_dense().reshape(m, t, t)
            task = b.detach().numpy().copy()
            outputscales = torch.ones(m, dtype=DTYPE)
        means = model.mean_module.constant.reshape(m)
        noise = None
        if learned_noise:
            noise = model.likelihood.noise.reshape(m).detach().numpy().copy()
    return KernelHyperparameters(
        lengthscales=ls.detach().numpy().copy(),
        outputscales=outputscales.detach().numpy().copy(),
        means=means.detach().numpy().copy(),
        noise=noise,
        task_covariance=task,
    )


def fit_hyperparameters(
    x: torch.Tensor,
    y: torch.Tensor,
    yvar: torch.Tensor | None = None,
    *,
    num_tasks: int = 0,
    init: KernelHyperparameters | None = None,
    max_points: int = 400,
    max_iterations: int = 200,
    seed: int = 0,
    lengthscale_prior_median: float = 0.3,
) -> KernelHyperparameters:
    """Maximum-a-posteriori hyperparameters for `m` outputs (``y``: ``n x m``).

    With `yvar` the per-observation noise is fixed, else a homoscedastic noise is
    learned. `init` warm-starts the optimiser. Above `max_points` observations a
    seeded random subset is used (the posterior still uses every observation).
    Raises `ModelFitError` when the optimiser fails or returns non-finite values.
    """
    n, m = y.shape
    if n > max_points:
        generator = torch.Generator().manual_seed(seed)
        keep = torch.randperm(n, generator=generator)[:max_points].sort().values
        x, y = x[keep], y[keep]
        yvar = None if yvar is None else yvar[keep]
    x, y = x.to(DTYPE), y.to(DTYPE)
    yvar = None if yvar is None else yvar.to(DTYPE)
    # callers may be predicting under no_grad; the fit needs gradients regardless
    with torch.random.fork_rng(), torch.enable_grad():
        torch.manual_seed(seed)
        model = _build_fit_model(x, y, yvar, num_tasks, lengthscale_prior_median)
        if init is not None and init.num_outputs == m and init.num_tasks == num_tasks:
            _load(model, init)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_gpytorch_mll(
                    mll,
                    optimizer_kwargs={"options": {"maxiter": max_iterations}},
                    max_attempts=2,
                )
        except Exception as exc:  # botorch raises several types; all mean "no usable fit"
            raise ModelFitError(f"hyperparameter fit failed: {exc}") from exc
    model.eval()
    hp = _read(model, m, learned_noise=yvar is None)
    arrays = [hp.lengthscales, hp.outputscales, hp.means]
    arrays += [a for a in (hp.noise, hp.task_covariance) if a is not None]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ModelFitError("hyperparameter fit returned non-finite values")
    return hp
