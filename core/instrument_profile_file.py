"""Reading an instrument profile: the file with line numbers, the schema, and what the schema cannot see.

`read_profile(path)` reads a profile file; `check_profile(data, marks, ...)` checks one given as data
with its marks (a campaign's inline profile is checked with the campaign's marks, so its problems
point into the campaign file). Beyond the schema (`tandem.instrument_profile`): each
configuration's q range must lie within what its detector geometry reaches, and each calibration
file must exist and hold an entry for the instrument (read, when the caller can, by analysis's
`StationCalibration`: the format `tandem analyze --calibration` reads). Every problem is
collected, each at its line; `read_profile` raises them together in one `InstrumentProfileError`.

The bundled profiles (the twin's two stations) are package data, found in an install as in a
checkout: `bundled_profile(name)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tandem.errors import TandemError
from tandem.file_problems import FileProblemsError, KeyPath, Problem
from tandem.files import read_text
from tandem.instrument_profile import InstrumentProfile, ProfileFacts
from tandem.schema_problems import huge_integers, schema_problem
from tandem.yaml_marks import Marks, read_yaml

#: the bundled instrument profiles' folder (`profiles/instruments/` in a checkout)
BUNDLED_PROFILES = Path(str(files("tandem") / "profiles" / "instruments"))
#: how far a stated q range may stray beyond the geometry's reach (rounding in the file)
_Q_SLACK = 1e-3

#: what reads one station's entry of a calibration file, raising a `TandemError` if it cannot (the
#: campaign passes analysis's `StationCalibration.from_dict`, which the core cannot import)
CalibrationReader = Callable[[Mapping[str, Any]], object]


class InstrumentProfileError(FileProblemsError):
    """An instrument profile that cannot be used; `problems` holds every problem found, each at its line."""

    what = "instrument profile"


def bundled_profile_names() -> tuple[str, ...]:
    """The names of the profiles that ship with tandem (the twin's stations)."""
    return tuple(sorted(p.stem for p in BUNDLED_PROFILES.glob("*.yaml")))


def bundled_profile_path(name: str) -> Path | None:
    """The file of the bundled profile `name`, or None when none is called so."""
    path = BUNDLED_PROFILES / f"{name}.yaml"
    return path if name in bundled_profile_names() else None


def bundled_profile(name: str) -> ProfileFacts:
    """The bundled profile `name`; an `InstrumentProfileError` naming the known ones if there is none."""
    path = bundled_profile_path(name)
    if path is None:
        raise InstrumentProfileError(
            [
                Problem(
                    name,
                    "",
                    f"no bundled instrument profile named {name!r}",
                    f"use one of: {', '.join(bundled_profile_names())}, or give a profile file",
                )
            ]
        )
    return read_profile(path)


def read_profile(path: str | Path, *, calibration: CalibrationReader | None = None) -> ProfileFacts:
    """Read and check a profile file; raise `InstrumentProfileError` with every problem found.

    `calibration` reads each calibration file's entry for the instrument (None: only its presence).
    """
    path = Path(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise InstrumentProfileError(
            [
                Problem(
                    str(path),
                    "",
                    f"cannot read the instrument profile: {exc.strerror or exc}",
                    "check the path (a profile file is YAML; see docs/reference/instrument-profile.md)",
                )
            ]
        ) from None
    try:
        data, marks = read_yaml(text, str(path))
    except FileProblemsError as exc:
        raise InstrumentProfileError(exc.problems) from None
    facts, problems = check_profile(data, marks, base=path.resolve().parent, calibration=calibration)
    if facts is None:
        raise InstrumentProfileError(problems)
    return facts


def check_profile(
    data: Any,
    marks: Marks,
    *,
    base: Path | None,
    prefix: KeyPath = (),
    calibration: CalibrationReader | None = None,
) -> tuple[ProfileFacts | None, list[Problem]]:
    """The profile's facts (None when a problem stops it) and every problem found.

    `prefix` is where the profile sits in the document `marks` describe (a campaign's inline profile
    sits under its station); `base` is the folder calibration paths are relative to; `calibration`
    as for `read_profile`.
    """
    if not isinstance(data, dict):
        return None, [
            marks.problem(
                prefix,
                "an instrument profile is a mapping of keys (name, probe, solvent, configurations, ...)",
                "see profiles/instruments/saxs.yaml",
            )
        ]
    huge = huge_integers(data, prefix, marks)
    try:
        profile = InstrumentProfile.model_validate(data)
    except ValidationError as exc:
        problems = [schema_problem(err, marks, InstrumentProfile, prefix) for err in exc.errors()]
        named = {p.key for p in problems}
        return None, [*problems, *(p for p in huge if p.key not in named)]
    problems = [
        *huge,
        *_q_ranges(profile, marks, prefix),
        *_calibrations(profile, marks, base, prefix, calibration),
    ]
    return (None if problems else profile.facts(base)), problems


def _q_ranges(profile: InstrumentProfile, marks: Marks, prefix: KeyPath) -> list[Problem]:
    """Each configuration's geometry must reach some q, and a stated q range lie within it."""
    problems = []
    for name, config in profile.configurations.items():
        where: KeyPath = (*prefix, "configurations", name)
        geometry = profile.geometry(name)
        lo, hi = geometry.q_min_inv_a, geometry.q_max_inv_a
        if lo >= hi:
            problems.append(
                marks.problem(
                    (*where, "detector", "beamstop_radius_mm"),
                    f"configuration {name!r} covers no q range: its beam stop hides the whole detector",
                    "make the beam stop smaller than the detector",
                )
            )
            continue
        stated = config.q_range_inv_a
        if stated is not None and (stated[0] < lo * (1 - _Q_SLACK) or stated[1] > hi * (1 + _Q_SLACK)):
            problems.append(
                marks.problem(
                    (*where, "q_range_inv_a"),
                    f"configuration {name!r}: the q range [{stated[0]:.4g}, {stated[1]:.4g}] 1/Å reaches "
                    f"beyond what its geometry covers ([{lo:.4g}, {hi:.4g}] 1/Å)",
                    "narrow it, or leave it out to use the geometry's",
                )
            )
    return problems


def _calibrations(
    profile: InstrumentProfile,
    marks: Marks,
    base: Path | None,
    prefix: KeyPath,
    reader: CalibrationReader | None,
) -> list[Problem]:
    """Each calibration file must exist and hold an entry (an object) for this instrument."""
    problems = []
    for name, config in profile.configurations.items():
        if config.calibration is None:
            continue
        path = Path(config.calibration) if base is None else base / config.calibration
        why = _calibration_problem(path, profile.name, reader)
        if why is not None:
            problems.append(marks.problem((*prefix, "configurations", name, "calibration"), *why))
    return problems


def _calibration_problem(
    path: Path, station: str, reader: CalibrationReader | None
) -> tuple[str, str] | None:
    hint = (
        "give a JSON file {station: {detector_efficiency, open_beam_ratio, path_length_mm, ...}} "
        "(as `tandem analyze --calibration` reads), relative to the profile file"
    )
    try:
        data = json.loads(read_text(path))
    except OSError as exc:
        return f"cannot read the calibration file {str(path)!r}: {exc.strerror or exc}", hint
    except json.JSONDecodeError as exc:
        return f"the calibration file {str(path)!r} is not JSON: {exc}", hint
    if not isinstance(data, dict) or not isinstance(data.get(station), dict):
        held = ", ".join(map(str, data)) if isinstance(data, dict) else "no object"
        return (
            f"the calibration file {str(path)!r} holds no calibration for {station!r} (it holds: {held})",
            hint,
        )
    if reader is not None:
        try:
            reader(data[station])
        except TandemError as exc:
            return f"the calibration for {station!r} in {str(path)!r} cannot be used: {exc}", hint
    return None


__all__ = [
    "BUNDLED_PROFILES",
    "CalibrationReader",
    "InstrumentProfileError",
    "bundled_profile",
    "bundled_profile_names",
    "bundled_profile_path",
    "check_profile",
    "read_profile",
]
