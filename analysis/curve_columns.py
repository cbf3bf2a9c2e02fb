"""A curve file's columns made a `Curve`: units converted to 1/Å and 1/cm, points checked, σ if missing.

What every curve file passes whatever its format (text here in `tandem.analysis.curve_files`, NXcanSAS
in `tandem.analysis.nxcansas`): q and I units as files write them, converted; non-finite and
non-positive points dropped, a repeated q refused, too few points refused; σ estimated from the
scatter of I when the file has none. `CurveFileError` is what every refusal raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.analysis.curves import Curve
from tandem.errors import TandemError

FloatArray = npt.NDArray[np.float64]

#: more points than any 1-D reduction makes
MAX_POINTS = 1_000_000
#: fewer usable points than this is not a curve whose shape can be compared
MIN_POINTS = 5


class CurveFileError(TandemError, ValueError):
    """A curve or composition file that cannot be read as one; the message names file and line."""


# -- units -----------------------------------------------------------------------------------------

_LENGTH_PER_A = {"a": 1.0, "nm": 10.0, "m": 1e10, "cm": 1e8, "mm": 1e7, "um": 1e4}
_LENGTH_PER_CM = {"cm": 1.0, "m": 100.0, "mm": 0.1, "a": 1e-8, "nm": 1e-7}
_ARBITRARY = frozenset(
    {"", "au", "a.u.", "arb", "arb.u.", "arbitrary", "arbitraryunits", "counts", "none", "1"}
)
_VALID_Q = "1/Å (1/A, 1/angstrom, A^-1), 1/nm or 1/m"
_VALID_I = "1/cm, 1/m, 1/mm (per sr or not) or arbitrary units (a.u., counts, none)"


def _inverse_length(unit: str) -> str | None:
    """The length of an inverse-length unit written any common way ('1/nm', 'nm^-1', 'inv_nm'), or None."""
    u = unit.strip().lower().replace(" ", "").replace("å", "a").replace("µ", "u")
    u = re.sub(r"(/sr|sr\^?-1|sr\^\{-1\}|\*sr-1)", "", u)
    u = re.sub(r"angstroms?|ang\b|ang$", "a", u)
    u = re.sub(r"nanomet(er|re)s?", "nm", u)
    u = re.sub(r"met(er|re)s?", "m", u)
    u = u.replace("^{-1}", "^-1")
    for pattern in (r"^1/(\w+)$", r"^(\w+)\^?-1$", r"^(?:inv|per)_?(\w+)$"):
        match = re.match(pattern, u)
        if match:
            return match.group(1)
    return None


def q_factor_inv_a(unit: str, where: str) -> float:
    """What multiplies q in `unit` to give 1/Å."""
    length = _inverse_length(unit)
    if length not in _LENGTH_PER_A:
        raise CurveFileError(f"{where}: q unit {unit!r} is not an inverse length; valid: {_VALID_Q}")
    return 1.0 / _LENGTH_PER_A[length]


def intensity_factor_per_cm(unit: str, where: str) -> float | None:
    """What multiplies I in `unit` to give 1/cm, or None for arbitrary units (kept as they are)."""
    if unit.strip().lower().replace(" ", "") in _ARBITRARY:
        return None
    length = _inverse_length(unit)
    if length not in _LENGTH_PER_CM:
        raise CurveFileError(f"{where}: intensity unit {unit!r} is not understood; valid: {_VALID_I}")
    return 1.0 / _LENGTH_PER_CM[length]


# -- the curve from columns ------------------------------------------------------------------------


def _estimated_sigma(intensity: FloatArray) -> FloatArray:
    """σ for a file without uncertainties: one relative error for the whole curve, from its scatter.

    For independent noise the second difference I[i] - (I[i-1] + I[i+1])/2 has variance 1.5 σ²; its
    median square over the curve (÷ 0.455, the median of χ²₁) is robust to peaks and edges. A
    relative error keeps strong low-q points from outweighing the rest; 1 % is the floor.
    """
    scale = np.maximum(np.abs(intensity), np.finfo(float).tiny)
    second = (intensity[1:-1] - 0.5 * (intensity[:-2] + intensity[2:])) / scale[1:-1]
    relative = math.sqrt(float(np.median(np.square(second))) / 0.455 / 1.5) if second.size else 0.0
    return np.asarray(max(relative, 0.01) * scale, dtype=np.float64)


def curve_from_columns(
    source: str,
    columns: Mapping[str, FloatArray],
    labels: npt.NDArray[np.str_],
    metadata: dict[str, Any],
) -> Curve:
    """Checked, cleaned and sorted: drop non-finite or non-positive points, refuse duplicate q.

    `columns` holds "q", "intensity" and optionally "sigma" and "dq", already in 1/Å and 1/cm;
    `labels` names each row where a message points at it (a text line number, an array index).
    """
    q, intensity = columns["q"], columns["intensity"]
    sigma, dq = columns.get("sigma"), columns.get("dq")
    for name, values in columns.items():
        if values.size and not np.any(np.isfinite(values)):
            raise CurveFileError(f"{source}: the {name} column has no finite value")
    keep = np.isfinite(q) & (q > 0) & np.isfinite(intensity)
    if sigma is not None:
        keep &= np.isfinite(sigma) & (sigma > 0)
    if dq is not None:
        keep &= np.isfinite(dq)
        bad = keep & (dq < 0)
        if np.any(bad):
            raise CurveFileError(f"{source}, {_label(labels, bad)}: dq must be >= 0, got {dq[bad][0]}")
    dropped = int(keep.size - np.count_nonzero(keep))
    if np.count_nonzero(keep) < MIN_POINTS:
        raise CurveFileError(
            f"{source}: only {np.count_nonzero(keep)} point(s) with finite positive q, finite I and "
            f"positive σ; a curve needs at least {MIN_POINTS}"
        )
    order = np.argsort(q[keep], kind="stable")
    q_sorted = q[keep][order]
    same = np.flatnonzero(np.diff(q_sorted) == 0)
    if same.size:
        rows = labels[keep][order]
        raise CurveFileError(
            f"{source}: q = {q_sorted[same[0]]:g} 1/Å appears twice ({rows[same[0]]} and "
            f"{rows[same[0] + 1]}); a curve has one point per q: merge or drop the repeats"
        )

    def pick(values: FloatArray) -> FloatArray:
        return np.asarray(values[keep][order], dtype=np.float64)

    i = pick(intensity)
    if sigma is None:
        metadata["sigma"] = "estimated from the scatter of I (the file has none)"
    resolution = pick(dq) if dq is not None else np.zeros_like(q_sorted)
    metadata["resolution"] = "file" if np.any(resolution > 0) else "none"
    metadata["dropped_points"] = dropped
    metadata["reordered"] = bool(np.any(np.diff(order) < 0))
    return Curve(q_sorted, i, pick(sigma) if sigma is not None else _estimated_sigma(i), resolution, metadata)


def _label(labels: npt.NDArray[np.str_], mask: npt.NDArray[np.bool_]) -> str:
    return str(labels[np.flatnonzero(mask)[0]])
