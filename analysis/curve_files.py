"""Reduced 1-D curves from files: NXcanSAS HDF5 and plain text, and the table of their compositions.

The input layer of `tandem map`: a scientist brings curves from a past beamtime or another facility
and a CSV of what each sample was made of. Every file is read into a `Curve` in 1/Å and 1/cm, or
refused with a `CurveFileError` that names the file (and line, for text) and what would be valid; the
units and checks every format shares are `tandem.analysis.curve_columns`.

NXcanSAS is read and written by `tandem.analysis.nxcansas` with h5py, following the NXcanSAS
definition, not with SasView's `sasdata`: its current release (0.12) needs Python >= 3.12 and we run
3.11, so pip resolves to 0.11, whose loader API the 0.12 rewrite replaced; 0.11 converts Q to 1/Å but
leaves I in the file's units (a 1/m file stays 1/m), reports an empty or truncated file as an
IndexError from its fallback reader chain, and its wheel is 21 MB, mostly example data. h5py is in the
environment anyway (pyFAI and silx need it) and the part of the definition a 1-D curve uses is small.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tandem.analysis.curve_columns import (
    MAX_POINTS,
    CurveFileError,
    curve_from_columns,
    intensity_factor_per_cm,
    q_factor_inv_a,
)
from tandem.analysis.curves import Curve

#: larger files are refused unread: a reduced 1-D curve is kilobytes, this is a frame or a mistake
MAX_FILE_BYTES = 64 * 1024 * 1024
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_SUFFIXES = frozenset({".h5", ".hdf5", ".hdf", ".nxs", ".nx"})
#: what a curve file in a composition table may end with when the table names only its stem
CURVE_SUFFIXES = (*sorted(_HDF5_SUFFIXES), ".txt", ".dat", ".csv", ".xy", ".abs")


# -- reading ---------------------------------------------------------------------------------------


def read_curve(path: str | Path, *, entry: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> Curve:
    """The 1-D curve in `path`: NXcanSAS HDF5 (by suffix or signature) or text columns q, I, [dI, [dq]].

    `entry` picks one SASentry (or its SASdata group, "entry/data") in a file holding several.
    """
    p = Path(path)
    if not p.exists():
        raise CurveFileError(f"{p}: no such file")
    if not p.is_file():
        raise CurveFileError(f"{p}: is not a regular file (a directory?); give the path of one curve file")
    size = p.stat().st_size
    if size == 0:
        raise CurveFileError(f"{p}: the file is empty")
    if size > max_bytes:
        raise CurveFileError(
            f"{p}: {size} bytes is more than the {max_bytes} a 1-D curve file may have; is it a 2-D frame?"
        )
    with p.open("rb") as handle:
        head = handle.read(len(_HDF5_SIGNATURE))
    if head == _HDF5_SIGNATURE or p.suffix.lower() in _HDF5_SUFFIXES:
        # deferred: h5py and the NXcanSAS module load only when an HDF5 file is read
        from tandem.analysis.nxcansas import read_nxcansas

        where, columns, metadata = read_nxcansas(p, entry)
        labels = np.asarray([f"point {i}" for i in range(columns["q"].size)])
        return curve_from_columns(where, columns, labels, metadata)
    if entry is not None:
        raise CurveFileError(f"{p}: entry={entry!r} applies to NXcanSAS files only, this is a text file")
    return _read_text(p)


_HEADER_UNIT = re.compile(r"[\(\[]([^\)\]]*)[\)\]]|_((?:inv|per)_\w+)$")


def _split(line: str) -> list[str]:
    """Fields of a text line: with ';' as separator a ',' is a decimal comma, else ',' or spaces separate."""
    if ";" in line:
        return [f.strip().replace(",", ".") for f in line.split(";") if f.strip()]
    return [f for f in re.split(r"[,\s]+", line.strip()) if f]


def _header_units(fields: list[str]) -> list[str | None]:
    """Column units from names like 'q(1/nm)', 'I [1/cm]', 'q_inv_a' ('(1/nm)' alone joins its name)."""
    names: list[str] = []
    for f in fields:
        if names and f[:1] in "([":
            names[-1] += f
        else:
            names.append(f)
    units: list[str | None] = []
    for name in names:
        match = _HEADER_UNIT.search(name)
        units.append(None if match is None else (match.group(1) or match.group(2)))
    return units


def _text_rows(path: Path) -> tuple[list[str] | None, list[list[float]], list[int]]:
    """Column names (the last text line before the data, or a '# q ...' comment), rows, line numbers."""
    preamble: list[str] | None = None
    last_comment: list[str] | None = None
    rows: list[list[float]] = []
    lines: list[int] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CurveFileError(f"{path}: neither a UTF-8 text file nor an HDF5 file") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip().startswith("#"):
            last_comment = _split(raw.strip().lstrip("#"))
            continue
        fields = _split(raw.split("#", 1)[0])
        if not fields:
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows:  # free text before the data (titles, a column line) is a preamble
                preamble = fields
                continue
            raise CurveFileError(
                f"{path}, line {number}: {raw.strip()!r} is not numbers; text may only precede the data "
                "(or follow '#')"
            ) from None
        if not 2 <= len(values) <= 4 or (rows and len(values) != len(rows[0])):
            raise CurveFileError(
                f"{path}, line {number}: {len(values)} column(s); a curve has q, I and optionally dI and dq"
                + (f", as many on every line (line {lines[0]} has {len(rows[0])})" if rows else "")
            )
        rows.append(values)
        lines.append(number)
    if not rows:
        raise CurveFileError(f"{path}: no data lines (columns q, I, [dI], [dq] of numbers)")
    if len(rows) > MAX_POINTS:
        raise CurveFileError(f"{path}: {len(rows)} points; at most {MAX_POINTS}")
    # the column line is the last text before the data, or the usual '# q I dI' comment
    for header in (preamble, last_comment):
        if header and header[0].lower().startswith("q"):
            return header, rows, lines
    return None, rows, lines


def _read_text(path: Path) -> Curve:
    header, rows, lines = _text_rows(path)
    width = len(rows[0])
    units = _header_units(header) if header is not None else []
    units += [None] * (width - len(units))
    where = f"{path}, header"
    q_factor = q_factor_inv_a(units[0] or "1/A", where)
    i_factor = intensity_factor_per_cm(units[1] or "1/cm", where)
    scale = 1.0 if i_factor is None else i_factor
    data = np.asarray(rows, dtype=np.float64)
    columns = {"q": data[:, 0] * q_factor, "intensity": data[:, 1] * scale}
    if width > 2:
        sigma_factor = scale if units[2] is None else intensity_factor_per_cm(units[2], where)
        columns["sigma"] = data[:, 2] * (scale if sigma_factor is None else sigma_factor)
    if width > 3:
        columns["dq"] = data[:, 3] * (q_factor if units[3] is None else q_factor_inv_a(units[3], where))
    metadata: dict[str, Any] = {
        "source": "file",
        "format": "text",
        "path": str(path),
        "intensity_scale": "arbitrary" if i_factor is None else "absolute",
        "units_assumed": units[0] is None or units[1] is None,
    }
    labels = np.asarray([f"line {n}" for n in lines])
    return curve_from_columns(str(path), columns, labels, metadata)


# -- writing ---------------------------------------------------------------------------------------


def write_curve_text(curve: Curve, path: str | Path) -> None:
    """Four columns with a header that names their units, readable by `read_curve`."""
    data = np.column_stack([curve.q_inv_a, curve.intensity_per_cm, curve.sigma_per_cm, curve.dq_inv_a])
    header = "tandem curve\nq_inv_a intensity_per_cm sigma_per_cm dq_inv_a"
    np.savetxt(Path(path), data, fmt="%.17g", header=header, comments="# ")


def write_nxcansas(
    curve: Curve, path: str | Path, *, title: str, composition: Mapping[str, float] | None = None
) -> None:
    """One SASentry with one SASdata (Q in 1/Å, I and Idev in 1/cm, Qdev if the curve has a resolution).

    `title` names the entry and its sample; `composition`, if given, is kept in the SASsample group
    and comes back as `metadata["composition"]` from `read_curve`.
    """
    from tandem.analysis.nxcansas import write_nxcansas as write

    write(curve, Path(path), title=title, composition=composition)


# -- the composition table -------------------------------------------------------------------------


def resolve_curve_file(table_path: str | Path, name: str) -> Path:
    """The curve file a table row names: a path relative to the table's folder, or a stem there."""
    folder = Path(table_path).parent
    direct = folder / name
    if direct.is_file():
        return direct
    matches = [
        folder / f"{name}{suffix}" for suffix in CURVE_SUFFIXES if (folder / f"{name}{suffix}").is_file()
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CurveFileError(
            f"{table_path}: {name!r} could be {', '.join(m.name for m in matches)}; name the file in full"
        )
    raise CurveFileError(
        f"{table_path}: no curve file {name!r} in {folder}, as named or ending {', '.join(CURVE_SUFFIXES)}"
    )


def read_composition_table(path: str | Path, *, check_files: bool = True) -> dict[str, dict[str, float]]:
    """{curve file as named in the table: {component: mass fraction}} from a CSV.

    The header's first cell names the file column (any name), the others the components; every value
    is a mass fraction in [0, 1] and a row's sum is at most 1 (the solvent is the rest). With
    `check_files`, every named curve file must exist next to the table (see `resolve_curve_file`).
    """
    p = Path(path)
    if not p.is_file():
        raise CurveFileError(f"{p}: no such composition table (a CSV file: curve file, then mass fractions)")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CurveFileError(f"{p}: not a UTF-8 text file") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and line[:1] != "#"]
    if len(numbered) < 2:
        raise CurveFileError(f"{p}: needs a header line (file, component names...) and at least one row")
    delimiter = ";" if numbered[0][1].count(";") > numbered[0][1].count(",") else ","
    rows = list(csv.reader([line for _, line in numbered], delimiter=delimiter))
    header = [h.strip() for h in rows[0]]
    components = header[1:]
    if not components or any(not c for c in components):
        raise CurveFileError(f"{p}, line {numbered[0][0]}: header needs a name for every component column")
    repeated = sorted({c for c in components if components.count(c) > 1})
    if repeated:
        raise CurveFileError(f"{p}, line {numbered[0][0]}: component(s) {', '.join(repeated)} named twice")
    table: dict[str, dict[str, float]] = {}
    files: dict[Path, str] = {}
    for (number, _), row in zip(numbered[1:], rows[1:], strict=True):
        where = f"{p}, line {number}"
        # with ';' between cells a ',' is a decimal comma (as spreadsheets in much of Europe write)
        cells = [c.strip().replace(",", ".") if delimiter == ";" else c.strip() for c in row]
        if len(cells) != len(header):
            raise CurveFileError(f"{where}: {len(cells)} cells where the header has {len(header)}")
        name = cells[0]
        if not name:
            raise CurveFileError(f"{where}: the first cell must name a curve file")
        if name in table:
            raise CurveFileError(f"{where}: {name!r} appears twice; one row per curve file")
        if check_files:
            resolved = resolve_curve_file(p, name).resolve()
            if resolved in files:
                raise CurveFileError(f"{where}: {name!r} is the same file as {files[resolved]!r}")
            files[resolved] = name
        table[name] = _fractions(where, components, cells[1:])
    return table


def _fractions(where: str, components: list[str], cells: list[str]) -> dict[str, float]:
    fractions: dict[str, float] = {}
    for component, cell in zip(components, cells, strict=True):
        try:
            value = float(cell)
        except ValueError:
            raise CurveFileError(
                f"{where}: {component} = {cell!r} is not a number (write 0 for an absent component)"
            ) from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            hint = " (percent? mass fractions are in [0, 1])" if 1.0 < value <= 100.0 else ""
            raise CurveFileError(f"{where}: {component} = {cell} is not in [0, 1]{hint}")
        fractions[component] = value
    if sum(fractions.values()) > 1.0 + 1e-9:
        raise CurveFileError(f"{where}: mass fractions sum to {sum(fractions.values()):g}, more than 1")
    return fractions
