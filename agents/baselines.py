"""Baselines with the agent protocol: what a model-based agent must beat.

* `RandomAgent` draws uniformly from the feasible region.
* `SpaceFillingAgent` fills the largest gap: among scrambled-Sobol candidates,
  the one farthest from every measured and pending point (greedy maximin), so
  that any number of samples is spread evenly, across stations.

Neither models the data; both keep the same hygiene, stock checks and decision
records as the model-based agents so benchmarks compare like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from tandem.agents.base import AgentBase, Candidate, Proposal, maximin_ranking
from tandem.agents.protocol import Prediction, as_fraction_array
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe
from tandem.suggestions import ScanParameters

#: Candidates scored per decision; the best few hundred are enough in a handful of dimensions.
N_CANDIDATES = 512


class _ModelFree(AgentBase):
    def predict(self, compositions: np.ndarray | Sequence[Mapping[str, float]]) -> Prediction:
        """Nearest-neighbour labels: the label of the closest observation (probability one)."""
        x = as_fraction_array(self.region, compositions)
        labelled = [o for o in self.observations if o.label is not None]
        labels = tuple(sorted({o.label for o in labelled if o.label is not None}))
        probs = np.zeros((len(x), len(labels)))
        if labelled:
            obs_u = self.unit_points(o.composition for o in labelled)
            u = self.region.to_unit(x).numpy()
            nearest = np.argmin(((u[:, None, :] - obs_u[None]) ** 2).sum(-1), axis=1)
            for row, j in enumerate(nearest):
                probs[row, labels.index(str(labelled[j].label))] = 1.0
        return Prediction(self.region.names, x, labels=labels, probabilities=probs)

    def _station(self, station: str | None) -> str:
        return station or next(iter(self.stations))

    @classmethod
    def _build(cls, region: FeasibleRegion, state: Mapping[str, Any]) -> Any:
        agent = cls(
            region,
            stations={s: Probe(p) for s, p in state.get("stations", {}).items()} or None,
            scans={s: ScanParameters.from_dict(v) for s, v in state.get("scans", {}).items()},
            seed=int(state.get("seed", 0)),
        )
        agent._restore_common(state)
        return agent

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        region: FeasibleRegion | None = None,
        observations: Sequence[Observation] = (),
    ) -> Any:
        """Rebuild from `state()` (the region's stock check is wiring: pass `region` to keep it)."""
        agent = cls._build(region or FeasibleRegion.from_dict(state["region"]), state)
        agent.tell(observations)
        return agent


class RandomAgent(_ModelFree):
    """Uniform random sampling of the feasible region."""

    name = "random"

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        rng = np.random.default_rng(rng_seed)
        u = rng.random((4 * N_CANDIDATES, self.region.dim))
        u = u[self.region.inside_unit(torch.as_tensor(u)).numpy()]
        # a random order; values only rank the fallbacks when a point cannot be made
        values = rng.random(len(u))
        return Proposal([Candidate(p, float(v)) for p, v in zip(u, values, strict=True)], "random")


class SpaceFillingAgent(_ModelFree):
    """Greedy maximin over scrambled-Sobol candidates: always fill the largest gap."""

    name = "space_filling"

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        cands = self.region.sobol(N_CANDIDATES, seed=rng_seed).numpy()
        taken = np.concatenate([self.observed_unit(), pending_u]) if len(pending_u) else self.observed_unit()
        scores = maximin_ranking(cands, taken)
        return Proposal(
            [Candidate(c, float(s)) for c, s in zip(cands, scores, strict=True)], "maximin_distance"
        )
