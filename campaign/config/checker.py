"""What every semantic check shares: the schema-valid file being checked, and the problems found so far.

The schema cannot see the stocks, the instruments (`instruments`, by name) or the ground truth; the
`*_checks` modules can, and each reports into one `Checker` so that every
problem of a file is found in one pass (`load` runs them in order).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tandem.file_problems import KeyPath, Problem
from tandem.instrument import InstrumentFacts
from tandem.reach import SpaceTooLargeError, polytope_vertices
from tandem.yaml_marks import Marks

from .schema import CampaignFile


class Checker:
    """Collects every semantic problem of a schema-valid campaign file."""

    def __init__(
        self, spec: CampaignFile, marks: Marks, base: Path, instruments: Mapping[str, InstrumentFacts]
    ) -> None:
        self.spec = spec
        self.marks = marks
        #: the folder that deck paths are relative to (the campaign file's)
        self.base = base
        #: the instruments a station may name, by name
        self.instruments = instruments
        #: each station's instrument once resolved (None: a problem stopped it), so that it is read once
        self.station_instruments: dict[str, InstrumentFacts | None] = {}
        self.problems: list[Problem] = []

    def add(self, path: KeyPath, message: str, hint: str = "", *, key: bool = False) -> None:
        self.problems.append(self.marks.problem(path, message, hint, key=key))

    def vertices(self) -> list[dict[str, float]]:
        """The corners of the composition space (solute mass fractions), or its origin if too many."""
        halfspaces = [h for c in self.spec.space.constraints for h in c.halfspaces()]
        names = list(self.spec.space.bounds)
        try:
            return polytope_vertices(names, self.spec.space.bounds, halfspaces)
        except SpaceTooLargeError:
            return [dict.fromkeys(names, 0.0)]  # too many to enumerate: check the origin only


__all__ = ["Checker"]
