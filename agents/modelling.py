"""The life cycle of an agent's GP: fit rarely, condition often, fall back safely.

`IncrementalGP` holds the training rows and decides, each time a model is
needed, between

* a **full refit** of the hyperparameters (first model, new outputs, or the data
  grew by `refit_growth` since the last fit), warm-started from the last fit;
* **conditioning** the cached model on the rows added since (a Cholesky
  extension, O(n²) per row).

Past `RefitPolicy.max_model_rows` rows, a model whose rows carry their own noise
(the phase agents' Dirichlet GPs) conditions on a *summary* of them instead: all
rows merged into half as many (`tandem.agents.gp_summary`), then new rows added
until the bound is reached again. A decision then costs what it costs at the
bound, however long the campaign. The hyperparameters are still fitted on the
rows themselves.

A refit that fails keeps the last good hyperparameters (or defaults, the first
time), says so in `last_event`, and logs a warning: a decision is never blocked
by a bad fit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tandem.agents.errors import ModelFitError
from tandem.agents.gp import CachedGP
from tandem.agents.gp_fit import fit_hyperparameters
from tandem.agents.gp_hyperparameters import DTYPE, KernelHyperparameters
from tandem.agents.gp_summary import summarise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefitPolicy:
    #: refit when the number of observations has grown by this factor since the last fit
    growth: float = 1.25
    #: ... but never with fewer than this many new observations
    min_new: int = 4
    #: hyperparameters are fitted on at most this many observations (the posterior uses all)
    max_fit_points: int = 400
    max_iterations: int = 100
    #: median of the log-normal lengthscale prior, in units of the box's width. The phase agents
    #: use 0.6: phase boundaries in a formulation box are few and gently curved, so each class'
    #: latent varies on the scale of the box, and short fitted lengthscales from a handful of
    #: labels made the map patchy (bench/README.md: a median of 55 instead of 65 samples to 90 %).
    lengthscale_prior_median: float = 0.3
    #: the posterior conditions on at most this many rows; past it, rows with their own noise are
    #: summarised (see the module's docstring). 1,000 rows cost a decision about 0.3 s.
    max_model_rows: int = 1000


def default_hyperparameters(
    dim: int, num_outputs: int, num_tasks: int, learned_noise: bool
) -> KernelHyperparameters:
    """Safe values to start from when no fit has succeeded yet."""
    return KernelHyperparameters(
        lengthscales=np.full((num_outputs, dim), 0.3),
        outputscales=np.ones(num_outputs),
        means=np.zeros(num_outputs),
        noise=np.full(num_outputs, 0.1) if learned_noise else None,
        task_covariance=None
        if not num_tasks
        else np.tile(0.9 * np.ones((num_tasks, num_tasks)) + 0.1 * np.eye(num_tasks), (num_outputs, 1, 1)),
    )


class IncrementalGP:
    def __init__(
        self,
        dim: int,
        *,
        num_tasks: int = 0,
        learned_noise: bool = False,
        policy: RefitPolicy | None = None,
        seed: int = 0,
        constrain: Callable[[KernelHyperparameters], KernelHyperparameters] | None = None,
    ) -> None:
        self.dim = dim
        self.num_tasks = num_tasks
        self.learned_noise = learned_noise
        self.policy = policy or RefitPolicy()
        self.seed = seed
        #: applied to every fitted (or fallback) set of hyperparameters: what the data cannot
        #: identify, the caller may fix (for example a task correlation no data has informed)
        self.constrain = constrain
        self.x = torch.empty(0, dim + (1 if num_tasks else 0), dtype=DTYPE)
        self.y = torch.empty(0, 0, dtype=DTYPE)
        self.yvar: torch.Tensor | None = None
        self.hyperparameters: KernelHyperparameters | None = None
        self.n_at_fit = 0
        self._model: CachedGP | None = None
        #: how many of the rows (the first ones) `_model` holds, themselves or summarised
        self._covered = 0
        self.last_event: dict[str, Any] = {}
        self._stale_outputs = True

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def add(self, x: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor | None = None) -> None:
        if self.n and y.shape[-1] != self.y.shape[-1]:
            raise ValueError("new rows must have the same outputs; use replace_outputs when they change")
        self.x = torch.cat([self.x, x.to(DTYPE)])
        self.y = torch.cat([self.y.reshape(-1, y.shape[-1]), y.to(DTYPE)])
        if yvar is not None:
            prev = self.yvar if self.yvar is not None else torch.empty(0, y.shape[-1], dtype=DTYPE)
            self.yvar = torch.cat([prev, yvar.to(DTYPE)])

    def replace_outputs(self, x: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor | None = None) -> None:
        """All outputs changed (a new phase label, a new objective scaling): the next model is refitted."""
        self.x = x.to(DTYPE)
        self.y = y.to(DTYPE)
        self.yvar = None if yvar is None else yvar.to(DTYPE)
        self._stale_outputs = True
        self._model = None

    def request_refit(self) -> None:
        """Refit before the next model (what the hyperparameters may depend on has changed)."""
        self._stale_outputs = True
        self._model = None

    def needs_refit(self) -> bool:
        if self.hyperparameters is None or self._stale_outputs:
            return True
        grown = self.n >= self.policy.growth * self.n_at_fit
        return grown and self.n - self.n_at_fit >= self.policy.min_new

    def model(self) -> CachedGP:
        """The model of every row added so far (refitted or conditioned as the policy says)."""
        if self.n == 0:
            raise ModelFitError("no observations to model yet")
        if self._model is not None and self._covered == self.n and not self._stale_outputs:
            self.last_event = {"refit": False, "conditioned": 0, "fallback": None}
            return self._model
        if self.needs_refit():
            self._model = self._refit()
        elif self._model is None:
            # restored hyperparameters: factorise every row, no refit
            t0 = time.perf_counter()
            self._model = self._factorised(self.hyperparameters)  # type: ignore[arg-type]
            self.last_event = {
                "refit": False,
                "conditioned": 0,
                "fallback": None,
                "factorise_s": time.perf_counter() - t0,
            }
        else:
            assert self._model is not None
            t0 = time.perf_counter()
            k = self._covered
            yvar = None if self.yvar is None else self.yvar[k:]
            self._model = self._model.condition(self.x[k:], self.y[k:], yvar)
            self.last_event = {
                "refit": False,
                "conditioned": self.n - k,
                "fallback": None,
                "condition_s": time.perf_counter() - t0,
            }
            if self._model.num_train > self.policy.max_model_rows and self.yvar is not None:
                self._model = self._factorised(self._model.hyperparameters)
        self._covered = self.n
        self.last_event["model_rows"] = self._model.num_train
        return self._model

    def _factorised(self, hp: KernelHyperparameters) -> CachedGP:
        """A model of every row: the rows themselves, or past the bound their summary."""
        if self.n <= self.policy.max_model_rows or self.yvar is None:
            return CachedGP(hp, self.x, self.y, self.yvar)
        # the finest lengthscale of each column: rows merge only where no output can tell them apart
        lengthscales = np.min(np.asarray(hp.lengthscales), axis=0)
        rows = summarise(
            self.x,
            self.y,
            self.yvar,
            rows=self.policy.max_model_rows // 2,
            lengthscales=lengthscales,
            seed=self.seed,
        )
        return CachedGP(hp, *rows)

    def _refit(self) -> CachedGP:
        t0 = time.perf_counter()
        m = self.y.shape[-1]
        fallback = None
        prev = self.hyperparameters
        if prev is not None and (prev.num_outputs != m):
            prev = None
        try:
            hp = fit_hyperparameters(
                self.x,
                self.y,
                self.yvar,
                num_tasks=self.num_tasks,
                init=prev,
                max_points=self.policy.max_fit_points,
                # a warm start is near its optimum already
                max_iterations=self.policy.max_iterations
                if prev is None
                else self.policy.max_iterations // 4,
                seed=self.seed + self.n,
                lengthscale_prior_median=self.policy.lengthscale_prior_median,
            )
            if self.constrain is not None:
                hp = self.constrain(hp)
            model = self._factorised(hp)
        except ModelFitError as exc:
            hp = prev or default_hyperparameters(self.dim, m, self.num_tasks, self.learned_noise)
            if prev is None and self.constrain is not None:
                hp = self.constrain(hp)
            fallback = (
                f"{exc}; kept the last good hyperparameters (fitted on {self.n_at_fit} observations)"
                if prev is not None
                else f"{exc}; using default hyperparameters"
            )
            logger.warning("model fit failed at n=%d: %s", self.n, fallback)
            model = self._factorised(hp)
        self.hyperparameters = hp
        self.n_at_fit = self.n
        self._stale_outputs = False
        self.last_event = {
            "refit": True,
            "conditioned": 0,
            "fallback": fallback,
            "fit_s": time.perf_counter() - t0,
        }
        return model

    def use_hyperparameters(self, hp: KernelHyperparameters, n_at_fit: int) -> None:
        """Restore: take these hyperparameters as the last fit, made when there were `n_at_fit` rows."""
        self.hyperparameters = hp
        self.n_at_fit = n_at_fit
        self._stale_outputs = False
        self._model = None

    def state(self) -> dict[str, Any]:
        return {
            "hyperparameters": None if self.hyperparameters is None else self.hyperparameters.to_dict(),
            "n_at_fit": self.n_at_fit,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        if state.get("hyperparameters") is not None:
            self.use_hyperparameters(
                KernelHyperparameters.from_dict(state["hyperparameters"]), int(state.get("n_at_fit", 0))
            )
