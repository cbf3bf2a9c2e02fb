"""`Prediction.most_likely` and `unseen`: where a probe saw nothing, the map says so."""

from __future__ import annotations

import numpy as np

from tandem.agents.protocol import Prediction
from tandem.observations import NO_CONTRAST


def _prediction(labels: tuple[str, ...], probabilities: list[list[float]]) -> Prediction:
    return Prediction(("a",), np.zeros((len(probabilities), 1)), labels, np.array(probabilities))


def test_the_map_says_where_the_probe_saw_nothing() -> None:
    p = _prediction((NO_CONTRAST, "lamellar", "sphere"), [[0.2, 0.7, 0.1], [0.6, 0.1, 0.3], [0.5, 0.3, 0.2]])
    assert p.most_likely() == ["lamellar", NO_CONTRAST, NO_CONTRAST]
    assert p.unseen().tolist() == [False, True, True]


def test_an_agent_that_has_seen_only_flat_curves_says_so() -> None:
    p = _prediction((NO_CONTRAST,), [[1.0], [1.0]])
    assert p.most_likely() == [NO_CONTRAST, NO_CONTRAST]
    assert p.unseen().all()


def test_no_labels_means_no_names() -> None:
    p = Prediction(("a",), np.zeros((2, 1)))
    assert p.most_likely() == [None, None]
    assert not p.unseen().any()
