"""SAXS or SANS, and how long to count: phase mapping across two probes, per second of beamtime.

The agent's goal is the phase map as the *reference* probe would label it
(`tandem.agents.multi_probe_model`: the model of both probes' labels), bought with as
little station time as possible. It values measuring a composition on a station for
an exposure by the expected drop in the map's uncertainty per second of that station
(`tandem.agents.information_per_second`).

For a given station the agent maximises that over compositions and the
station's exposures; asked with ``station=None`` it also picks the station.
So SAXS screens where its labels carry over to the neutron map, and SANS
time goes where only neutrons can tell, or where the map is uncertain enough
that a precise label is worth minutes. A label only another probe has reported,
where the reference probe has never looked, is looked at first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from tandem.agents.base import Candidate, Proposal, compute_threads, maximin_ranking
from tandem.agents.gp import CachedGP
from tandem.agents.gp_hyperparameters import DTYPE
from tandem.agents.information_per_second import InformationPerSecond
from tandem.agents.multi_probe_model import PROBES, MultiProbeModel
from tandem.agents.phase_mapping import class_probabilities, dirichlet_targets, optimise_candidates
from tandem.agents.protocol import as_fraction_array
from tandem.stations import Probe
from tandem.suggestions import ScanParameters


class MultiProbeAgent(MultiProbeModel):
    """Maps the reference probe's phases with both stations, by information per second."""

    name = "multi_probe"

    # -- acquisition --------------------------------------------------------------------------

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

    # -- routing ------------------------------------------------------------------------------

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


__all__ = [
    "MultiProbeAgent",
]
