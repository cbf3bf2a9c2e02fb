"""Optimisation: the composition whose structure is nearest a target, by noisy log-EI.

The objective is a scalar from the analysis: a feature (for example
`guinier_rg_a`, the micelle size) driven towards a target value — the score is
``-|log(feature / target)|`` (so 20 Å against a 40 Å target is as bad as 80 Å),
or the feature itself to maximise or minimise. Outcome constraints bound other
features (``{"peak_d_spacing_a": (None, 60.0)}``).

Model: one `tandem.agents.gp.CachedGP` output per modelled quantity (objective
first, then each constrained feature), standardised with the statistics of the
last refit and with a learned homoscedastic noise; between refits new results
are conditioned on (O(n²)).
Acquisition: BoTorch's `qLogNoisyExpectedImprovement` over the region (bounds
plus the sum cap as a linear constraint), with the measured compositions as
the baseline, pending samples as `X_pending`, and the outcome constraints as
its `constraints`; candidates the stocks cannot make are replaced by the next
best.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import numpy as np
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.objective import GenericMCObjective
from botorch.sampling import SobolQMCNormalSampler

from tandem.agents.base import (
    AgentBase,
    Candidate,
    Proposal,
    common_arguments,
    compute_threads,
    maximin_ranking,
)
from tandem.agents.errors import AgentError
from tandem.agents.gp import CachedGP
from tandem.agents.gp_hyperparameters import DTYPE
from tandem.agents.hygiene import Requirement, needs_feature
from tandem.agents.modelling import IncrementalGP, RefitPolicy
from tandem.agents.phase_mapping import optimise_candidates
from tandem.agents.protocol import Prediction, as_fraction_array
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe
from tandem.suggestions import ScanParameters


@dataclass(frozen=True)
class Objective:
    """Which scalar to optimise. `target` set: nearest to it; else maximise (or minimise)."""

    feature: str
    target: float | None = None
    minimise: bool = False
    #: other features bounded to (lower, upper); None leaves a side open
    constraints: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    #: learn only from this probe's results (features depend on contrast)
    probe: Probe | None = None

    def __post_init__(self) -> None:
        if self.target is not None and not (math.isfinite(self.target) and self.target > 0):
            raise AgentError(f"a target value must be a positive number, got {self.target!r}")
        for name, (lo, hi) in self.constraints.items():
            if lo is None and hi is None:
                raise AgentError(f"constraint on {name!r} bounds neither side")
            if lo is not None and hi is not None and lo >= hi:
                raise AgentError(f"constraint on {name!r} needs lower < upper, got ({lo}, {hi})")

    @property
    def features(self) -> tuple[str, ...]:
        return (self.feature, *self.constraints)

    def score(self, value: float) -> float:
        if self.target is not None:
            return -abs(math.log(value / self.target)) if value > 0 else -math.inf
        return -value if self.minimise else value

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "target": self.target,
            "minimise": self.minimise,
            "constraints": {k: list(v) for k, v in self.constraints.items()},
            "probe": None if self.probe is None else Probe(self.probe).value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Objective:
        return cls(
            feature=str(data["feature"]),
            target=data.get("target"),
            minimise=bool(data.get("minimise", False)),
            constraints={k: (v[0], v[1]) for k, v in (data.get("constraints") or {}).items()},
            probe=None if data.get("probe") is None else Probe(data["probe"]),
        )


@dataclass(frozen=True)
class OptimisationSettings:
    n_initial: int = 6
    mc_samples: int = 128
    num_restarts: int = 4
    raw_samples: int = 128
    maxiter: int = 60
    refit: RefitPolicy = field(default_factory=RefitPolicy)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimisationSettings:
        values = dict(data)
        values["refit"] = RefitPolicy(**values.get("refit", {}))
        return cls(**values)


def _needs_probe(probe: Probe) -> Requirement:
    def requirement(obs: Observation) -> str | None:
        return (
            None
            if obs.probe is probe
            else f"measured with {obs.probe.value}; this objective uses {probe.value}"
        )

    return requirement


def _needs_positive(feature: str) -> Requirement:
    def requirement(obs: Observation) -> str | None:
        value = obs.features.get(feature, math.nan)
        return (
            None if value > 0 else f"feature {feature!r} = {value!r} is not positive (log distance to target)"
        )

    return requirement


class OptimisationAgent(AgentBase):
    """Finds the composition that best meets an `Objective`, with noisy log-EI."""

    name = "optimisation"

    def __init__(
        self,
        region: FeasibleRegion,
        objective: Objective,
        *,
        stations: Mapping[str, Probe] | None = None,
        scans: Mapping[str, ScanParameters] | None = None,
        seed: int = 0,
        settings: OptimisationSettings | None = None,
    ) -> None:
        requirements: list[Requirement] = [needs_feature(f) for f in objective.features]
        if objective.target is not None:
            requirements.append(_needs_positive(objective.feature))
        if objective.probe is not None:
            requirements.insert(0, _needs_probe(Probe(objective.probe)))
        super().__init__(region, stations=stations, scans=scans, seed=seed, requirements=requirements)
        self.objective = objective
        self.settings = settings or OptimisationSettings()
        self.gp = IncrementalGP(region.dim, learned_noise=True, policy=self.settings.refit, seed=seed)
        self._loc = np.zeros(len(objective.features))
        self._scale = np.ones(len(objective.features))

    # -- data ---------------------------------------------------------------------------------

    def raw_outputs(self, observations: Sequence[Observation]) -> np.ndarray:
        """``n x k``: the objective score, then each constrained feature."""
        rows = [
            [self.objective.score(o.features[self.objective.feature])]
            + [o.features[f] for f in self.objective.constraints]
            for o in observations
        ]
        return np.array(rows, dtype=np.float64).reshape(-1, len(self.objective.features))

    def _standardised(self, raw: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((raw - self._loc) / self._scale, dtype=DTYPE)

    def _restandardise(self) -> None:
        raw = self.raw_outputs(self.observations)
        self._loc = raw.mean(0)
        std = raw.std(0)
        self._scale = np.where(std > 1e-12, std, 1.0)
        x = torch.as_tensor(self.observed_unit(), dtype=DTYPE)
        self.gp.replace_outputs(x, self._standardised(raw))

    def _admitted(self, observations: list[Observation]) -> None:
        if self.gp.hyperparameters is None:
            self._restandardise()
            return
        x = torch.as_tensor(self.unit_points(o.composition for o in observations), dtype=DTYPE)
        self.gp.add(x, self._standardised(self.raw_outputs(observations)))

    def _model(self) -> CachedGP:
        if self.gp.needs_refit():
            # the standardisation is refreshed with each refit and frozen in between, so that
            # conditioning on new rows stays consistent with the cached factor
            self._restandardise()
        return self.gp.model()

    @property
    def best(self) -> Observation | None:
        """The best feasible measured observation so far."""
        best, best_score = None, -math.inf
        for o in self.observations:
            if not self._meets_constraints(o):
                continue
            score = self.objective.score(o.features[self.objective.feature])
            if score > best_score:
                best, best_score = o, score
        return best

    def _meets_constraints(self, o: Observation) -> bool:
        for name, (lo, hi) in self.objective.constraints.items():
            v = o.features[name]
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                return False
        return True

    # -- decisions ----------------------------------------------------------------------------

    def acquisition(self, model: CachedGP, pending_u: np.ndarray) -> qLogNoisyExpectedImprovement:
        constraints: list[Callable[[torch.Tensor], torch.Tensor]] = []
        for i, (lo, hi) in enumerate(self.objective.constraints.values(), start=1):
            loc, scale = float(self._loc[i]), float(self._scale[i])
            # BoTorch's convention: a constraint callable is feasible where it is <= 0
            if hi is not None:
                constraints.append(_bound(i, (hi - loc) / scale, upper=True))
            if lo is not None:
                constraints.append(_bound(i, (lo - loc) / scale, upper=False))
        return qLogNoisyExpectedImprovement(
            model=model,
            X_baseline=torch.as_tensor(self.observed_unit(), dtype=DTYPE),
            sampler=SobolQMCNormalSampler(torch.Size([self.settings.mc_samples]), seed=self.seed),
            objective=GenericMCObjective(_first_output),
            constraints=constraints or None,
            X_pending=torch.as_tensor(pending_u, dtype=DTYPE) if len(pending_u) else None,
            prune_baseline=True,
            cache_root=False,
        )

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        if len(self.observations) < self.settings.n_initial:
            cands = self.region.sobol(512, seed=rng_seed).numpy()
            taken = np.concatenate([self.observed_unit(), pending_u])
            scores = maximin_ranking(cands, taken)
            return Proposal(
                [Candidate(c, float(s)) for c, s in zip(cands, scores, strict=True)],
                "maximin_distance",
                model={"kind": "initial_design"},
            )
        t0 = time.perf_counter()
        model = self._model()
        event = dict(self.gp.last_event)
        t1 = time.perf_counter()
        acqf = self.acquisition(model, pending_u)
        ranked = optimise_candidates(acqf, self.region, self.settings, seed=rng_seed)
        t2 = time.perf_counter()
        assert self.gp.hyperparameters is not None
        return Proposal(
            ranked,
            "qLogNoisyExpectedImprovement",
            model={
                "kind": "gp_regression",
                "objective": self.objective.to_dict(),
                "standardisation": {"loc": self._loc.tolist(), "scale": self._scale.tolist()},
                "n_train": model.num_train,
                "hyperparameters": self.gp.hyperparameters.to_dict(),
                "n_at_fit": self.gp.n_at_fit,
                **{k: v for k, v in event.items() if not k.endswith("_s")},
            },
            timing_s={"model": t1 - t0, "acquisition": t2 - t1},
        )

    def predict(self, compositions: np.ndarray | Sequence[Mapping[str, float]]) -> Prediction:
        """Mean and std of the objective score (in its own units) at `compositions`."""
        x = as_fraction_array(self.region, compositions)
        if not self.observations:
            nan = np.full(len(x), np.nan)
            return Prediction(self.region.names, x, mean=nan, std=nan)
        with torch.no_grad(), compute_threads(len(self.observations)):
            mean, var = self._model().mean_and_variance(self.region.to_unit(x))
        loc, scale = float(self._loc[0]), float(self._scale[0])
        return Prediction(
            self.region.names,
            x,
            mean=mean[:, 0].numpy() * scale + loc,
            std=var[:, 0].sqrt().numpy() * scale,
        )

    # -- state --------------------------------------------------------------------------------

    def _model_state(self) -> dict[str, Any]:
        return {
            "objective": self.objective.to_dict(),
            "settings": self.settings.to_dict(),
            "gp": self.gp.state(),
            "loc": self._loc.tolist(),
            "scale": self._scale.tolist(),
        }

    def _restore_model_state(self, state: Mapping[str, Any]) -> None:
        self.gp.restore(state.get("gp") or {})
        self._loc = np.asarray(state.get("loc", self._loc), dtype=np.float64)
        self._scale = np.asarray(state.get("scale", self._scale), dtype=np.float64)

    @classmethod
    def _construct(
        cls, region: FeasibleRegion, state: Mapping[str, Any], model_state: Mapping[str, Any]
    ) -> Self:
        objective = Objective.from_dict(model_state["objective"])
        settings = OptimisationSettings.from_dict(model_state.get("settings", {}))
        return cls(region, objective, **common_arguments(state), settings=settings)


def _first_output(samples: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:  # noqa: N803 - BoTorch names
    """The objective score is the model's first output; the others are constrained features."""
    return samples[..., 0]


def _bound(output: int, threshold: float, *, upper: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """An outcome constraint on a standardised output, <= 0 where it holds."""

    def constraint(samples: torch.Tensor) -> torch.Tensor:
        z = samples[..., output]
        return z - threshold if upper else threshold - z

    return constraint
