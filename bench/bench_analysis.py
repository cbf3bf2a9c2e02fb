"""Analysis benchmarks: reduction throughput for 1-Mpixel frames, and raw-run-to-analysed-node latency.

    SAS_DLL_PATH=.venv/sasmodels-kernels .venv/bin/python bench/bench_analysis.py [--frames 400] [--runs 5]

1. Reduction: twin SAXS frames (1043 × 981 pixels, 1.02 Mpixel) reduced to I(q) in 1/cm with an empty
   cell and every check (`reduce_exposure`), on 1 thread and on 2; pyFAI's own `integrate1d` on the
   same frames for comparison.
2. Latency: a single-frame SAXS run written to a real embedded Tiled server by the Bluesky Tiled writer;
   the time from its stop document (in-process callback) or from the worker picking it up (worker:
   the run read back from Tiled) to its analysed node being readable from Tiled — curve, features and
   label, fits pending — and to the node being complete with its fits; with and without model fits.
3. Fits alone: CPU seconds per curve for the twin's five phases (one thread, best of 2).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tandem.analysis.features import extract_features
from tandem.analysis.fit_search import FitSettings
from tandem.analysis.fitting import fit_models
from tandem.analysis.integration import integrator_for
from tandem.analysis.pipeline import Analyzer
from tandem.analysis.pipeline_callback import AnalysisCallback
from tandem.analysis.pipeline_settings import AnalysisSettings
from tandem.analysis.reduction import Exposure, reduce_exposure
from tandem.analysis.store import AnalysisStore
from tandem.catalog_layout import raw_runs_node
from tandem.sim.calibration import twin_calibrations
from tandem.sim.detector_image import simulate_empty_cell_frame, simulate_frame
from tandem.sim.instruments import instrument_for
from tandem.sim.reduced_curve import twin_curve
from tandem.sim.systems import default_system
from tandem.tiled_server import EmbeddedTiledServer

MICELLES = {"SDS": 0.084, "PPG": 0.06, "NaCl": 0.0}
#: seconds the callback spent on the last stop document
_TIMING = {"callback_s": float("nan"), "stop_at": float("nan")}


def bench_reduction(n_frames: int) -> None:
    instrument = instrument_for("saxs")
    calibration = twin_calibrations()["saxs"]
    rng = np.random.default_rng(0)
    truth = default_system(MICELLES, instrument.probe)
    frames = [simulate_frame(instrument, None, MICELLES, truth, 10.0, rng) for _ in range(8)]
    cell = simulate_empty_cell_frame(instrument, None, 10.0, rng)
    geometry = frames[0].geometry
    eff = calibration.detector_efficiency

    def exposure(f: object) -> Exposure:
        return Exposure(f.counts, 10.0, f.monitor_counts * eff, f.transmission, calibration.saturation_counts)  # type: ignore[attr-defined]

    samples = [exposure(f) for f in frames]
    empty = exposure(cell)
    t0 = time.perf_counter()
    integrator_for(geometry)
    build_s = time.perf_counter() - t0

    def reduce(i: int) -> None:
        reduce_exposure(samples[i % len(samples)], geometry, thickness_mm=1.5, empty_cell=empty)

    reduce(0)
    pixels = geometry.n_pixels_x * geometry.n_pixels_y
    print(
        f"reduction of {geometry.n_pixels_y}x{geometry.n_pixels_x} frames ({pixels / 1e6:.2f} Mpixel), "
        "each with its empty cell (2 frames integrated per curve):"
    )
    print(f"  integrator build (once per geometry): {build_s * 1e3:.0f} ms")
    for workers in (1, 2):
        t0 = time.perf_counter()
        if workers == 1:
            for i in range(n_frames):
                reduce(i)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(reduce, range(n_frames)))
        dt = time.perf_counter() - t0
        print(
            f"  {workers} thread(s): {n_frames / dt:7.1f} sample frames/s "
            f"({2 * n_frames / dt:7.1f} frames/s integrated, empty cells included)"
        )
    integ = integrator_for(geometry)
    counts = [np.asarray(f.counts, dtype=np.float64) for f in frames]
    n = max(n_frames // 10, 10)
    t0 = time.perf_counter()
    for i in range(n):
        integ.sum_counts(counts[i % len(counts)])
    print(f"  sparse integration alone: {n / (time.perf_counter() - t0):7.1f} frames/s")
    t0 = time.perf_counter()
    for i in range(n):
        integ.pyfai_reference(counts[i % len(counts)])
    print(
        f"  pyFAI integrate1d (no split, CSR, cython), for comparison: "
        f"{n / (time.perf_counter() - t0):7.1f} frames/s"
    )


def _write_run(client: object, campaign_id: str, seed: int, also: AnalysisCallback | None = None) -> str:
    from bluesky_tiled_plugins import TiledWriter
    from event_model import compose_run

    instrument = instrument_for("saxs")
    rng = np.random.default_rng(seed)
    truth = default_system(MICELLES, instrument.probe)
    frame = simulate_frame(instrument, None, MICELLES, truth, 10.0, rng)
    cell = simulate_empty_cell_frame(instrument, None, 10.0, rng)
    md = {
        "plan_name": "sample_plan",
        "station": "saxs",
        "probe": "xray",
        "campaign_id": campaign_id,
        "sample_uid": str(uuid.uuid4()),
        "scan": {
            "exposure_s": 10.0,
            "configuration": frame.configuration,
            "temperature_c": None,
            "n_frames": 1,
        },
        "geometry": frame.geometry.to_dict(),
        "realized": {"mass_fraction": {**MICELLES, "H2O": 1 - sum(MICELLES.values())}},
    }
    tiled_writer = TiledWriter(raw_runs_node(client), batch_size=1)  # type: ignore[arg-type]

    def writer(name: str, doc: object) -> None:
        tiled_writer(name, doc)
        if also is not None:
            t0 = time.perf_counter()
            _TIMING["stop_at"] = t0
            also(name, doc)
            if name == "stop":
                _TIMING["callback_s"] = time.perf_counter() - t0

    bundle = compose_run(metadata=md)
    writer("start", bundle.start_doc)
    for stream, f in (("primary", frame), ("empty_cell", cell)):
        keys = {
            "saxs_detector_image": {"dtype": "array", "shape": list(f.counts.shape), "source": "sim"},
            "saxs_monitor_incident_counts": {"dtype": "number", "shape": [], "source": "sim"},
            "saxs_monitor_transmitted_counts": {"dtype": "number", "shape": [], "source": "sim"},
        }
        desc = bundle.compose_descriptor(name=stream, data_keys=keys)
        writer("descriptor", desc.descriptor_doc)
        data = {
            "saxs_detector_image": f.counts,
            "saxs_monitor_incident_counts": f.monitor_counts,
            "saxs_monitor_transmitted_counts": f.transmission
            * f.monitor_counts
            * instrument.transmission_beam_fraction,
        }
        writer("event", desc.compose_event(data=data, timestamps=dict.fromkeys(data, time.time())))
    writer("stop", bundle.compose_stop(exit_status="success"))
    return str(bundle.start_doc["uid"])


def bench_latency(n_runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedTiledServer(Path(tmp)) as endpoint:
        client = endpoint.connect()
        readable_at: dict[str, float] = {}
        for fit in (True, False):
            store = AnalysisStore(client)

            def readable(record: object, store: AnalysisStore = store) -> None:
                uid = record.run_uid  # type: ignore[attr-defined]
                # what a reader finds: the node with its curve, fits pending
                assert store.get(uid, with_curve=False, pending_fits=True) is not None
                readable_at[uid] = time.perf_counter()

            analyzer = Analyzer(
                client, AnalysisSettings(calibrations=twin_calibrations(), fit=fit), on_readable=readable
            )
            callback = AnalysisCallback(analyzer)
            campaign = f"bench-{uuid.uuid4().hex[:8]}"
            _write_run(client, campaign, 100, also=callback)  # warm-up: kernels, integrator, connections
            times: dict[str, list[float]] = {
                "worker: readable": [],
                "worker: complete": [],
                "in-process: readable": [],
                "in-process: complete": [],
            }
            for i in range(n_runs):
                # the worker's path: the run is in Tiled, read it back, analyse, write
                uid = _write_run(client, campaign, i)
                t0 = time.perf_counter()
                analyzer.analyze(uid)
                assert store.get(uid, with_curve=False) is not None
                done = time.perf_counter()
                times["worker: complete"].append(done - t0)
                times["worker: readable"].append(readable_at.get(uid, done) - t0)
                # the in-process callback's path: from the stop document to the node written
                uid = _write_run(client, campaign, 1000 + i, also=callback)
                assert store.get(uid, with_curve=False) is not None
                times["in-process: complete"].append(_TIMING["callback_s"])
                stop_at = _TIMING["stop_at"]
                times["in-process: readable"].append(
                    readable_at.get(uid, stop_at + _TIMING["callback_s"]) - stop_at
                )
            label = "with model fits" if fit else "without model fits (--no-fit)"
            for path, values in times.items():
                if not fit and path.endswith("readable"):
                    continue  # without fits the node is complete when first readable
                print(
                    f"raw -> analysed, {label}, {path}: median {statistics.median(values):.2f} s, "
                    f"max {max(values):.2f} s ({n_runs} single-frame SAXS runs)"
                )


def bench_fits() -> None:
    phases = {
        "spherical_micelles": MICELLES,
        "elongated_micelles": {"SDS": 0.084, "PPG": 0.06, "NaCl": 0.04},
        "lamellar": {"SDS": 0.137, "PPG": 0.08, "NaCl": 0.04},
        "polymer_solution": {"SDS": 0.031, "PPG": 0.04, "NaCl": 0.01},
        "polymer_clusters": {"SDS": 0.018, "PPG": 0.1, "NaCl": 0.05},
    }
    settings = FitSettings(workers=1)
    print("model fits alone, CPU s per curve (1 thread, best of 2):")
    for phase, composition in phases.items():
        curve, _ = twin_curve("saxs", composition, 10.0)
        features = extract_features(curve)
        fit_models(curve, features, settings)
        cpu = []
        for _ in range(2):
            t0 = time.process_time()
            report = fit_models(curve, features, settings)
            cpu.append(time.process_time() - t0)
        print(f"  {phase:20s} {min(cpu):5.2f} s  best: {report.best.model}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bench_reduction(args.frames)
    bench_fits()
    bench_latency(args.runs)


if __name__ == "__main__":
    main()
