"""Build a station on the backend its configuration names: the one place sim or EPICS is chosen.

This is wiring, so it sits above every part: the EPICS backend comes from
`tandem.devices`, the simulated one from the digital twin. The IPython profile,
the queue-server startup and the campaign runner all build stations here.
"""

from __future__ import annotations

from tandem.devices.station import OphydStationDevices, StationConfig, build_epics_station
from tandem.sim.station_devices import build_sim_station


def build_station(config: StationConfig) -> OphydStationDevices:
    """The station `config` describes, connected, on the backend it names (`epics` or `sim`)."""
    if config.backend == "epics":
        return build_epics_station(config)
    return build_sim_station(config)
