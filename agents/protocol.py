"""The one contract every tandem agent keeps.

An agent takes in observations (analysed results), suggests the next samples
for a station while others are still pending, predicts at any composition, and
saves and restores its state from the decision records it writes. The campaign
(or the agent daemon) drives it through this protocol only, so a BoTorch agent
and a random baseline are interchangeable.

`Agent` stays here, not in `tandem.protocols`: it speaks the agents' own types
(`FeasibleRegion`, `DecisionRecord`, `Prediction`). `Relabelling` speaks only
core types and lives there.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tandem.agents.records import DecisionRecord
from tandem.agents.region import FeasibleRegion
from tandem.observations import NO_CONTRAST, Observation
from tandem.suggestions import Suggestion


@dataclass(frozen=True)
class Prediction:
    """What an agent expects at some compositions.

    `compositions` is ``n x d`` mass fractions in the order of `names`. A
    classifier fills `labels` and `probabilities` (``n x len(labels)``); a
    regressor fills `mean` and `std` of its objective.
    """

    names: tuple[str, ...]
    compositions: np.ndarray
    labels: tuple[str, ...] = ()
    probabilities: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def most_likely(self) -> list[str | None]:
        """The most probable label at each composition (None where the agent knows no labels).

        Where a probe saw nothing (`NO_CONTRAST`, see `unseen`) that is the label: naming the phase
        the model extends into such a region instead was measured and lost where a whole phase is
        flat to the probe (the twin's ternary L2 for neutrons: 0.84 -> 0.63 at 80 samples).
        """
        if self.probabilities is None or not self.labels:
            return [None] * len(self.compositions)
        return [self.labels[i] for i in np.argmax(self.probabilities, axis=1)]

    def unseen(self) -> np.ndarray:
        """Where `NO_CONTRAST` is the most probable label (boolean, one per composition)."""
        if self.probabilities is None or NO_CONTRAST not in self.labels:
            return np.zeros(len(self.compositions), dtype=bool)
        return np.argmax(self.probabilities, axis=1) == self.labels.index(NO_CONTRAST)

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per composition: mass fractions, label and its probability (or mean, std)."""
        path = Path(path)
        header = list(self.names)
        rows: list[list[Any]] = [list(map(float, c)) for c in self.compositions]
        if self.probabilities is not None:
            header += ["label", "probability", *(f"p_{lab}" for lab in self.labels)]
            best = self.most_likely()
            for row, lab, probs in zip(rows, best, self.probabilities, strict=True):
                row += [lab or "", float(np.max(probs)) if len(probs) else float("nan"), *map(float, probs)]
        if self.mean is not None:
            header += ["mean", "std"]
            std = self.std if self.std is not None else np.full(len(rows), np.nan)
            for row, mu, sd in zip(rows, self.mean, std, strict=True):
                row += [float(mu), float(sd)]
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        return path


@runtime_checkable
class Agent(Protocol):
    """A decision-maker over a `FeasibleRegion`."""

    #: A short name, stamped on suggestions and decision records.
    name: str
    region: FeasibleRegion

    def tell(self, observations: Iterable[Observation]) -> None:
        """Take in analysed results. Bad ones are skipped with a logged reason, never modelled."""
        ...

    def suggest(
        self, station: str | None, n: int = 1, pending: Sequence[Suggestion] = ()
    ) -> list[Suggestion]:
        """The next `n` samples for `station` (None: the agent picks the station).

        `pending` are suggestions queued or running on any station: they are not
        suggested again. Every suggestion is one the stocks can make.
        """
        ...

    def predict(self, compositions: np.ndarray | Sequence[Mapping[str, float]]) -> Prediction:
        """Label probabilities or objective mean/std at `compositions` (mass fractions)."""
        ...

    @property
    def records(self) -> Sequence[DecisionRecord]:
        """The decision records written so far (one per suggestion)."""
        ...

    def state(self) -> dict[str, Any]:
        """A JSON-ready state from which `from_state` rebuilds this agent (plus its observations)."""
        ...


def as_fraction_array(
    region: FeasibleRegion, compositions: np.ndarray | Sequence[Mapping[str, float]]
) -> np.ndarray:
    """Compositions as an ``n x d`` array of mass fractions in the region's component order."""
    if isinstance(compositions, np.ndarray):
        arr = np.asarray(compositions, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != region.dim:
            from tandem.agents.errors import AgentError

            raise AgentError(
                f"compositions must be n x {region.dim} ({', '.join(region.names)}), got {arr.shape}"
            )
        return arr
    return np.array([region.vector(c) for c in compositions], dtype=np.float64).reshape(-1, region.dim)


__all__ = ["Agent", "Prediction", "as_fraction_array"]
