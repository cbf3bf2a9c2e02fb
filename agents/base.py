"""What every agent shares: screening, pending points, feasible choice, records, state.

Concrete agents say how they model the data (`_admitted`, `predict`) and how
they rank candidates (`_propose`); `AgentBase` turns a ranking into
suggestions the stocks can make, with a decision record for each.

No sample is wasted on a point already taken: a candidate within `SAME_POINT`
(unit cube, max-norm) of a pending suggestion, or of a composition the target
station's probe has already measured, is passed over (recorded as "already
measured" in the decision's `rejected` list), unless the agent was asked for
replicates (`replicates=True`). The same composition measured by the *other*
probe is not a replicate: the multi-probe agent sends SANS to where SAXS looked.
Every agent, its initial design and the baselines choose through here, so the
rule holds for all of them.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import torch

from tandem.agents.errors import AgentError, AgentStateError, NoFeasibleCandidateError
from tandem.agents.hygiene import Requirement, Screen, Skipped
from tandem.agents.records import DecisionRecord
from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation
from tandem.stations import Probe
from tandem.suggestions import ScanParameters, Suggestion

logger = logging.getLogger(__name__)

#: Two candidates closer than this (in the unit cube) are the same point.
SAME_POINT = 1e-3


@dataclass(frozen=True)
class Candidate:
    """A point of the unit cube with its acquisition value (higher is better)."""

    u: np.ndarray
    value: float
    station: str | None = None
    scan: ScanParameters | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Proposal:
    """An agent's ranked candidates for one decision, plus what to record about it."""

    ranked: list[Candidate]
    acquisition: str
    model: dict[str, Any] = field(default_factory=dict)
    timing_s: dict[str, float] = field(default_factory=dict)


