"""Timing of the digital twin: ground truth, I(q) per model, detector frames.

Run: SAS_DLL_PATH=.venv/sasmodels-kernels .venv/bin/python bench/bench_twin.py
Prints the median of repeated calls after a warm-up (kernels compiled and cached).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from tandem.sim.detector_image import simulate_frame
from tandem.sim.instruments import SANS_INSTRUMENT, SAXS_INSTRUMENT
from tandem.sim.scattering import instrument_intensity
from tandem.sim.systems import DEFAULT_SYSTEM, default_system

REPRESENTATIVE = {
    "spherical_micelles": {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.0},
    "elongated_micelles": {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.03},
    "lamellar": {"SDS": 0.145, "PPG": 0.0, "NaCl": 0.0},
    "polymer_solution": {"SDS": 0.0, "PPG": 0.04, "NaCl": 0.0},
    "polymer_clusters": {"SDS": 0.0, "PPG": 0.09, "NaCl": 0.0},
}


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    one_point = median_ms(partial(default_system, {"SDS": 0.05}, "xray"), 200)
    print(f"truth, one point:              {one_point:8.3f} ms")
    grid = np.random.default_rng(0).uniform([0, 0, 0], [0.15, 0.10, 0.05], size=(10_000, 3))
    evaluate = partial(DEFAULT_SYSTEM.evaluate, grid[:, 0], grid[:, 1], grid[:, 2], "neutron")
    print(f"truth, 10^4-point grid:        {median_ms(evaluate, 10):8.3f} ms")
    q = np.geomspace(0.004, 0.4, 200)
    for phase, composition in REPRESENTATIVE.items():
        for instrument in (SAXS_INSTRUMENT, SANS_INSTRUMENT):
            point = default_system(composition, instrument.probe)
            ms = median_ms(partial(instrument_intensity, point, q, instrument), 50)
            print(f"I(q) 200 pts, smeared, {instrument.station} {phase:20s} {ms:8.3f} ms")
    rng = np.random.default_rng(1)
    for instrument, exposure in ((SAXS_INSTRUMENT, 1.0), (SANS_INSTRUMENT, 600.0)):
        composition = REPRESENTATIVE["spherical_micelles"]
        point = default_system(composition, instrument.probe)
        shape = instrument.configuration().geometry.shape
        ms = median_ms(partial(simulate_frame, instrument, None, composition, point, exposure, rng), 10)
        print(f"frame {instrument.station} {shape[0]}x{shape[1]}:       {ms:8.1f} ms")


if __name__ == "__main__":
    main()
