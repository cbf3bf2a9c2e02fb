"""The input of `tandem map`: a folder of curve files and the table of what each sample was made of.

`load_curves` reads the composition table (through `tandem.analysis.curve_files`, which checks
it), an optional `probe` column, and every curve the table names; a curve that cannot be read is
listed with the reader's message, never fatal. Everything else that is wrong (a missing folder or
table, a row naming no file) is a `MapInputError` that says what would do.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tandem.analysis.curve_files import CurveFileError, read_composition_table, read_curve, resolve_curve_file
from tandem.analysis.curves import Curve
from tandem.errors import TandemError
from tandem.stations import Probe

_PROBE_NAMES = {"xray": Probe.XRAY, "x-ray": Probe.XRAY, "saxs": Probe.XRAY, "waxs": Probe.XRAY,
                "neutron": Probe.NEUTRON, "neutrons": Probe.NEUTRON, "sans": Probe.NEUTRON}  # fmt: skip

#: progress callback: (stage, done, total)
Progress = Callable[[str, int, int], None]


class MapInputError(TandemError, ValueError):
    """Curves, compositions or bounds a map cannot be made from; the message says what would do."""


@dataclass(frozen=True, eq=False)
class CurveInputs:
    """What `load_curves` read: curves, their compositions and probes, and the files it could not read."""

    curves: Mapping[str, Curve]
    compositions: Mapping[str, Mapping[str, float]]
    probes: Mapping[str, Probe]
    #: curve → the reader's message
    unreadable: Mapping[str, str]


def parse_probe(text: str | Probe, where: str = "probe") -> Probe:
    """`xray` or `neutron` (also `saxs`, `sans`, `x-ray`), case-insensitive."""
    probe = _PROBE_NAMES.get(str(text).strip().lower())
    if probe is None:
        raise MapInputError(f"{where}: {str(text)!r} is not a probe; valid: xray (saxs) or neutron (sans)")
    return probe


def load_curves(
    folder: str | Path,
    table: str | Path,
    probe: Probe | str = Probe.XRAY,
    progress: Progress | None = None,
) -> CurveInputs:
    """Read the composition table and every curve it names (in `folder`); unreadable ones are listed.

    The table is a CSV: the curve file, then one column of mass fractions per component (the solvent
    is the rest), optionally a `probe` column (xray or neutron) for data of both probes.
    """
    folder, table = Path(folder), Path(table)
    if not folder.is_dir():
        raise MapInputError(f"{folder}: no such folder; give the folder that holds the curve files")
    compositions, probe_cells = _read_table(table)
    default = parse_probe(probe, "--probe")
    probes = {n: parse_probe(c, f"{table}, row {n!r}") if c else default for n, c in probe_cells.items()}
    paths = {name: _resolve(folder, table, name) for name in compositions}
    curves: dict[str, Curve] = {}
    unreadable: dict[str, str] = {}
    for done, (name, path) in enumerate(paths.items()):
        try:
            curves[name] = read_curve(path)
        except CurveFileError as error:
            unreadable[name] = f"unreadable: {error}"
        if progress is not None:
            progress("reading curves", done + 1, len(paths))
    return CurveInputs(curves, compositions, probes, unreadable)


def _read_table(table: Path) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """The table's compositions (the reader's checks) and its `probe` column, if it has one."""
    if not table.is_file():
        raise MapInputError(f"{table}: no such composition table (a CSV: curve file, then mass fractions)")
    try:
        text = table.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MapInputError(f"{table}: not a UTF-8 text file") from None
    lines = text.splitlines()
    data = [i for i, line in enumerate(lines) if line.strip() and line[:1] != "#"]
    delimiter = ";" if data and lines[data[0]].count(";") > lines[data[0]].count(",") else ","
    header = next(csv.reader([lines[data[0]]], delimiter=delimiter)) if data else []
    column = next((i for i, h in enumerate(header) if i > 0 and h.strip().lower() == "probe"), None)
    probe_cells: dict[str, str] = {}
    if column is not None:  # the reader takes mass fractions only: give it the table without the column
        for i in data:
            cells = next(csv.reader([lines[i]], delimiter=delimiter))
            if i != data[0] and len(cells) > column:
                probe_cells[cells[0].strip()] = cells[column].strip()
            lines[i] = delimiter.join(c for j, c in enumerate(cells) if j != column)
    with tempfile.TemporaryDirectory() as tmp:
        source = table
        if column is not None:
            source = Path(tmp) / table.name
            source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            compositions = read_composition_table(source, check_files=False)
        except CurveFileError as error:
            raise MapInputError(str(error).replace(str(source), str(table))) from None
    return compositions, {n: probe_cells.get(n, "") for n in compositions}


def _resolve(folder: Path, table: Path, name: str) -> Path:
    try:
        return resolve_curve_file(folder / table.name, name)
    except CurveFileError as error:
        raise MapInputError(str(error).replace(str(folder / table.name), str(table))) from None
