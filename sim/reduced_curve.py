"""One sample measured on the twin and reduced, without a RunEngine or Tiled.

The benches and the analysis tests measure analysis on these curves: the same frames the twin's
detector renders, reduced by the same `reduce_exposure` the pipeline runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from tandem.analysis.curves import Curve
from tandem.analysis.reduction import Exposure, reduce_exposure
from tandem.components import Components
from tandem.sim.calibration import twin_calibration
from tandem.sim.detector_image import simulate_empty_cell_frame, simulate_frame
from tandem.sim.instruments import instrument_for
from tandem.sim.systems import default_system
from tandem.sim.truth import GroundTruth, TruthPoint


def twin_curve(
    station: str,
    composition: Mapping[str, float],
    exposure_s: float,
    configuration: str | None = None,
    seed: int = 0,
    *,
    truth: GroundTruth | None = None,
    components: Components | None = None,
) -> tuple[Curve, TruthPoint]:
    """One sample and its empty cell on the twin's `station`, reduced as the pipeline does, without a
    RunEngine or Tiled: the benches and the analysis tests measure analysis on these.

    `truth` is the system measured (default: the twin's default system) and `components` every
    component it may hold, solvents included (a zoo system's `components`); the station's
    instrument is given them, as a campaign's own components are (default: the instrument's own).
    """
    instrument = instrument_for(station)
    if components is not None:
        instrument = replace(instrument, components=components)
    calibration = twin_calibration(instrument)
    rng = np.random.default_rng(seed)
    point = (truth if truth is not None else default_system)(composition, instrument.probe)
    frames = [
        simulate_frame(instrument, configuration, composition, point, exposure_s, rng),
        simulate_empty_cell_frame(instrument, configuration, exposure_s, rng),
    ]
    sample, cell = (
        Exposure(
            f.counts,
            exposure_s,
            f.monitor_counts * calibration.detector_efficiency,
            f.transmission,
            calibration.saturation_counts,
        )
        for f in frames
    )
    curve = reduce_exposure(
        sample, frames[0].geometry, thickness_mm=calibration.path_length_mm, empty_cell=cell
    )
    return curve, point


__all__ = ["twin_curve"]
