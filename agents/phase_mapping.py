"""Phase mapping: a Dirichlet-GP classifier and an acquisition that seeks phase boundaries.

Model (Milios et al., NeurIPS 2018, "Dirichlet-based Gaussian processes for
large-scale calibrated classification"): a label, or the analysis' label
probabilities ``p``, is read as a draw from a Dirichlet with concentration
``α = α_ε + p``; each class' log-concentration is approximated by a Gaussian
observation with mean ``log α - σ²/2`` and variance ``σ² = log(1/α + 1)``, so
classification becomes one exact GP regression per class with known,
heteroscedastic noise. That is the same transformation as GPyTorch's
`DirichletClassificationLikelihood`; here it feeds `tandem.agents.gp.CachedGP`
so that new labels are conditioned on in O(n²) instead of refitted.

Acquisition: BALD (Houlsby et al. 2011), the mutual information between the
label at ``x`` and the latent class functions, ``H[E p] - E[H p]``, estimated
with fixed quasi-Monte-Carlo samples of the latents (smooth in ``x``, so
BoTorch's gradient optimisers work on it). It is high where the model cannot
yet say which phase a composition is in — at boundaries still poorly located —
and low both deep inside a phase and where labels are just noisy.
It is optimised over the continuous region (bounds and sum cap as a linear
constraint) with `botorch.optim.optimize_acqf`; candidates the stocks cannot
make are replaced by the next best.

Pending samples (queued on any station) and earlier picks of a batch are
handled by *kriging believer* fantasies: the model is conditioned on each
pending point with the label it currently believes there, which shrinks the
uncertainty around it, so two stations do not chase the same boundary point.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, Self

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf
from botorch.optim.initializers import initialize_q_batch
from botorch.sampling.qmc import NormalQMCEngine
from botorch.utils.sampling import manual_seed
from botorch.utils.transforms import t_batch_mode_transform

from tandem.agents.base import (
    AgentBase,
    Candidate,
    Proposal,
    common_arguments,
    compute_threads,
    maximin_ranking,
)
from tandem.agents.gp import CachedGP
from tandem.agents.gp_hyperparameters import DTYPE
from tandem.agents.hygiene import needs_label
from tandem.agents.modelling import IncrementalGP, RefitPolicy
from tandem.agents.protocol import Prediction, as_fraction_array
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe
from tandem.suggestions import ScanParameters


def relabelled(
    observations: Sequence[Observation], labels: Mapping[str, str]
) -> tuple[list[Observation], int]:
    """`observations` with the phase names `labels` gives their runs (run uid → name), and how many changed.

    Phase finding may rename the phases of earlier runs (a merge, a split, a run moved
    across a boundary: `tandem.analysis.phases`); an agent that learns from labels is
    re-told its observations under their new names.
    """
    out: list[Observation] = []
    changed = 0
    for obs in observations:
        name = labels.get(obs.run_uid)
        if name is not None and (obs.label != name or dict(obs.label_probabilities) not in ({}, {name: 1.0})):
            out.append(replace(obs, label=name, label_probabilities={name: 1.0}))
            changed += 1
        else:
            out.append(obs)
    return out, changed


def dirichlet_targets(probabilities: np.ndarray, alpha_epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian targets and noise variances (both ``n x C``) of label probabilities ``n x C``."""
    alpha = alpha_epsilon + torch.as_tensor(probabilities, dtype=DTYPE)
    var = torch.log(1.0 / alpha + 1.0)
    return torch.log(alpha) - var / 2.0, var


def bald(mean: torch.Tensor, var: torch.Tensor, base_samples: torch.Tensor) -> torch.Tensor:
    """BALD ``H[E p] - E[H p]`` at each of ``b`` points from latent means/variances ``b x C``."""
    f = mean.unsqueeze(-2) + var.sqrt().unsqueeze(-2) * base_samples  # b x S x C
    logp = torch.log_softmax(f, dim=-1)
    p = logp.exp()
    pbar = p.mean(-2)
    entropy_of_mean = -(pbar * torch.log(pbar.clamp_min(1e-12))).sum(-1)
    mean_entropy = -(p * logp).sum(-1).mean(-1)
    return entropy_of_mean - mean_entropy


def class_probabilities(mean: torch.Tensor, var: torch.Tensor, base_samples: torch.Tensor) -> torch.Tensor:
    """``E[softmax f]`` (``b x C``) under the latent posterior."""
    f = mean.unsqueeze(-2) + var.sqrt().unsqueeze(-2) * base_samples
    return torch.softmax(f, dim=-1).mean(-2)


