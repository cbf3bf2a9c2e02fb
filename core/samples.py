"""Samples: one physical mixture, from the agent's target to where it is now."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from tandem.composition import Composition
from tandem.errors import InvalidCompositionError


class SampleState(StrEnum):
    PLANNED = "planned"  # a target; nothing has been pipetted
    PREPARED = "prepared"  # mixed in a well on the deck
    LOADED = "loaded"  # in the measurement cell
    MEASURED = "measured"
    DISCARDED = "discarded"  # rinsed out of the cell, gone to waste
    FAILED = "failed"


@dataclass(frozen=True)
class Sample:
    """A sample of a campaign.

    `target` is what was asked for; `realized` is what the robot actually made,
    pipetting errors included (None until it has been prepared). `location` says
    where it is, as `station/place` (for example `saxs/deck/B2`, `saxs/cell`).
    Samples are values: a step that moves or fills one returns a new `Sample`.
    """

    uid: str
    campaign_id: str
    target: Composition
    realized: Composition | None = None
    location: str = "planned"
    state: SampleState = SampleState.PLANNED

    @classmethod
    def new(cls, campaign_id: str, target: Composition) -> Sample:
        if not campaign_id:
            raise InvalidCompositionError("a sample belongs to a campaign: campaign_id must not be empty")
        return cls(uid=str(uuid.uuid4()), campaign_id=campaign_id, target=target)

    def moved(self, location: str, state: SampleState) -> Sample:
        return replace(self, location=location, state=state)

    def prepared(self, realized: Composition, location: str) -> Sample:
        return replace(self, realized=realized, location=location, state=SampleState.PREPARED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_uid": self.uid,
            "campaign_id": self.campaign_id,
            "target": self.target.to_dict(),
            "realized": None if self.realized is None else self.realized.to_dict(),
            "location": self.location,
            "state": self.state.value,
        }
