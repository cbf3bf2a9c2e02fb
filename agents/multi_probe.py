"""SAXS or SANS, and how long to count: phase mapping across two probes, per second of beamtime.

The two stations see the same composition through different contrast: X-rays
cannot tell some phases apart that neutrons can (in the twin, PPG is invisible
to X-rays, so the polymer-solution / polymer-cluster boundary is neutron-only),
and the analysis labels what each probe can tell. The agent's goal is the phase
map as the *reference* probe (by default neutrons, the one that sees most)
would label it, bought with as little station time as possible.

Model: one Dirichlet-GP latent per phase label (labels of both probes), each an
intrinsic-coregionalisation multi-task GP over (composition, probe) — the
kernel of BoTorch's `MultiTaskGP`: ``k((x, s), (x', t)) = k_M52(x, x') B[s, t]``.
Where both probes label a phase alike the fitted task correlation is high and
cheap SAXS results inform the neutron map; where they do not (a neutron-only
distinction) it is low, and only SANS results move the neutron map there.

Acquisition (information per second): at a composition ``x``

* ``U(x)`` is the BALD of the reference-probe label: how much the map still
  stands to learn there;
* one measurement with probe ``t`` and exposure ``e`` shrinks each class'
  reference latent variance ``v_c`` by ``cov(f_c^ref, f_c^t)² / (var f_c^t + σ²_c(e))``,
  where ``σ²_c(e)`` is the Dirichlet noise of the label expected there, inflated by
  counting noise ``(1 + e_ref / e)`` at short exposures; ``U_t(x, e)`` is the BALD
  left with those variances (the means move too, but by zero on average);
* the value of measuring ``x`` on station ``t`` for ``e`` seconds is
  ``(U(x) - U_t(x, e)) / (overhead_t + e)``: the expected drop in the map's
  uncertainty per second. Informing classes that are not in doubt at ``x`` buys
  nothing, so SAXS results that only rule out micelles do not count at the
  neutron-only polymer boundary.

For a given station the agent maximises that over compositions and the
station's exposures; asked with ``station=None`` it also picks the station.
So SAXS screens where its labels carry over to the neutron map, and SANS
time goes where only neutrons can tell, or where the map is uncertain enough
that a precise label is worth minutes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Self

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.sampling.qmc import NormalQMCEngine
from botorch.utils.transforms import t_batch_mode_transform

from tandem.agents.base import (
    AgentBase,
    Candidate,
    Proposal,
    compute_threads,
    maximin_ranking,
)
from tandem.agents.errors import AgentError
from tandem.agents.gp import DTYPE, CachedGP, KernelHyperparameters
from tandem.agents.hygiene import needs_label
from tandem.agents.modelling import IncrementalGP, RefitPolicy
from tandem.agents.phase_mapping import (
    bald,
    class_probabilities,
    dirichlet_targets,
    optimise_candidates,
    relabelled,
)
from tandem.agents.protocol import Prediction, as_fraction_array
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe
from tandem.suggestions import ScanParameters

PROBES: tuple[Probe, ...] = (Probe.XRAY, Probe.NEUTRON)


@dataclass(frozen=True)
class StationCost:
    """What a measurement costs on one station, in station seconds.

    `overhead_s` is everything but the exposure (load, transmission, readout,
    rinse); `exposures_s` are the exposures the agent may choose from;
    `reference_exposure_s` is the exposure at which counting noise on a label
    is as large as the label's own ambiguity (shorter: noisier labels).
    `relative_price` weighs a second of this station against the others' (a
    facility may price SANS hours above SAXS hours beyond their length).
    The campaign fills these from the instrument models.
    """

    station: str
    probe: Probe
    overhead_s: float
    exposures_s: tuple[float, ...]
    reference_exposure_s: float
    configuration: str = "default"
    relative_price: float = 1.0

    def __post_init__(self) -> None:
        if not self.exposures_s or any(not (e > 0) for e in self.exposures_s):
            raise AgentError(
                f"station {self.station!r}: exposures must be positive seconds, got {self.exposures_s}"
            )
        if not (self.relative_price > 0):
            raise AgentError(
                f"station {self.station!r}: relative price must be > 0, got {self.relative_price!r}"
            )
        if not (self.overhead_s >= 0 and self.reference_exposure_s > 0):
            raise AgentError(
                f"station {self.station!r}: overhead must be >= 0 s and the reference exposure > 0 s, "
                f"got {self.overhead_s!r}, {self.reference_exposure_s!r}"
            )
        object.__setattr__(self, "probe", Probe(self.probe))
        object.__setattr__(self, "exposures_s", tuple(sorted(float(e) for e in self.exposures_s)))

    def cost_s(self, exposure_s: float) -> float:
        """Station seconds of one measurement (overhead plus exposure)."""
        return self.overhead_s + exposure_s

    def price(self, exposure_s: float) -> float:
        """What the agent divides information by: station seconds times the relative price."""
        return self.cost_s(exposure_s) * self.relative_price

    def noise_factor(self, exposure_s: float) -> float:
        """How much counting noise inflates a label's noise variance at `exposure_s`."""
        return 1.0 + self.reference_exposure_s / exposure_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "probe": self.probe.value, "exposures_s": list(self.exposures_s)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StationCost:
        return cls(**{**data, "probe": Probe(data["probe"]), "exposures_s": tuple(data["exposures_s"])})


