"""Baselines with the agent protocol: what a model-based agent must beat.

* `RandomAgent` draws uniformly from the feasible region.
* `SpaceFillingAgent` fills the largest gap: among scrambled-Sobol candidates,
  the one farthest from every measured and pending point (greedy maximin), so
  that any number of samples is spread evenly, across stations.

Neither models the data; both keep the same hygiene, stock checks and decision
records as the model-based agents so benchmarks compare like with like, and both
choose through `AgentBase`, so neither suggests a composition already measured
(by the same probe) or pending unless built with `replicates=True`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from tandem.agents.base import AgentBase, Candidate, Proposal, maximin_ranking
from tandem.agents.protocol import Prediction, as_fraction_array

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