def common_arguments(state: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments every agent's `state()` records: stations, scans and seed."""
    return {
        "stations": {s: Probe(p) for s, p in state.get("stations", {}).items()} or None,
        "scans": {s: ScanParameters.from_dict(v) for s, v in state.get("scans", {}).items()},
        "seed": int(state.get("seed", 0)),
    }


class AgentBase:
    """Shared machinery; subclasses implement `_propose` (and usually `_admitted`, `predict`)."""

    name = "agent"

    def __init__(
        self,
        region: FeasibleRegion,
        *,
        stations: Mapping[str, Probe] | None = None,
        scans: Mapping[str, ScanParameters] | None = None,
        seed: int = 0,
        requirements: Iterable[Requirement] = (),
        replicates: bool = False,
    ) -> None:
        self.region = region
        self.stations: dict[str, Probe] = dict(stations or {"saxs": Probe.XRAY, "sans": Probe.NEUTRON})
        if not self.stations:
            raise AgentError("an agent needs at least one station to suggest for")
        self.scans: dict[str, ScanParameters] = dict(scans or {})
        self.seed = int(seed)
        #: may a suggestion repeat a composition this probe has measured? (pending points: never)
        self.replicates = bool(replicates)
        self.step = 0
        self.observations: list[Observation] = []
        self._screen = Screen(region, requirements)
        self._records: list[DecisionRecord] = []
        #: stations of the pending points handed to `_propose` (same order as `pending_u`)
        self.pending_stations: list[str] = []

    # -- protocol -----------------------------------------------------------------------------

    def tell(self, observations: Iterable[Observation]) -> None:
        admitted = self._screen.admit(observations)
        if admitted:
            self.observations.extend(admitted)
            self._admitted(admitted)

    @property
    def skipped(self) -> list[Skipped]:
        return list(self._screen.skipped)

    @property
    def records(self) -> Sequence[DecisionRecord]:
        return tuple(self._records)

    def suggest(
        self, station: str | None, n: int = 1, pending: Sequence[Suggestion] = ()
    ) -> list[Suggestion]:
        if n < 1:
            raise AgentError(f"ask for at least one suggestion, got n={n}")
        if station is not None and station not in self.stations:
            raise AgentError(f"unknown station {station!r}; this agent suggests for {sorted(self.stations)}")
        out: list[Suggestion] = []
        for _ in range(n):
            out.append(self._decide(station, [*pending, *out]))
        return out

    def state(self) -> dict[str, Any]:
        return {
            "agent": self.name,
            "seed": self.seed,
            "step": self.step,
            "replicates": self.replicates,
            "region": self.region.to_dict(),
            "stations": {s: p.value for s, p in self.stations.items()},
            "scans": {s: scan.to_dict() for s, scan in self.scans.items()},
            "observations": [_used(o) for o in self.observations],
            "skipped": [s.to_dict() for s in self._screen.skipped],
            "model": self._model_state(),
        }

    # -- for subclasses -----------------------------------------------------------------------

    def _admitted(self, observations: list[Observation]) -> None:
        """New observations passed the screen (they are already in `self.observations`)."""

    def _model_state(self) -> dict[str, Any]:
        return {}

    def _restore_model_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of `_model_state`."""

    def _propose(self, station: str | None, pending_u: np.ndarray, rng_seed: int) -> Proposal:
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        region: FeasibleRegion | None = None,
        observations: Sequence[Observation] = (),
    ) -> Self:
        """Rebuild an agent from `state()` and the observations it had been told.

        Pass `region` to keep the campaign's stock check (it is wiring, not state).
        Hyperparameters come from the state, so the rebuilt model equals the
        original one and, with the same seed and step, so does the next suggestion.
        """
        region = region or FeasibleRegion.from_dict(state["region"])
        agent = cls._construct(region, state, state.get("model") or {})
        agent._restore_common(state)
        agent.tell(observations)
        return agent

    @classmethod
    def _construct(
        cls, region: FeasibleRegion, state: Mapping[str, Any], model_state: Mapping[str, Any]
    ) -> Self:
        """A fresh agent with the state's stations, scans and seed; subclasses add their own arguments."""
        return cls(region, **common_arguments(state))

    def _restore_common(self, state: Mapping[str, Any]) -> None:
        if state.get("agent") != self.name:
            raise AgentStateError(
                f"state of agent {state.get('agent')!r} cannot restore a {self.name!r} agent"
            )
        try:
            self.seed = int(state["seed"])
            self.step = int(state["step"])
            # not a constructor argument of every agent, so restored here rather than in `_construct`
            self.replicates = bool(state.get("replicates", False))
            self._restore_model_state(state.get("model") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentStateError(f"malformed agent state: {exc!r}") from None
        self._screen.skipped.extend(
            Skipped(str(s["sample_uid"]), str(s["run_uid"]), str(s["reason"]))
            for s in state.get("skipped", [])
        )

    def decision_seed(self) -> int:
        """The seed of the next decision: fixed by the agent's seed and how many decisions came before."""
        return (self.seed * 1_000_003 + self.step) % (2**31 - 1)

    def scan_for(self, station: str) -> ScanParameters:
        return self.scans.get(station) or ScanParameters(exposure_s=1.0)

    def unit_points(self, compositions: Iterable[Mapping[str, float]]) -> np.ndarray:
        rows = [self.region.to_unit(self.region.vector(c)).numpy() for c in compositions]
        return np.array(rows).reshape(-1, self.region.dim)

    def observed_unit(self) -> np.ndarray:
        return self.unit_points(o.composition for o in self.observations)

    def _pending_unit(self, pending: Sequence[Suggestion]) -> np.ndarray:
        rows = []
        for s in pending:
            fractions = {n: s.target.mass_fraction(n) for n in self.region.names}
            rows.append(self.region.to_unit(self.region.vector(fractions)).numpy())
        return np.array(rows).reshape(-1, self.region.dim)

    def _decide(self, station: str | None, pending: Sequence[Suggestion]) -> Suggestion:
        t0 = time.perf_counter()
        seed = self.decision_seed()
        pending_u = self._pending_unit(pending)
        self.pending_stations = [s.station for s in pending]
        with torch.random.fork_rng(), compute_threads(len(self.observations)):
            torch.manual_seed(seed)
            proposal = self._propose(station, pending_u, seed)
        t_propose = time.perf_counter() - t0
        chosen, runner_up, rejected = self._first_feasible(proposal.ranked, station, pending_u)
        target_station = chosen.station or station or next(iter(self.stations))
        fractions = self.region.from_unit(chosen.u)
        scan = chosen.scan or self.scan_for(target_station)
        decision_uid = str(uuid.uuid4())
        target = self.region.composition(fractions, target_station)
        self.step += 1
        timing = {**proposal.timing_s, "propose": t_propose, "total": time.perf_counter() - t0}
        record = DecisionRecord(
            decision_uid=decision_uid,
            agent=self.name,
            step=self.step - 1,
            station=target_station,
            target=dict(zip(self.region.names, map(float, fractions), strict=True)),
            scan=scan.to_dict(),
            seed=seed,
            used=[_used(o) for o in self.observations],
            pending=[s.decision_uid for s in pending],
            acquisition={
                "name": proposal.acquisition,
                "chosen": chosen.value,
                "runner_up": None if runner_up is None else runner_up.value,
                "runner_up_target": None
                if runner_up is None
                else dict(
                    zip(self.region.names, map(float, self.region.from_unit(runner_up.u)), strict=True)
                ),
                "chosen_extras": dict(chosen.extras),
                "rejected": rejected,
            },
            model=proposal.model,
            timing_s=timing,
            # the observations are listed once, under `used`
            agent_state={k: v for k, v in self.state().items() if k != "observations"},
        )
        self._records.append(record)
        return Suggestion(
            station=target_station,
            target=target,
            scan=scan,
            agent=self.name,
            decision_uid=decision_uid,
            model_state={"step": record.step, "acquisition": proposal.acquisition, "value": chosen.value},
        )

    def _first_feasible(
        self, ranked: Sequence[Candidate], station: str | None, pending_u: np.ndarray
    ) -> tuple[Candidate, Candidate | None, list[dict[str, Any]]]:
        """The best candidate the stocks can make (and the next distinct one), skipping pending points
        and, unless replicates are asked for, points the target station's probe has measured.

        When every ranked candidate is taken, fresh Sobol points farthest from everything taken
        are tried, so that an agent whose acquisition keeps peaking on measured points still
        suggests something new.
        """
        measured = self._measured_by_probe()
        rejected: list[dict[str, Any]] = []
        found, taken = self._scan(ranked, station, pending_u, measured, rejected)
        if found is None and taken:
            found, _ = self._scan(self._fresh(pending_u, measured), station, pending_u, measured, rejected)
        if found is None:
            raise NoFeasibleCandidateError(
                f"none of the {len(ranked)} candidates can be made"
                + (f" (first reason: {rejected[0]['reason']})" if rejected else "")
                + ("" if self.replicates else "; for replicates of measured points set replicates")
            )
        chosen, runner_up = found
        return chosen, runner_up, rejected

    def _scan(
        self,
        ranked: Sequence[Candidate],
        station: str | None,
        pending_u: np.ndarray,
        measured: Mapping[Probe, np.ndarray],
        rejected: list[dict[str, Any]],
    ) -> tuple[tuple[Candidate, Candidate | None] | None, int]:
        """The best usable candidate of `ranked` and the next distinct one (reasons into `rejected`),
        and how many candidates were passed over as measured or pending."""
        chosen: Candidate | None = None
        taken = 0
        for raw in sorted(ranked, key=lambda c: -c.value):
            u = np.clip(raw.u, 0.0, 1.0)
            cand = Candidate(u, raw.value, raw.station, raw.scan, raw.extras)
            if chosen is not None:
                if np.max(np.abs(u - chosen.u)) > SAME_POINT:
                    return (chosen, cand), taken
                continue
            if _near(u, pending_u):
                taken += 1
                continue
            where = cand.station or station or next(iter(self.stations))
            if not self.replicates and _near(u, measured.get(self.stations[where], _NONE)):
                taken += 1
                reason: str | None = ALREADY_MEASURED
            else:
                reason = self.region.why_infeasible(self.region.from_unit(u), where)
            if reason is not None:
                if len(rejected) < MAX_REJECTED_RECORDED:
                    rejected.append({"value": cand.value, "reason": reason})
                logger.info("%s: candidate rejected (%s)", self.name, reason)
                continue
            chosen = cand
        return (None if chosen is None else (chosen, None)), taken

    def _measured_by_probe(self) -> dict[Probe, np.ndarray]:
        """Unit-cube points each probe has measured."""
        out: dict[Probe, np.ndarray] = {}
        for probe in set(self.stations.values()):
            mine = [o.composition for o in self.observations if o.probe is probe]
            out[probe] = self.unit_points(mine)
        return out

    def _fresh(self, pending_u: np.ndarray, measured: Mapping[Probe, np.ndarray]) -> list[Candidate]:
        """Sobol points of the region ranked by their distance from everything measured or pending."""
        points = self.region.sobol(FALLBACK_CANDIDATES, seed=self.decision_seed()).numpy()
        taken = np.concatenate([pending_u.reshape(-1, self.region.dim), *measured.values()])
        scores = maximin_ranking(points, taken)
        return [Candidate(p, float(v)) for p, v in zip(points, scores, strict=True)]


#: The reason a candidate is passed over when its probe has measured that composition already.
ALREADY_MEASURED = "already measured"
#: Rejected candidates a decision record lists (the rest are only logged).
MAX_REJECTED_RECORDED = 20
#: Sobol points tried when every ranked candidate has been measured already.
FALLBACK_CANDIDATES = 256
_NONE = np.zeros((0, 0))


def _near(u: np.ndarray, points: np.ndarray) -> bool:
    """Is `u` within `SAME_POINT` (max-norm) of any of `points`?"""
    return bool(len(points)) and float(np.min(np.max(np.abs(points - u), axis=1))) <= SAME_POINT


#: Torch threads for a decision. One: the solves of a decision are many and memory-bound, and
#: extra threads mostly contend (measured on 2 cores: 4.2 s with one thread against 33 s with two
#: at 3,000 observations while other work ran; bench/README.md).
DECISION_THREADS = 1


@contextlib.contextmanager
def compute_threads(n_observations: int) -> Iterator[None]:
    """Run a decision on `DECISION_THREADS` torch threads, then restore the setting."""
    before = torch.get_num_threads()
    if n_observations >= 0:
        torch.set_num_threads(DECISION_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _used(obs: Observation) -> dict[str, str]:
    return {"sample_uid": obs.sample_uid, "run_uid": obs.run_uid, "probe": obs.probe.value}


def maximin_ranking(candidates_u: np.ndarray, taken_u: np.ndarray) -> np.ndarray:
    """Score each candidate by its distance to the nearest taken point (larger: fills a bigger gap)."""
    if len(taken_u) == 0:
        # nothing taken yet: prefer the middle of the space, deterministically
        return -np.max(np.abs(candidates_u - 0.5), axis=1)
    d = np.sqrt(((candidates_u[:, None, :] - taken_u[None, :, :]) ** 2).sum(-1))
    return np.asarray(d.min(axis=1))
