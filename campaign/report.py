"""The end-of-campaign report: figures, metrics and the predicted map, written into one folder.

The report is built from plain data, a `CampaignHistory`, so the same code serves
a campaign that just finished in-process and one rebuilt from Tiled afterwards.
`write_report(history, folder)` writes:

==================  ===============================================================
``phase_map.png``   the predicted phase map beside the truth (when known), as
                    2-D slices through composition space, with the samples measured
``accuracy.png``    phase-map accuracy against samples and against station time
``timeline.png``    both stations' activities over station time (a Gantt chart)
``curves.png``      every measured I(q), one panel per station, coloured by phase
``report.json``     the metrics (accuracy, samples and hours to reach it, counts,
                    station time per station, label matching)
``phase_map.csv``   the grid: composition, label, probability (and the truth)
==================  ===============================================================

The report's parts, one job each: `report_data` (the history, as plain values),
`report_metrics` (the numbers of report.json), `report_figures` (the figures);
this module writes them into the folder, with the JSON and the CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.campaign.metrics import LabelMatch, match_labels
from tandem.campaign.report_data import (
    CampaignHistory,
)
from tandem.campaign.report_figures import (
    phase_colours,
    plot_accuracy,
    plot_curves,
    plot_phase_map,
    plot_timeline,
)
from tandem.campaign.report_metrics import campaign_metrics
from tandem.files import json_ready


@dataclass(frozen=True)
class Report:
    """Where the report went, and its metrics (the content of report.json)."""

    folder: Path
    files: Mapping[str, Path]
    metrics: Mapping[str, Any]


def write_report(history: CampaignHistory, folder: str | Path) -> Report:
    """Write the report's figures, `report.json` and `phase_map.csv` into `folder` (created if needed)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    match = (
        match_labels(history.predicted.labels, history.truth)
        if history.predicted is not None and history.truth is not None
        else None
    )
    colours = phase_colours(history, match)
    files: dict[str, Path] = {}
    if history.predicted is not None:
        files["phase_map_png"] = plot_phase_map(history, match, colours, out / "phase_map.png")
        files["phase_map_csv"] = _write_csv(history, match, out / "phase_map.csv")
    files["accuracy_png"] = plot_accuracy(history, out / "accuracy.png")
    files["timeline_png"] = plot_timeline(history, match, colours, out / "timeline.png")
    files["curves_png"] = plot_curves(history, match, colours, out / "curves.png")
    metrics = campaign_metrics(history, match)
    metrics["files"] = {k: p.name for k, p in files.items()} | {"report_json": "report.json"}
    files["report_json"] = out / "report.json"
    files["report_json"].write_text(json.dumps(json_ready(metrics), indent=2, allow_nan=False) + "\n")
    return Report(out, files, metrics)


# --- the grid as CSV --------------------------------------------------------------------------


def _write_csv(history: CampaignHistory, match: LabelMatch | None, path: Path) -> Path:
    assert history.predicted is not None
    pm = history.predicted
    header = [*pm.names, "label", "probability"]
    if history.truth is not None:
        header += ["label_matched", "truth"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for i, row in enumerate(pm.compositions):
            label = pm.labels[i]
            values: list[Any] = [f"{float(v):.6g}" for v in row]
            values += [label or "", f"{float(pm.probabilities[i]):.6g}"]
            if history.truth is not None:
                matched = None if (label is None or match is None) else match.mapping.get(label)
                values += [matched or "", history.truth[i]]
            writer.writerow(values)
    return path


__all__ = [
    "Report",
    "write_report",
]
