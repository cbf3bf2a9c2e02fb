"""The numbers of ``report.json``, computed from a campaign's history.

Counts and station time per station, the map's confidence and label matching, and
the samples and station hours the campaign took to reach each accuracy goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tandem.campaign.metrics import LabelMatch, first_reaching
from tandem.campaign.report_data import CampaignHistory

#: accuracy goals whose crossing the report states in samples and station hours
ACCURACY_GOALS = (0.8, 0.9, 0.95)


def station_seconds(history: CampaignHistory) -> dict[str, float]:
    """Busy time per station: its activities when recorded, else its measurements' spans."""
    busy = dict.fromkeys(history.stations, 0.0)
    spans = (
        [(a.station, a.start_s, a.end_s) for a in history.activities]
        if history.activities
        else [(m.station, m.start_s, m.end_s) for m in history.measurements]
    )
    for station, start, end in spans:
        busy[station] = busy.get(station, 0.0) + max(0.0, end - start)
    return busy


def campaign_metrics(history: CampaignHistory, match: LabelMatch | None = None) -> dict[str, Any]:
    """The numbers of report.json."""
    per_station: dict[str, dict[str, Any]] = {}
    busy = station_seconds(history)
    for station in history.stations:
        mine = [m for m in history.measurements if m.station == station]
        per_station[station] = {
            "samples": len(mine),
            "failed": sum(not m.ok for m in mine),
            "station_hours": busy.get(station, 0.0) / 3600.0,
            "exposure_hours": sum(m.exposure_s for m in mine) / 3600.0,
            "last_end_s": max((m.end_s for m in mine), default=0.0),
        }
    metrics: dict[str, Any] = {
        "campaign_id": history.campaign_id,
        "title": history.title or history.campaign_id,
        "axes": list(history.names),
        "samples": len(history.measurements),
        "failed": sum(not m.ok for m in history.measurements),
        "interrupted": history.interrupted,
        "station_hours": sum(busy.values()) / 3600.0,
        "stations": per_station,
        "labels_measured": _counts(m.label for m in history.measurements if m.ok),
    }
    if history.predicted is not None:
        probs = history.predicted.probabilities
        metrics["map"] = {
            "grid_points": len(history.predicted.labels),
            "mean_confidence": float(np.mean(probs)) if probs.size else None,
            "labels_predicted": _counts(history.predicted.labels),
        }
    if match is not None:
        metrics["accuracy"] = match.accuracy
        metrics["label_matching"] = match.to_dict()
    if history.accuracy:
        xs_n = [float(p.n_samples) for p in history.accuracy]
        xs_h = [p.station_hours for p in history.accuracy]
        ys = [p.accuracy for p in history.accuracy]
        metrics["accuracy_series"] = [
            {"n_samples": p.n_samples, "station_hours": p.station_hours, "accuracy": p.accuracy}
            for p in history.accuracy
        ]
        metrics["to_reach"] = {
            f"{goal:g}": {
                "samples": _int_or_none(first_reaching(xs_n, ys, goal)),
                "station_hours": first_reaching(xs_h, ys, goal),
            }
            for goal in ACCURACY_GOALS
        }
    if history.metadata:
        metrics["metadata"] = dict(history.metadata)
    return metrics


def _counts(labels: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for label in labels:
        key = label if label is not None else "(none)"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _int_or_none(x: float | None) -> int | None:
    return None if x is None else int(x)
