"""NXcanSAS 1-D curves in HDF5, read and written with h5py (see `tandem.analysis.curve_files` for why).

The part of the NXcanSAS definition a 1-D curve uses: a SASentry (NXentry) holding a SASdata (NXdata)
group whose `signal` attribute names the intensity (`I`) and `I_axes` the q dataset (`Q`); the
intensity's `uncertainties` attribute names its 1-σ errors (`Idev`), q's `resolutions` its 1-σ
resolution (`Qdev`); every dataset carries `units`. A `default` attribute at each level picks the
entry and data group when there are several; an optional boolean `Mask` marks points to drop. Files
of NXcanSAS 1.0 (older Mantid) spell these `unit`, `uncertainty` and put the canSAS class in
`NX_class`; they are read too.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from tandem.analysis.curve_files import (
    MAX_POINTS,
    CurveFileError,
    intensity_factor_per_cm,
    q_factor_inv_a,
)
from tandem.analysis.curves import Curve

FloatArray = npt.NDArray[np.float64]


def _text(value: Any) -> str:
    """An HDF5 attribute or scalar dataset as a str (h5py gives str, bytes or 0-d/1-element arrays)."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", errors="replace")
    return str(value)


def read_nxcansas(path: Path, entry: str | None) -> tuple[str, dict[str, FloatArray], dict[str, Any]]:
    """Where the curve is in the file, its columns (q, intensity, [sigma], [dq] in 1/Å and 1/cm) and metadata.

    `entry` names a SASentry or SASdata group; otherwise the `default` attributes or the only one decide.
    """
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CurveFileError(
            f"{path}: not a readable HDF5 file (truncated, or another format?): {exc}"
        ) from None
    with handle:
        group = _sasdata_group(path, handle, entry)
        where = f"{path}:{group.name}"
        signal = _text(group.attrs.get("signal", "I"))
        axes = _text(group.attrs.get("I_axes", "Q")).split(",")[0].strip()
        if not (isinstance(group.get(signal), h5py.Dataset) and isinstance(group.get(axes), h5py.Dataset)):
            raise CurveFileError(f"{where}: no {signal!r} (signal) or {axes!r} (I_axes) dataset")
        shape = group[signal].shape
        if len(shape) != 1 or shape[0] > MAX_POINTS:
            raise CurveFileError(f"{where}: I has shape {shape}; a 1-D curve of at most {MAX_POINTS} points")
        q_factor = q_factor_inv_a(_units(group[axes]), f"{where}/{axes}")
        i_factor = intensity_factor_per_cm(_units(group[signal]), f"{where}/{signal}")
        scale = 1.0 if i_factor is None else i_factor
        columns = {
            "q": _column(group, axes, where, shape) * q_factor,
            "intensity": _column(group, signal, where, shape) * scale,
        }
        attrs = group[signal].attrs
        sigma_name = _text(attrs.get("uncertainties", attrs.get("uncertainty", "Idev")))
        if sigma_name in group:
            columns["sigma"] = _column(group, sigma_name, where, shape) * scale
        resolutions = [r.strip() for r in _text(group[axes].attrs.get("resolutions", "Qdev")).split(",")]
        if "Qdev" not in resolutions and any(r in group for r in resolutions):
            raise CurveFileError(
                f"{where}: slit-smeared data ({', '.join(resolutions)}) is not supported; "
                "give a pinhole curve (Qdev) or one without resolution"
            )
        if "Qdev" in group:
            columns["dq"] = _column(group, "Qdev", where, shape) * q_factor_inv_a(
                _units(group["Qdev"]), f"{where}/Qdev"
            )
        if "Mask" in group:  # NXcanSAS: true where a point is masked; dropped with the non-finite ones
            columns["q"] = np.where(_column(group, "Mask", where, shape) != 0, np.nan, columns["q"])
        metadata = _entry_metadata(group.parent)
    metadata.update(
        source="file",
        format="nxcansas",
        path=str(path),
        intensity_scale="arbitrary" if i_factor is None else "absolute",
    )
    return where, columns, metadata


def _units(dataset: Any) -> str:
    """The `units` attribute (`unit` in NXcanSAS 1.0 files)."""
    return _text(dataset.attrs.get("units", dataset.attrs.get("unit", "")))