@dataclass(frozen=True)
class MultiProbeSettings:
    n_initial: int = 6
    alpha_epsilon: float = 0.05
    mc_samples: int = 64
    num_restarts: int = 4
    raw_samples: int = 128
    maxiter: int = 60
    #: assumed correlation between the probes' views of a label only one probe has reported
    unseen_task_correlation: float = 0.5
    #: the probe whose labels define the phase map
    reference_probe: Probe = Probe.NEUTRON
    #: hyperparameter fitting; the lengthscale prior's median is 0.6 of the box (see `RefitPolicy`)
    refit: RefitPolicy = field(default_factory=lambda: RefitPolicy(lengthscale_prior_median=0.6))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reference_probe": Probe(self.reference_probe).value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultiProbeSettings:
        values = dict(data)
        # fields a partial "refit" leaves out keep this agent's defaults (not RefitPolicy's)
        values["refit"] = RefitPolicy(**{**asdict(cls().refit), **values.get("refit", {})})
        if "reference_probe" in values:
            values["reference_probe"] = Probe(values["reference_probe"])
        return cls(**values)


class InformationPerSecond(AcquisitionFunction):
    """``max_e U(x) r_t(x, e) / cost_t(e)`` for one station (q = 1)."""

    def __init__(
        self,
        model: CachedGP,
        base_samples: torch.Tensor,
        *,
        reference_task: int,
        task: int,
        cost: StationCost,
        hit_noise: float,
        miss_noise: float,
    ) -> None:
        super().__init__(model=model)
        self.base_samples = base_samples
        self.reference_task = reference_task
        self.task = task
        self.cost = cost
        self.hit_noise = hit_noise
        self.miss_noise = miss_noise

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per exposure: ``value`` (``b x E``), and the ``bald`` and ``share`` behind it."""
        model: CachedGP = self.model  # type: ignore[assignment]
        ref = torch.cat([x, torch.full_like(x[..., :1], float(self.reference_task))], -1)
        obs = torch.cat([x, torch.full_like(x[..., :1], float(self.task))], -1)
        mean, cov = model.joint(torch.stack([ref, obs], dim=-2))  # m x b x 2, m x b x 2 x 2
        mean_ref = mean[..., 0].T  # b x m
        var_ref = cov[..., 0, 0].clamp_min(1e-12).T
        u = bald(mean_ref, var_ref, self.base_samples)  # b
        p = class_probabilities(mean[..., 1].T, cov[..., 1, 1].clamp_min(1e-12).T, self.base_samples)
        label_noise = p * self.hit_noise + (1 - p) * self.miss_noise  # b x m
        exposures = torch.as_tensor(self.cost.exposures_s, dtype=DTYPE)
        factors = torch.tensor([self.cost.noise_factor(e) for e in self.cost.exposures_s], dtype=DTYPE)
        noise = label_noise.unsqueeze(-1) * factors  # b x m x E
        cross = cov[..., 0, 1].T.unsqueeze(-1)  # b x m x 1
        var_obs = cov[..., 1, 1].clamp_min(1e-12).T.unsqueeze(-1)
        # latent variance of the reference labels left after the measurement (its mean moves
        # too, but by zero on average): BALD there is what would still be unknown
        var_after = (var_ref.unsqueeze(-1) - cross.pow(2) / (var_obs + noise)).clamp_min(1e-12)
        u_after = torch.stack(
            [bald(mean_ref, var_after[..., e], self.base_samples) for e in range(len(exposures))], -1
        )
        gain = (u.unsqueeze(-1) - u_after).clamp_min(0.0)  # b x E
        costs = (self.cost.overhead_s + exposures) * self.cost.relative_price
        return {"value": gain / costs, "bald": u, "share": gain / u.clamp_min(1e-12).unsqueeze(-1)}

    @t_batch_mode_transform(expected_q=1)  # type: ignore[arg-type]
    def forward(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803 - BoTorch names
        return self.terms(X.squeeze(-2))["value"].max(-1).values


class MultiProbeAgent(AgentBase):
    """Maps the reference probe's phases with both stations, by information per second."""

    name = "multi_probe"

    def __init__(
        self,
        region: FeasibleRegion,
        costs: Sequence[StationCost],
        *,
        seed: int = 0,
        settings: MultiProbeSettings | None = None,
    ) -> None:
        if not costs:
            raise AgentError("the multi-probe agent needs the cost model of at least one station")
        stations = {c.station: c.probe for c in costs}
        scans = {c.station: ScanParameters(c.exposures_s[-1], configuration=c.configuration) for c in costs}
        super().__init__(region, stations=stations, scans=scans, seed=seed, requirements=[needs_label])
        self.costs = {c.station: c for c in costs}
        self.settings = settings or MultiProbeSettings()
        self.labels: list[str] = []
        #: the probes that have reported each label (a label one probe alone reports says nothing
        #: about how the other probe sees those compositions)
        self.seen_by: dict[str, set[Probe]] = {}
        self.gp = IncrementalGP(
            region.dim,
            num_tasks=len(PROBES),
            policy=self.settings.refit,
            seed=seed,
            constrain=self.unidentified_tasks_independent,
        )

    @property
    def reference_task(self) -> int:
        return PROBES.index(Probe(self.settings.reference_probe))

    # -- data ---------------------------------------------------------------------------------

    def _rows(self, observations: Sequence[Observation]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(self.unit_points(o.composition for o in observations), dtype=DTYPE)
        tasks = torch.tensor([[float(PROBES.index(o.probe))] for o in observations], dtype=DTYPE)
        probs = np.array([[_label_vector(o).get(lab, 0.0) for lab in self.labels] for o in observations])
        y, yvar = dirichlet_targets(probs, self.settings.alpha_epsilon)
        return torch.cat([x, tasks.reshape(-1, 1)], -1), y, yvar

    def _admitted(self, observations: list[Observation]) -> None:
        new_labels = sorted({k for o in observations for k in _label_vector(o)} - set(self.labels))
        newly_seen = False
        for o in observations:
            for label, p in _label_vector(o).items():
                if p > 0 and o.probe not in self.seen_by.setdefault(label, set()):
                    self.seen_by[label].add(o.probe)
                    newly_seen = True
        if new_labels:
            self.labels = sorted({*self.labels, *new_labels})
            self.gp.replace_outputs(*self._rows(self.observations))
            return
        self.gp.add(*self._rows(observations))
        if newly_seen:
            # a label now reported by a second probe: its task correlation has become identifiable
            self.gp.request_refit()
        elif self.gp.hyperparameters is not None and not self.gp.needs_refit():
            # a probe may just have looked where a label of the other was reported: no refit, but
            # the fixed correlations of one-probe labels must follow at once
            before = self.gp.hyperparameters.task_covariance
            hp = self.unidentified_tasks_independent(self.gp.hyperparameters)
            after = hp.task_covariance
            if before is not None and after is not None and not np.array_equal(after, before):
                self.gp.use_hyperparameters(hp, self.gp.n_at_fit)

    def relabel(self, labels: Mapping[str, str]) -> int:
        """Learn earlier results anew under the phase names phase finding now gives their runs.

        Which probes reported each label is worked out again from the renamed results; the
        model is refitted on the next decision. Returns how many observations changed name.
        """
        observations, changed = relabelled(self.observations, labels)
        if not changed:
            return 0
        self.observations = observations
        self.labels = sorted({k for o in observations for k in _label_vector(o)})
        self.seen_by = {}
        for o in observations:
            for label, p in _label_vector(o).items():
                if p > 0:
                    self.seen_by.setdefault(label, set()).add(o.probe)
        self.gp.replace_outputs(*self._rows(observations))
        return changed

    def unidentified_tasks_independent(self, hp: KernelHyperparameters) -> KernelHyperparameters:
        """Task covariances of labels reported by one probe only: fixed, not fitted.

        Such a label's cross-probe correlation is not identified by the data: the
        marginal likelihood happily makes it 1 (the X-ray "merged polymer" label
        would then be copied into the neutron map, which would confidently
        predict a label neutrons never report, and the neutron latents there
        would look settled). So it is set, with equal variances for both probes:

        * while the other probe has not looked where the label was reported,
          the correlation is `unseen_task_correlation`: analysis names a phase
          alike at both stations, so a label is likely the same phase to the
          other probe, but it may hide phases only that probe tells apart, so
          the other probe's view stays uncertain enough to be worth a look;
        * once the other probe has looked there and reported something else, the
          label is one probe's alone and the two views are independent.
        """
        if hp.task_covariance is None:
            return hp
        b = hp.task_covariance.copy()
        not_reported = {probe: self.labels_not_reported_by(probe) for probe in PROBES}
        for i, label in enumerate(self.labels[: len(b)]):
            seen = self.seen_by.get(label, set())
            if len(seen) == 1:
                (probe,) = seen
                t = PROBES.index(probe)
                others_looked = any(label in not_reported[p] for p in PROBES if p is not probe)
                rho = 0.0 if others_looked else self.settings.unseen_task_correlation
                b[i] = b[i, t, t] * ((1.0 - rho) * np.eye(b.shape[-1]) + rho)
        return replace(hp, task_covariance=b)

    @property
    def ready(self) -> bool:
        return len(self.labels) >= 2 and len(self.observations) >= self.settings.n_initial

    def base_samples(self) -> torch.Tensor:
        samples = NormalQMCEngine(d=max(len(self.labels), 1), seed=self.seed).draw(
            self.settings.mc_samples, dtype=DTYPE
        )
        assert samples is not None
        return samples

    def _noise_levels(self) -> tuple[float, float]:
        eps = self.settings.alpha_epsilon
        return float(np.log(1.0 / (1.0 + eps) + 1.0)), float(np.log(1.0 / eps + 1.0))

    def acquisition(self, model: CachedGP, station: str) -> InformationPerSecond:
        hit, miss = self._noise_levels()
        cost = self.costs[station]
        return InformationPerSecond(
            model,
            self.base_samples(),
            reference_task=self.reference_task,
            task=PROBES.index(cost.probe),
            cost=cost,
            hit_noise=hit,
            miss_noise=miss,
        )

    # -- decisions ----------------------------------------------------------------------------

    def believer(self, model: CachedGP, pending: Sequence[tuple[np.ndarray, int]]) -> CachedGP:
        """Condition on pending (point, task) pairs with the labels the model believes for them."""
        if not pending:
            return model
        x = torch.as_tensor(np.array([np.append(u, t) for u, t in pending]), dtype=DTYPE)
        mean, var = model.mean_and_variance(x)
        probs = class_probabilities(mean, var, self.base_samples())
        onehot = torch.nn.functional.one_hot(probs.argmax(-1), len(self.labels)).numpy()
        y, yvar = dirichlet_targets(onehot, self.settings.alpha_epsilon)
        return model.condition(x, y, yvar)

    def _reference_station(self, stations: Sequence[str]) -> str | None:
        ref = Probe(self.settings.reference_probe)
        return next((s for s in stations if self.costs[s].probe is ref), None)

    def _labels_looked_at(self, probe: Probe, pending_u: np.ndarray | None = None) -> set[str]:
        """Labels of other probes' observations where `probe` has looked.

        `probe` has looked at a label when one of its observations (or a sample
        pending on one of its stations, from `pending_u`) has, as its nearest
        observation by another probe, one that bears that label.
        """
        u = self.observed_unit()
        mine = np.array([o.probe is probe for o in self.observations], dtype=bool)
        others = np.array([o.label for o, m in zip(self.observations, mine, strict=True) if not m])
        looked_from = u[mine]
        if pending_u is not None and len(pending_u):
            on_probe = np.array([self.stations.get(s) is probe for s in self.pending_stations], dtype=bool)
            looked_from = np.concatenate([looked_from, pending_u[on_probe]])
        if len(others) == 0 or len(looked_from) == 0:
            return set()
        nearest = np.linalg.norm(looked_from[:, None, :] - u[~mine][None, :, :], axis=-1).argmin(-1)
        return {str(lab) for lab in others[nearest]}

    def labels_not_reported_by(self, probe: Probe) -> set[str]:
        """Labels only other probes report, where `probe` has looked and reported something else.

        `probe` does not tell those structures apart the way the other probes do, so its map never
        names them (see `predict`).
        """
        looked = self._labels_looked_at(probe)
        return {
            label for label in self.labels if probe not in self.seen_by.get(label, set()) and label in looked
        }

    def unlooked_labels(self, pending_u: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Labels only other probes reported, where the reference probe has not looked yet.

        Returns each such label with the unit-cube points of the observations that
        bear it (see `_labels_looked_at` for when a probe has looked).
        """
        ref = Probe(self.settings.reference_probe)
        u = self.observed_unit()
        is_ref = np.array([o.probe is ref for o in self.observations], dtype=bool)
        others = np.array([o.label for o, r in zip(self.observations, is_ref, strict=True) if not r])
        if len(others) == 0:
            return {}
        looked = self._labels_looked_at(ref, pending_u)
        other_u = u[~is_ref]
        return {
            label: other_u[others == label]
            for label in self.labels
            if ref not in self.seen_by.get(label, set()) and label not in looked and np.any(others == label)
        }

    def _look_proposal(self, stations: Sequence[str], pending_u: np.ndarray) -> Proposal | None:
        """Send the reference probe to a label it has never looked at, if there is one."""
        station = self._reference_station(stations)
        if station is None:
            return None
        unlooked = self.unlooked_labels(pending_u)
        if not unlooked:
            return None
        u = self.observed_unit()
        labels = np.array([o.label for o in self.observations])
        cost = self.costs[station]
        exposure = min(cost.exposures_s, key=lambda e: abs(e - cost.reference_exposure_s))
        ranked = []
        for label, points in unlooked.items():
            others = u[labels != label]
            # deepest inside the label first: the look should see the phase, not its boundary
            depth = (
                np.linalg.norm(points[:, None, :] - others[None, :, :], axis=-1).min(-1)
                if len(others)
                else np.ones(len(points))
            )
            ranked += [
                Candidate(
                    p,
                    float(d),
                    station=station,
                    scan=ScanParameters(exposure, configuration=cost.configuration),
                    extras={"looks_at": label, "cost_s": cost.cost_s(exposure)},
                )
                for p, d in zip(points, depth, strict=True)
            ]
        return Proposal(
            ranked,
            "look_at_unseen_label",
            model={"kind": "look", "unlooked": sorted(unlooked), "labels": list(self.labels)},
        )

    def _decide_pending(self, pending_u: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """Each pending point with the probe of the station it is queued on (both if unknown)."""
        out = []
        for u, station in zip(pending_u, self.pending_stations, strict=True):
            probe = self.stations.get(station)
            tasks = [PROBES.index(probe)] if probe is not None else range(len(PROBES))
            out += [(u, t) for t in tasks]
        return out

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        stations = [station] if station is not None else list(self.costs)
        if not self.ready:
            cands = self.region.sobol(512, seed=rng_seed).numpy()
            taken = np.concatenate([self.observed_unit(), pending_u])
            scores = maximin_ranking(cands, taken)
            # the initial design screens with the cheapest station unless told otherwise
            cheapest = min(stations, key=lambda s: self.costs[s].cost_s(self.costs[s].exposures_s[0]))
            return Proposal(
                [Candidate(c, float(v), station=cheapest) for c, v in zip(cands, scores, strict=True)],
                "maximin_distance",
                model={"kind": "initial_design"},
            )
        look = self._look_proposal(stations, pending_u)
        if look is not None:
            return look
        t0 = time.perf_counter()
        model = self.gp.model()
        event = dict(self.gp.last_event)
        fantasy = self.believer(model, self._decide_pending(pending_u))
        t1 = time.perf_counter()
        ranked: list[Candidate] = []
        best_per_station: dict[str, float] = {}
        for s in stations:
            acqf = self.acquisition(fantasy, s)
            found = optimise_candidates(acqf, self.region, self.settings, seed=rng_seed)
            with torch.no_grad():
                terms = acqf.terms(torch.as_tensor(np.array([c.u for c in found]), dtype=DTYPE))
            cost = self.costs[s]
            for c, values, u_val, share in zip(
                found, terms["value"], terms["bald"], terms["share"], strict=True
            ):
                best = int(values.argmax())
                exposure = cost.exposures_s[best]
                ranked.append(
                    Candidate(
                        c.u,
                        c.value,
                        station=s,
                        scan=ScanParameters(exposure, configuration=cost.configuration),
                        extras={
                            "bald": float(u_val),
                            "gain_share": float(share[best]),
                            "cost_s": cost.cost_s(exposure),
                        },
                    )
                )
            best_per_station[s] = max(c.value for c in found)
        t2 = time.perf_counter()
        assert self.gp.hyperparameters is not None
        return Proposal(
            ranked,
            "bald_gain_per_second",
            model={
                "kind": "icm_dirichlet_gp",
                "labels": list(self.labels),
                "reference_probe": Probe(self.settings.reference_probe).value,
                "n_train": model.num_train,
                "hyperparameters": self.gp.hyperparameters.to_dict(),
                "n_at_fit": self.gp.n_at_fit,
                "best_value_per_station": best_per_station,
                **{k: v for k, v in event.items() if not k.endswith("_s")},
            },
            timing_s={
                "model": t1 - t0,
                "acquisition": t2 - t1,
                **{k: float(v) for k, v in event.items() if k.endswith("_s")},
            },
        )

    # -- routing and predictions -------------------------------------------------------------

    def station_values(
        self, compositions: np.ndarray | Sequence[Mapping[str, float]]
    ) -> dict[str, np.ndarray]:
        """Best information per second of measuring each composition on each station."""
        x = self.region.to_unit(as_fraction_array(self.region, compositions))
        with torch.no_grad(), compute_threads(len(self.observations)):
            model = self.gp.model()
            return {
                s: self.acquisition(model, s).terms(x)["value"].max(-1).values.numpy() for s in self.costs
            }

    def preferred_station(self, compositions: np.ndarray | Sequence[Mapping[str, float]]) -> list[str]:
        values = self.station_values(compositions)
        names = list(values)
        stacked = np.stack([values[s] for s in names], axis=-1)
        return [names[i] for i in stacked.argmax(-1)]

    def predict(
        self, compositions: np.ndarray | Sequence[Mapping[str, float]], probe: Probe | None = None
    ) -> Prediction:
        """Label probabilities as `probe` (default: the reference probe) would label them."""
        x = as_fraction_array(self.region, compositions)
        if len(self.labels) < 2:
            probs = np.ones((len(x), len(self.labels)))
            return Prediction(self.region.names, x, labels=tuple(self.labels), probabilities=probs)
        probe_ = Probe(probe or self.settings.reference_probe)
        task = PROBES.index(probe_)
        u = self.region.to_unit(x)
        base = self.base_samples()
        chunks = []
        with torch.no_grad(), compute_threads(len(self.observations)):
            model = self.gp.model()
            for start in range(0, len(u), 2048):
                part = u[start : start + 2048]
                part = torch.cat([part, torch.full_like(part[:, :1], float(task))], -1)
                chunks.append(class_probabilities(*model.mean_and_variance(part), base))
        probs = torch.cat(chunks).numpy()
        # a label this probe was seen not to report is not a phase of its map: where the model has
        # no data of this probe, that label's latent sits at its prior mean and could win by default
        absent = [i for i, label in enumerate(self.labels) if label in self.labels_not_reported_by(probe_)]
        if absent and len(absent) < len(self.labels):
            probs[:, absent] = 0.0
            probs /= probs.sum(-1, keepdims=True)
        return Prediction(self.region.names, x, labels=tuple(self.labels), probabilities=probs)

    # -- state --------------------------------------------------------------------------------

    def _model_state(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "seen_by": {label: sorted(p.value for p in probes) for label, probes in self.seen_by.items()},
            "gp": self.gp.state(),
            "settings": self.settings.to_dict(),
            "costs": [c.to_dict() for c in self.costs.values()],
        }

    def _restore_model_state(self, state: Mapping[str, Any]) -> None:
        self.labels = [str(lab) for lab in state.get("labels", [])]
        self.seen_by = {str(k): {Probe(p) for p in v} for k, v in (state.get("seen_by") or {}).items()}
        self.gp.restore(state.get("gp") or {})

    @classmethod
    def _construct(
        cls, region: FeasibleRegion, state: Mapping[str, Any], model_state: Mapping[str, Any]
    ) -> Self:
        costs = [StationCost.from_dict(c) for c in model_state.get("costs", [])]
        settings = MultiProbeSettings.from_dict(model_state.get("settings", {}))
        return cls(region, costs, seed=int(state.get("seed", 0)), settings=settings)


def _label_vector(obs: Observation) -> dict[str, float]:
    if obs.label_probabilities:
        total = sum(obs.label_probabilities.values())
        return {k: v / total for k, v in obs.label_probabilities.items()}
    return {str(obs.label): 1.0}
