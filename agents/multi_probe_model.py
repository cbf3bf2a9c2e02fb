"""What the multi-probe agent knows: both probes' phase labels in one model, and who saw what.

The two stations see the same composition through different contrast: X-rays
cannot tell some phases apart that neutrons can (in the twin, PPG is invisible
to X-rays, so the polymer-solution / polymer-cluster boundary is neutron-only),
and the analysis labels what each probe can tell. The phase map the agent is
after is the one the *reference* probe (by default neutrons, the one that sees
most) would label.

Model: one Dirichlet-GP latent per phase label (labels of both probes), each an
intrinsic-coregionalisation multi-task GP over (composition, probe) — the
kernel of BoTorch's `MultiTaskGP`: ``k((x, s), (x', t)) = k_M52(x, x') B[s, t]``.
Where both probes label a phase alike the fitted task correlation is high and
cheap SAXS results inform the neutron map; where they do not (a neutron-only
distinction) it is low, and only SANS results move the neutron map there.

`MultiProbeModel` keeps that model, which probe has reported and which has looked
at each label, the map as a probe would label it (`predict`) and the saved state;
`tandem.agents.multi_probe.MultiProbeAgent` adds the decisions on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np
import torch
from botorch.sampling.qmc import NormalQMCEngine

from tandem.agents.base import AgentBase, compute_threads
from tandem.agents.errors import AgentError
from tandem.agents.gp_hyperparameters import DTYPE, KernelHyperparameters
from tandem.agents.hygiene import needs_label
from tandem.agents.information_per_second import StationCost
from tandem.agents.modelling import IncrementalGP
from tandem.agents.phase_mapping import (
    PhaseMappingSettings,
    class_probabilities,
    dirichlet_targets,
    relabelled,
)
from tandem.agents.protocol import Prediction, as_fraction_array
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe
from tandem.suggestions import ScanParameters

PROBES: tuple[Probe, ...] = (Probe.XRAY, Probe.NEUTRON)


@dataclass(frozen=True)
class MultiProbeSettings(PhaseMappingSettings):
    """The phase-mapping agent's settings, and how the probes' views are tied together."""

    #: assumed correlation between the probes' views of a label only one probe has reported
    unseen_task_correlation: float = 0.5
    #: the probe whose labels define the phase map
    reference_probe: Probe = Probe.NEUTRON

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reference_probe": Probe(self.reference_probe).value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultiProbeSettings:
        values = dict(data)
        if "reference_probe" in values:
            values["reference_probe"] = Probe(values["reference_probe"])
        settings = super().from_dict(values)
        assert isinstance(settings, MultiProbeSettings)  # `cls` built it
        return settings


class MultiProbeModel(AgentBase):
    """Every probe's labels in one multi-task Dirichlet GP; the decisions are `MultiProbeAgent`'s."""

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
        probs = np.array([[o.label_vector().get(lab, 0.0) for lab in self.labels] for o in observations])
        y, yvar = dirichlet_targets(probs, self.settings.alpha_epsilon)
        return torch.cat([x, tasks.reshape(-1, 1)], -1), y, yvar

    def _admitted(self, observations: list[Observation]) -> None:
        new_labels = sorted({k for o in observations for k in o.label_vector()} - set(self.labels))
        newly_seen = False
        for o in observations:
            for label, p in o.label_vector().items():
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
        self.labels = sorted({k for o in observations for k in o.label_vector()})
        self.seen_by = {}
        for o in observations:
            for label, p in o.label_vector().items():
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

    # -- which probe has reported, and which has looked at, each label --------------------------

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

    # -- predictions ----------------------------------------------------------------------------

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
