"""What the twin knows about one station's hardware, shared by both of its simulated backends.

`StationModel` is that knowledge as a seam: the station's detector set-ups, the
limits of a scan, the time each action takes, and what one exposure delivers
(`Exposure`: the frame and the monitor counts). `TwinStationModel` answers it
from the station's instrument model (`tandem.sim.instruments`) and a ground truth
(`tandem.sim.truth`), with frames from `tandem.sim.detector_image`. The ophyd
backend (`tandem.sim.station_devices`) and the EPICS IOC (`tandem.sim.beamline_ioc`)
both drive their devices through it, so they behave the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tandem.geometry import DetectorGeometry
from tandem.sim.detector_image import simulate_empty_cell_frame, simulate_frame
from tandem.sim.instruments import Instrument, instrument_for
from tandem.sim.truth import GroundTruth, load_truth
from tandem.stations import Probe

#: The ground truth when a configuration names none.
DEFAULT_TRUTH = "tandem.sim.systems:default_system"


@dataclass(frozen=True)
class Exposure:
    """What one exposure delivers: the frame and the gated monitor counts."""

    frame: np.ndarray
    #: counts are floats: a SAXS monitor counts past 2**31 in one exposure
    incident_counts: float
    transmitted_counts: float


class StationModel(Protocol):
    """What the twin knows about one station's hardware: its set-ups, limits, time costs and physics."""

    @property
    def station(self) -> str: ...
    @property
    def probe(self) -> Probe: ...
    @property
    def configurations(self) -> Mapping[str, DetectorGeometry]: ...
    @property
    def default_configuration(self) -> str: ...
    @property
    def exposure_range_s(self) -> tuple[float, float]: ...
    @property
    def temperature_range_c(self) -> tuple[float, float]: ...
    @property
    def shutter_time_s(self) -> float: ...
    @property
    def readout_time_s(self) -> float: ...
    @property
    def temperature_rate_c_per_min(self) -> float: ...
    @property
    def temperature_settle_s(self) -> float: ...
    def move_time_s(self, from_configuration: str, to_configuration: str) -> float: ...
    def expose(
        self,
        configuration: str,
        composition: Mapping[str, float] | None,
        exposure_s: float,
        *,
        shutter_open: bool,
        rng: np.random.Generator,
        temperature_c: float | None = None,
    ) -> Exposure: ...


@dataclass(frozen=True)
class TwinStationModel:
    """A station of the twin: H3's instrument model, frames from `simulate_frame`, one ground truth."""

    instrument: Instrument
    truth: GroundTruth

    @classmethod
    def for_station(cls, station: str, *, truth: str | None = None) -> TwinStationModel:
        """The instrument of `station` ("saxs", "sans"); the ground truth named `module:callable`."""
        return cls(instrument_for(station), load_truth(truth or DEFAULT_TRUTH))

    @property
    def station(self) -> str:
        return self.instrument.station

    @property
    def probe(self) -> Probe:
        return self.instrument.probe

    @property
    def configurations(self) -> Mapping[str, DetectorGeometry]:
        return {name: c.geometry for name, c in self.instrument.configurations.items()}

    @property
    def default_configuration(self) -> str:
        return self.instrument.default_configuration

    @property
    def exposure_range_s(self) -> tuple[float, float]:
        return self.instrument.exposure_limits_s

    @property
    def temperature_range_c(self) -> tuple[float, float]:
        return self.instrument.temperature_limits_c

    @property
    def shutter_time_s(self) -> float:
        return self.instrument.time_costs.shutter_s

    @property
    def readout_time_s(self) -> float:
        return self.instrument.time_costs.readout_s

    @property
    def temperature_rate_c_per_min(self) -> float:
        return self.instrument.time_costs.temperature_rate_c_per_min

    @property
    def temperature_settle_s(self) -> float:
        return self.instrument.time_costs.temperature_settle_s

    def move_time_s(self, from_configuration: str, to_configuration: str) -> float:
        if from_configuration == to_configuration:
            return 0.0
        return self.instrument.time_costs.configuration_change_s

    def expose(
        self,
        configuration: str,
        composition: Mapping[str, float] | None,
        exposure_s: float,
        *,
        shutter_open: bool,
        rng: np.random.Generator,
        temperature_c: float | None = None,
    ) -> Exposure:
        """One exposure of what is in the cell (None: the empty cell); a closed shutter: dark frame."""
        geometry = self.instrument.configuration(configuration).geometry
        if not shutter_open:
            dark = self.instrument.detector.dark_counts_per_s * exposure_s
            return Exposure(rng.poisson(dark, geometry.shape).astype(np.int32), 0.0, 0.0)
        if composition is None:
            frame = simulate_empty_cell_frame(
                self.instrument, configuration, exposure_s, rng, temperature_c=temperature_c
            )
        else:
            # the truth takes every component but the station's solvent, which is the rest; another
            # liquid in the sample (an oil, H2O in a D2O lab) is one of the truth's components
            solvent = self.instrument.solvent.name
            solutes = {n: w for n, w in composition.items() if n != solvent}
            point = self.truth(solutes, self.probe)
            frame = simulate_frame(
                self.instrument, configuration, solutes, point, exposure_s, rng, temperature_c=temperature_c
            )
        incident = float(round(frame.monitor_counts))
        # the beam-stop diode sees the attenuated direct beam: I_T = T · I_0 · (diode fraction)
        transmitted = float(round(frame.transmission * incident * self.instrument.transmission_beam_fraction))
        return Exposure(np.asarray(frame.counts, dtype=np.int32), incident, transmitted)


def station_model(station: str, *, truth: str | None = None) -> StationModel:
    """The twin's model of `station` ("saxs", "sans"), with the ground truth named `module:callable`."""
    return TwinStationModel.for_station(station, truth=truth)