def _column(group: Any, name: str, where: str, shape: tuple[int, ...]) -> FloatArray:
    try:
        values = np.asarray(group[name][()], dtype=np.float64)
    except (TypeError, ValueError, AttributeError):
        raise CurveFileError(f"{where}/{name}: not an array of numbers") from None
    if values.shape != shape:
        raise CurveFileError(f"{where}/{name}: shape {values.shape}, but I has {shape}")
    return values


def _entry_metadata(entry: Any) -> dict[str, Any]:
    """The entry's name and title, and the composition `write_nxcansas` put in its SASsample."""
    metadata: dict[str, Any] = {"entry": entry.name}
    title = entry.get("title")
    if isinstance(title, h5py.Dataset):
        metadata["title"] = _text(title[()])
    sample = entry.get("sassample")
    if isinstance(sample, h5py.Group) and "tandem_composition" in sample.attrs:
        # a foreign or damaged note is skipped: the composition table is the authority anyway
        with contextlib.suppress(json.JSONDecodeError):
            metadata["composition"] = json.loads(_text(sample.attrs["tandem_composition"]))
    return metadata


def _is(group: Any, cansas_class: str, nx_class: str) -> bool:
    """canSAS_class decides where present: an NXdata group may be a SAStransmission_spectrum instead."""
    if "canSAS_class" in group.attrs:
        return _text(group.attrs["canSAS_class"]) == cansas_class
    # files of NXcanSAS 1.0 (older Mantid) put the canSAS class in NX_class
    return _text(group.attrs.get("NX_class", "")) in {nx_class, cansas_class}


def _sasdata_group(path: Path, handle: Any, entry: str | None) -> Any:
    """The SASdata group: `entry` if given, else each level's `default` attribute, else the only one."""

    def child(parent: Any, cansas_class: str, nx_class: str) -> Any:
        default = _text(parent.attrs.get("default", ""))
        if default and isinstance(parent.get(default), h5py.Group):
            return parent[default]
        found = [g for g in parent.values() if isinstance(g, h5py.Group) and _is(g, cansas_class, nx_class)]
        if len(found) == 1:
            return found[0]
        if not found:
            raise CurveFileError(
                f"{path}: no {cansas_class} group in {parent.name}; an NXcanSAS file has SASentry/SASdata"
            )
        names = ", ".join(sorted(g.name for g in found))
        raise CurveFileError(f"{path}: several {cansas_class} groups ({names}); pick one with entry=")

    if entry is not None:
        group = handle.get(entry)
        if not isinstance(group, h5py.Group):
            raise CurveFileError(f"{path}: no group {entry!r}; groups at the top: {', '.join(handle)}")
        return group if _is(group, "SASdata", "NXdata") else child(group, "SASdata", "NXdata")
    return child(child(handle, "SASentry", "NXentry"), "SASdata", "NXdata")


def write_nxcansas(curve: Curve, path: Path, *, title: str, composition: Mapping[str, float] | None) -> None:
    """One SASentry with one SASdata (Q in 1/Å, I and Idev in 1/cm, Qdev if the curve has a resolution)."""
    with h5py.File(Path(path), "w") as handle:
        handle.attrs["default"] = "sasentry01"
        entry = handle.create_group("sasentry01")
        entry.attrs.update(NX_class="NXentry", canSAS_class="SASentry", version="1.1", default="sasdata01")
        entry["definition"] = "NXcanSAS"
        entry["title"] = title
        entry["run"] = title
        data = entry.create_group("sasdata01")
        data.attrs.update(NX_class="NXdata", canSAS_class="SASdata", signal="I", I_axes="Q", Q_indices=0)
        q = data.create_dataset("Q", data=curve.q_inv_a)
        q.attrs["units"] = "1/angstrom"
        intensity = data.create_dataset("I", data=curve.intensity_per_cm)
        intensity.attrs.update(units="1/cm", uncertainties="Idev")
        data.create_dataset("Idev", data=curve.sigma_per_cm).attrs["units"] = "1/cm"
        if np.any(curve.dq_inv_a > 0):
            q.attrs["resolutions"] = "Qdev"
            data.create_dataset("Qdev", data=curve.dq_inv_a).attrs["units"] = "1/angstrom"
        sample = entry.create_group("sassample")
        sample.attrs.update(NX_class="NXsample", canSAS_class="SASsample")
        sample["name"] = title
        if composition is not None:
            sample.attrs["tandem_composition"] = json.dumps({k: float(v) for k, v in composition.items()})
