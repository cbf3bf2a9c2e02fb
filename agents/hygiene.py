"""Observation hygiene: what an agent refuses to learn from, and why.

A model fed a failed analysis, a NaN feature, the same sample twice or a point
outside the region it models learns nonsense quietly. Every observation passes
through a `Screen` first; the ones it rejects are logged with a reason and kept
(as `Skipped`) so the decision records can say what was left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tandem.agents.region import FeasibleRegion
from tandem.observations import Observation

logger = logging.getLogger(__name__)

#: ``requirement(observation) -> None`` if the agent can use it, else why not.
Requirement = Callable[[Observation], "str | None"]


@dataclass(frozen=True)
class Skipped:
    """One observation an agent did not learn from."""

    sample_uid: str
    run_uid: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"sample_uid": self.sample_uid, "run_uid": self.run_uid, "reason": self.reason}


def observation_key(obs: Observation) -> str:
    """What makes two observations the same measurement: one sample seen by one probe."""
    return f"{obs.sample_uid}/{obs.probe.value}"


def needs_label(obs: Observation) -> str | None:
    if obs.label is None and not obs.label_probabilities:
        return "no phase label"
    probs = obs.label_probabilities
    if probs and not all(math.isfinite(p) and p >= 0 for p in probs.values()):
        return f"label probabilities are not finite and non-negative: {dict(probs)}"
    if probs and sum(probs.values()) <= 0:
        return "label probabilities sum to zero"
    return None


def needs_feature(name: str) -> Requirement:
    def requirement(obs: Observation) -> str | None:
        if name not in obs.features:
            return f"no feature {name!r} (has {sorted(obs.features)})"
        value = obs.features[name]
        if not math.isfinite(value):
            return f"feature {name!r} is {value!r}"
        return None

    return requirement


class Screen:
    """Accepts observations an agent may learn from; remembers what it has seen."""

    def __init__(self, region: FeasibleRegion, requirements: Iterable[Requirement] = ()) -> None:
        self.region = region
        self.requirements = tuple(requirements)
        self.seen: set[str] = set()
        self.skipped: list[Skipped] = []

    def why_not(self, obs: Observation) -> str | None:
        if not obs.ok:
            return f"analysis {obs.status.value}: {obs.failure_reason or 'no reason given'}"
        if observation_key(obs) in self.seen:
            return f"duplicate: sample {obs.sample_uid} was already observed with {obs.probe.value}"
        outside = self.region.why_outside(obs.composition)
        if outside is not None:
            return f"composition outside the modelled region: {outside}"
        # NaN in a feature the agent does not use is normal (a micelle has no peak spacing);
        # the agent's requirements say which features must be finite.
        for requirement in self.requirements:
            reason = requirement(obs)
            if reason is not None:
                return reason
        return None

    def admit(self, observations: Iterable[Observation]) -> list[Observation]:
        """The observations that pass, in order; the rest are logged and recorded as skipped."""
        accepted: list[Observation] = []
        for obs in observations:
            reason = self.why_not(obs)
            if reason is None:
                self.seen.add(observation_key(obs))
                accepted.append(obs)
            else:
                logger.warning("skipping observation %s (sample %s): %s", obs.run_uid, obs.sample_uid, reason)
                self.skipped.append(Skipped(obs.sample_uid, obs.run_uid, reason))
        return accepted
