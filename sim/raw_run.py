"""One sample's raw run on the twin, written to Tiled without a RunEngine, as the station plans lay it out.

The analysis tests and the scale bench need many raw runs fast: a start document with the sample's
metadata (campaign, sample and decision uids, scan, realized composition, the truth), a `primary`
stream with the detector image and monitor counts, an `empty_cell` stream, and a stop document,
through the Bluesky Tiled writer. The frames are the twin's (`tandem.sim.detector_image`). The
arguments that spoil a run (`counts`, `transmitted_factor`, `geometry=False`, `exit_status`) are
for the tests of bad input.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run

from tandem.catalog_layout import raw_runs_node
from tandem.sim.detector_image import simulate_empty_cell_frame, simulate_frame
from tandem.sim.instruments import instrument_for
from tandem.sim.systems import default_system


def write_twin_run(
    client: Any,
    station: str,
    composition: Mapping[str, float],
    *,
    campaign_id: str,
    exposure_s: float,
    seed: int = 0,
    configuration: str | None = None,
    empty_cell: bool = True,
    counts: np.ndarray | None = None,
    transmitted_factor: float = 1.0,
    geometry: Mapping[str, Any] | bool | None = True,
    exit_status: Literal["success", "abort", "fail"] = "success",
    also: Callable[[str, Any], None] | None = None,
) -> str:
    """Write one raw run as the station plans lay it out (start document, `primary` and `empty_cell`
    streams with the image and monitor counts), with frames from the twin, through the Tiled writer.

    `counts`, `transmitted_factor`, `geometry` (False: leave it out) and `exit_status` spoil the run on
    purpose for the bad-input tests. `also` receives every document after the Tiled writer (as a
    callback subscribed after it would).
    """
    instrument = instrument_for(station)
    rng = np.random.default_rng(seed)
    truth = default_system(composition, instrument.probe)
    frame = simulate_frame(instrument, configuration, composition, truth, exposure_s, rng)
    solvent = instrument.solvent.name
    md: dict[str, Any] = {
        "plan_name": "sample_plan",
        "station": station,
        "probe": instrument.probe.value,
        "campaign_id": campaign_id,
        "sample_uid": f"sample-{uuid.uuid4().hex[:8]}",
        "decision_uid": f"decision-{uuid.uuid4().hex[:8]}",
        "scan": {
            "exposure_s": exposure_s,
            "configuration": frame.configuration,
            "temperature_c": None,
            "n_frames": 1,
        },
        "realized": {"mass_fraction": {**composition, solvent: 1.0 - sum(composition.values())}},
        "truth": {"phase": truth.phase, "model": truth.model, "parameters": dict(truth.parameters)},
    }
    if geometry is True:
        md["geometry"] = frame.geometry.to_dict()
    elif isinstance(geometry, Mapping):
        md["geometry"] = dict(geometry)
    tiled_writer = TiledWriter(raw_runs_node(client), batch_size=1)

    def writer(name: str, doc: Any) -> None:
        tiled_writer(name, doc)
        if also is not None:
            also(name, doc)

    bundle = compose_run(metadata=md)
    writer("start", bundle.start_doc)
    fraction = instrument.transmission_beam_fraction
    streams = [("primary", frame, counts)]
    if empty_cell:
        streams.append(
            ("empty_cell", simulate_empty_cell_frame(instrument, configuration, exposure_s, rng), None)
        )
    for stream, simulated, override in streams:
        image = np.asarray(simulated.counts if override is None else override)
        desc = bundle.compose_descriptor(
            name=stream,
            data_keys={
                f"{station}_detector_image": {
                    "dtype": "array",
                    "shape": list(image.shape),
                    "source": "sim",
                    "dtype_numpy": image.dtype.str,
                },
                f"{station}_monitor_incident_counts": {"dtype": "number", "shape": [], "source": "sim"},
                f"{station}_monitor_transmitted_counts": {"dtype": "number", "shape": [], "source": "sim"},
            },
        )
        writer("descriptor", desc.descriptor_doc)
        incident = float(simulated.monitor_counts)
        factor = transmitted_factor if stream == "primary" else 1.0
        data = {
            f"{station}_detector_image": image,
            f"{station}_monitor_incident_counts": incident,
            f"{station}_monitor_transmitted_counts": simulated.transmission * incident * fraction * factor,
        }
        event = desc.compose_event(data=data, timestamps={k: time.time() for k in data})
        writer("event", event)
    writer(
        "stop",
        bundle.compose_stop(exit_status=exit_status, reason="" if exit_status == "success" else "IOC gone"),
    )
    return str(bundle.start_doc["uid"])


__all__ = ["write_twin_run"]
