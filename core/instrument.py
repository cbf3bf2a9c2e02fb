"""What a campaign needs to know of a station's instrument: `InstrumentFacts`, a Protocol.

A campaign file names each station's instrument; loading it checks the station's
probe, solvent, detector configurations, exposures and temperature against these
facts, and the agents price a measurement from its time costs. Who supplies them
is not the campaign's business: the digital twin's `tandem.sim.instruments.Instrument`
satisfies this Protocol, and so does an instrument profile's `tandem.instrument_profile.ProfileFacts`
(a real station's, or a campaign's inline one).
`load_campaign` takes a mapping of them by name (`tandem.campaign.twin` chooses the
twin's when none is given).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, Self, runtime_checkable

from tandem.components import Component, Components
from tandem.stations import Probe


@runtime_checkable
class TimeCostFacts(Protocol):
    """Station time each action takes, in seconds: what an agent prices a measurement with."""

    @property
    def sample_load_s(self) -> float: ...
    @property
    def transmission_s(self) -> float: ...
    @property
    def readout_s(self) -> float: ...
    @property
    def shutter_s(self) -> float: ...


@runtime_checkable
class InstrumentFacts(Protocol):
    """A station's instrument as a campaign sees it: probe, solvent, configurations, limits, time costs."""

    @property
    def station(self) -> str:
        """The instrument's name (the station it serves)."""
        ...

    @property
    def probe(self) -> Probe: ...

    @property
    def solvent(self) -> Component:
        """The solvent a station uses unless its campaign entry names another."""
        ...

    @property
    def configurations(self) -> Collection[str]:
        """The names of its detector configurations."""
        ...

    @property
    def default_configuration(self) -> str: ...

    @property
    def exposure_limits_s(self) -> tuple[float, float]: ...

    @property
    def temperature_limits_c(self) -> tuple[float, float]: ...

    @property
    def time_costs(self) -> TimeCostFacts: ...

    def for_campaign(self, components: Components, solvent: Component) -> Self:
        """This instrument for a campaign's components, `solvent` taking the rest of every sample.

        An instrument that needs nothing of the campaign's components returns itself.
        """
        ...


__all__ = ["InstrumentFacts", "TimeCostFacts"]