class PhaseBoundaryBALD(AcquisitionFunction):
    """BALD of a Dirichlet-GP classifier, for `optimize_acqf` (q = 1; batches are built greedily)."""

    def __init__(self, model: CachedGP, base_samples: torch.Tensor, task: int | None = None) -> None:
        super().__init__(model=model)
        self.base_samples = base_samples
        self.task = task

    @t_batch_mode_transform(expected_q=1)  # type: ignore[arg-type]
    def forward(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803 - BoTorch names
        x = X.squeeze(-2)
        if self.task is not None:
            x = torch.cat([x, torch.full_like(x[..., :1], float(self.task))], dim=-1)
        model: CachedGP = self.model  # type: ignore[assignment]
        mean, var = model.mean_and_variance(x)
        return bald(mean, var, self.base_samples)


@dataclass(frozen=True)
class PhaseMappingSettings:
    #: space-filling samples before the classifier is trusted (it also waits for two phases)
    n_initial: int = 6
    #: Dirichlet prior concentration: smaller trusts each label more
    alpha_epsilon: float = 0.05
    mc_samples: int = 64
    num_restarts: int = 4
    raw_samples: int = 128
    maxiter: int = 60
    #: hyperparameter fitting; the lengthscale prior's median is 0.6 of the box (see `RefitPolicy`)
    refit: RefitPolicy = field(default_factory=lambda: RefitPolicy(lengthscale_prior_median=0.6))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseMappingSettings:
        values = dict(data)
        # fields a partial "refit" leaves out keep this agent's defaults (not RefitPolicy's)
        values["refit"] = RefitPolicy(**{**asdict(cls().refit), **values.get("refit", {})})
        return cls(**values)


class OptimiserSettings(Protocol):
    """How hard `optimise_candidates` searches (every model agent's settings carry these)."""

    @property
    def num_restarts(self) -> int: ...
    @property
    def raw_samples(self) -> int: ...
    @property
    def maxiter(self) -> int: ...


def optimise_candidates(
    acqf: AcquisitionFunction,
    region: FeasibleRegion,
    settings: OptimiserSettings,
    *,
    seed: int,
) -> list[Candidate]:
    """Local optima of `acqf` from `optimize_acqf`, plus the scored raw samples, best first.

    The raw samples are the region's own Sobol points (sum cap respected by
    rejection), scored once: they pick the starting points and are the backups
    when an optimum cannot be made. BoTorch would draw them by hit-and-run under
    a linear constraint — 10,000 burn-in steps, redrawn when every value is
    near zero — which was ~90 % of a decision's time in a capped region.
    """
    raw = region.sobol(settings.raw_samples, seed=seed).unsqueeze(-2)
    with torch.no_grad():
        raw_values = acqf(raw)
    with manual_seed(seed):
        starts, _ = initialize_q_batch(raw, raw_values, n=min(settings.num_restarts, len(raw)))
    x, values = optimize_acqf(
        acqf,
        bounds=region.unit_bounds(),
        q=1,
        num_restarts=len(starts),
        inequality_constraints=region.inequality_constraints() or None,
        batch_initial_conditions=starts,
        options={"maxiter": settings.maxiter, "batch_limit": len(starts)},
        return_best_only=False,
        retry_on_optimization_warning=False,
    )
    assert values is not None  # return_acq_values defaults to True
    cands = [Candidate(x[i, 0].detach().numpy(), float(values[i])) for i in range(x.shape[0])]
    cands += [Candidate(raw[i, 0].numpy(), float(raw_values[i])) for i in range(len(raw))]
    return sorted(cands, key=lambda c: -c.value)


class PhaseMappingAgent(AgentBase):
    """Maps phases over the region with a Dirichlet-GP classifier and BALD."""

    name = "phase_mapping"

    def __init__(
        self,
        region: FeasibleRegion,
        *,
        stations: Mapping[str, Probe] | None = None,
        scans: Mapping[str, ScanParameters] | None = None,
        seed: int = 0,
        settings: PhaseMappingSettings | None = None,
    ) -> None:
        super().__init__(region, stations=stations, scans=scans, seed=seed, requirements=[needs_label])
        self.settings = settings or PhaseMappingSettings()
        self.labels: list[str] = []
        self.gp = IncrementalGP(region.dim, policy=self.settings.refit, seed=seed)
        self._probs = np.zeros((0, 0))

    # -- data ---------------------------------------------------------------------------------

    def _admitted(self, observations: list[Observation]) -> None:
        vectors = [o.label_vector() for o in observations]
        new_labels = sorted({k for v in vectors for k in v} - set(self.labels))
        x_new = torch.as_tensor(self.unit_points(o.composition for o in observations), dtype=DTYPE)
        if new_labels:
            self.labels = sorted({*self.labels, *new_labels})
            all_vectors = [o.label_vector() for o in self.observations]
            self._probs = np.array([[v.get(lab, 0.0) for lab in self.labels] for v in all_vectors])
            y, yvar = dirichlet_targets(self._probs, self.settings.alpha_epsilon)
            self.gp.replace_outputs(torch.as_tensor(self.observed_unit(), dtype=DTYPE), y, yvar)
            return
        probs = np.array([[v.get(lab, 0.0) for lab in self.labels] for v in vectors])
        self._probs = np.concatenate([self._probs.reshape(-1, len(self.labels)), probs])
        y, yvar = dirichlet_targets(probs, self.settings.alpha_epsilon)
        self.gp.add(x_new, y, yvar)

    def relabel(self, labels: Mapping[str, str]) -> int:
        """Learn earlier results anew under the phase names phase finding now gives their runs.

        Returns how many observations changed name; the classifier is refitted on the next decision.
        """
        observations, changed = relabelled(self.observations, labels)
        if not changed:
            return 0
        self.observations = observations
        vectors = [o.label_vector() for o in observations]
        self.labels = sorted({k for v in vectors for k in v})
        self._probs = np.array([[v.get(lab, 0.0) for lab in self.labels] for v in vectors])
        y, yvar = dirichlet_targets(self._probs, self.settings.alpha_epsilon)
        self.gp.replace_outputs(torch.as_tensor(self.observed_unit(), dtype=DTYPE), y, yvar)
        return changed

    @property
    def ready(self) -> bool:
        """Whether the classifier is used (else the agent is still in its space-filling design)."""
        return len(self.labels) >= 2 and len(self.observations) >= self.settings.n_initial

    def base_samples(self) -> torch.Tensor:
        engine = NormalQMCEngine(d=max(len(self.labels), 1), seed=self.seed)
        samples = engine.draw(self.settings.mc_samples, dtype=DTYPE)
        assert samples is not None  # draw returns None only when told to write into `out`
        return samples

    # -- decisions ----------------------------------------------------------------------------

    def believer(self, model: CachedGP, pending_u: np.ndarray) -> CachedGP:
        """`model` conditioned on each pending point with the label it believes there."""
        if len(pending_u) == 0:
            return model
        x = torch.as_tensor(pending_u, dtype=DTYPE)
        mean, var = model.mean_and_variance(x)
        probs = class_probabilities(mean, var, self.base_samples())
        onehot = torch.nn.functional.one_hot(probs.argmax(-1), len(self.labels)).numpy()
        y, yvar = dirichlet_targets(onehot, self.settings.alpha_epsilon)
        return model.condition(x, y, yvar)

    def _initial_design(self, pending_u: np.ndarray, seed: int, why: str) -> Proposal:
        cands = self.region.sobol(512, seed=seed).numpy()
        taken = np.concatenate([self.observed_unit(), pending_u])
        scores = maximin_ranking(cands, taken)
        ranked = [Candidate(c, float(s)) for c, s in zip(cands, scores, strict=True)]
        return Proposal(ranked, "maximin_distance", model={"kind": "initial_design", "why": why})

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        if not self.ready:
            return self._initial_design(
                pending_u,
                rng_seed,
                f"{len(self.observations)} observations, {len(self.labels)} phase(s) so far",
            )
        t0 = time.perf_counter()
        model = self.gp.model()
        event = dict(self.gp.last_event)
        t1 = time.perf_counter()
        fantasy = self.believer(model, pending_u)
        acqf = PhaseBoundaryBALD(fantasy, self.base_samples())
        ranked = optimise_candidates(acqf, self.region, self.settings, seed=rng_seed)
        t2 = time.perf_counter()
        assert self.gp.hyperparameters is not None
        return Proposal(
            ranked,
            "bald",
            model={
                "kind": "dirichlet_gp",
                "labels": list(self.labels),
                "n_train": model.num_train,
                "n_pending_fantasies": len(pending_u),
                "hyperparameters": self.gp.hyperparameters.to_dict(),
                "n_at_fit": self.gp.n_at_fit,
                **{k: v for k, v in event.items() if not k.endswith("_s")},
            },
            timing_s={
                "model": t1 - t0,
                "acquisition": t2 - t1,
                **{k: float(v) for k, v in event.items() if k.endswith("_s")},
            },
        )

    # -- predictions --------------------------------------------------------------------------

    def predict(self, compositions: np.ndarray | Sequence[Mapping[str, float]]) -> Prediction:
        x = as_fraction_array(self.region, compositions)
        if len(self.labels) < 2:
            probs = np.ones((len(x), len(self.labels)))
            return Prediction(self.region.names, x, labels=tuple(self.labels), probabilities=probs)
        base = self.base_samples()
        u = self.region.to_unit(x)
        chunks = []
        entropy = []
        with torch.no_grad(), compute_threads(len(self.observations)):
            model = self.gp.model()
            for start in range(0, len(u), 2048):
                mean, var = model.mean_and_variance(u[start : start + 2048])
                chunks.append(class_probabilities(mean, var, base))
                entropy.append(bald(mean, var, base))
        probs = torch.cat(chunks).numpy()
        return Prediction(
            self.region.names,
            x,
            labels=tuple(self.labels),
            probabilities=probs,
            extras={"bald": torch.cat(entropy).numpy()},
        )

    # -- state --------------------------------------------------------------------------------

    def _model_state(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "gp": self.gp.state(), "settings": self.settings.to_dict()}

    def _restore_model_state(self, state: Mapping[str, Any]) -> None:
        self.labels = [str(lab) for lab in state.get("labels", [])]
        self._probs = np.zeros((0, len(self.labels)))
        self.gp.restore(state.get("gp") or {})

    @classmethod
    def _construct(
        cls, region: FeasibleRegion, state: Mapping[str, Any], model_state: Mapping[str, Any]
    ) -> Self:
        settings = PhaseMappingSettings.from_dict(model_state.get("settings", {}))
        return cls(region, **common_arguments(state), settings=settings)
