"""Why an analysis failed: a typed error whose code is written into the analysed node.

A failed analysis is a result, not a crash: the pipeline catches `AnalysisError`,
records `code` and the message in Tiled, and moves on to the next run. Agents
treat such a node as a failed measurement.
"""

from __future__ import annotations

from enum import StrEnum

from tandem.errors import TandemError


class FailureCode(StrEnum):
    """Machine-readable reasons; the message says the specifics."""

    MISSING_GEOMETRY = "missing_geometry"
    MISSING_DATA = "missing_data"
    EMPTY_FRAME = "empty_frame"
    SATURATED_FRAME = "saturated_frame"
    BAD_FRAME = "bad_frame"
    BAD_TRANSMISSION = "bad_transmission"
    BAD_NORMALISATION = "bad_normalisation"
    TOO_FEW_POINTS = "too_few_points"
    FIT_NOT_CONVERGED = "fit_not_converged"
    INTERNAL = "internal_error"


class AnalysisError(TandemError, ValueError):
    """Input that analysis cannot turn into a trustworthy result."""

    def __init__(self, code: FailureCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code.value}: {message}")
