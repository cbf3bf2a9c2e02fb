"""The twin's calibrations: what turns its simulated counts into 1/cm, station by station.

A facility measures these (a standard sample, the detector's data sheet, the
empty cell); the twin knows them from its instrument models. `tandem analyze
--sim` and the twin's rigs take them from here; at a real beamline they come
from a calibration file (`tandem analyze --calibration FILE`).
"""

from __future__ import annotations

from tandem.analysis.pipeline_settings import StationCalibration
from tandem.sim.instruments import INSTRUMENTS, Instrument


def twin_calibration(instrument: Instrument) -> StationCalibration:
    """What turns the twin's counts at `instrument` into 1/cm (a facility measures these)."""
    return StationCalibration(
        detector_efficiency=instrument.detector.efficiency,
        open_beam_ratio=instrument.transmission_beam_fraction,
        path_length_mm=instrument.cell.path_length_mm,
        saturation_counts=float(instrument.detector.max_counts),
        empty_cell_transmission=instrument.cell.transmission,
    )


def twin_calibrations() -> dict[str, StationCalibration]:
    """The calibration of each station of the digital twin, from its instrument models."""
    return {station: twin_calibration(instrument) for station, instrument in INSTRUMENTS.items()}


__all__ = ["twin_calibration", "twin_calibrations"]
