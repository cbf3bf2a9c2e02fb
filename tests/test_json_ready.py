"""`tandem.files.json_ready`: what strict JSON (``allow_nan=False``) takes, from what tandem writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tandem.files import json_ready


def test_non_finite_numbers_become_null_and_numpy_and_paths_plain_values() -> None:
    value = {
        "nan": math.nan,
        "inf": np.float64(np.inf),
        "count": np.int64(3),
        "curve": np.array([1.0, np.nan]),
        "nested": ({"x": -math.inf},),
        "where": Path("/tmp/report"),
        7: "key becomes text",
    }
    ready = json_ready(value)
    assert json.loads(json.dumps(ready, allow_nan=False)) == {
        "nan": None,
        "inf": None,
        "count": 3,
        "curve": [1.0, None],
        "nested": [{"x": None}],
        "where": "/tmp/report",
        "7": "key becomes text",
    }
    assert type(ready["count"]) is int
