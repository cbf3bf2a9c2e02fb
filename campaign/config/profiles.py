"""Which instrument each station of a campaign names: a known one by name, a profile file, or one inline.

A station's `instrument` is one of:

- a name (the station id when left out), among the instruments `load_campaign` is given — the
  twin's by default, which are the bundled profiles `saxs` and `sans` with the twin's physics;
- a profile file, a path ending in `.yaml` or `.yml` (or holding a `/`), relative to the
  campaign file;
- a profile inline, a mapping with the keys of a profile file.

A profile is read and checked by `tandem.instrument_profile_file`; its problems point at their line
in the profile file, or in the campaign file for a profile inline. Nothing here names the twin:
the twin's instruments are made only when a station names one (`LazyInstruments`), so a campaign
whose stations all name profiles of their own loads no line of `tandem.sim`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tandem.file_problems import KeyPath
from tandem.instrument import InstrumentFacts
from tandem.instrument_profile import ProfileFacts
from tandem.instrument_profile_file import InstrumentProfileError, check_profile, read_profile

from .checker import Checker
from .schema import StationSpec

#: how a campaign's `instrument` names a profile file rather than an instrument
_PROFILE_SUFFIXES = (".yaml", ".yml")


class LazyInstruments(Mapping[str, InstrumentFacts]):
    """Instruments by name, made by `make` when first asked for: the twin's are not imported until a
    station names one of them."""

    def __init__(self, make: Callable[[], Mapping[str, InstrumentFacts]]) -> None:
        self._make = make
        self._made: Mapping[str, InstrumentFacts] | None = None

    def _instruments(self) -> Mapping[str, InstrumentFacts]:
        if self._made is None:
            self._made = self._make()
        return self._made

    def __getitem__(self, name: str) -> InstrumentFacts:
        return self._instruments()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._instruments())

    def __len__(self) -> int:
        return len(self._instruments())


def read_calibration(entry: Mapping[str, Any]) -> object:
    """A station's entry of a calibration file, read as `tandem analyze --calibration` reads it."""
    # imported when a profile names a calibration file: analysis is slow to import and rarely needed here
    from tandem.analysis.pipeline_settings import StationCalibration

    return StationCalibration.from_dict(entry)


def names_a_file(instrument: str) -> bool:
    """Whether a station's `instrument` text is a profile file's path rather than an instrument's name."""
    return instrument.endswith(_PROFILE_SUFFIXES) or "/" in instrument


def on_twin(instrument: InstrumentFacts) -> bool:
    """Whether a station with this instrument runs on the twin: all but a profile with `backend: epics`."""
    return not (isinstance(instrument, ProfileFacts) and instrument.backend == "epics")


def station_instrument(checker: Checker, sid: str, spec: StationSpec) -> InstrumentFacts | None:
    """The instrument station `sid` names, or None when a problem (reported to `checker`) stops it.

    Resolved once per station (the space's checks ask for its solvent before the station is checked).
    """
    if sid not in checker.station_instruments:
        checker.station_instruments[sid] = _resolve(checker, sid, spec)
    return checker.station_instruments[sid]


def _resolve(checker: Checker, sid: str, spec: StationSpec) -> InstrumentFacts | None:
    where: KeyPath = ("stations", sid)
    named = spec.instrument
    if isinstance(named, dict):
        facts, problems = check_profile(
            named,
            checker.marks,
            base=checker.base,
            prefix=(*where, "instrument"),
            calibration=read_calibration,
        )
        checker.problems += problems
        return facts
    if named is not None and names_a_file(named):
        return _profile_file(checker, (*where, "instrument"), checker.base / named)
    name = named or sid
    instrument = checker.instruments.get(name)
    if instrument is None:
        known = ", ".join(checker.instruments)
        checker.add(
            (*where, "instrument") if named else where,
            f"no instrument named {name!r}; known: {known or '(none)'}",
            f"name the station (or its 'instrument') one of: {known}; or give a profile file "
            "(a path ending in .yaml, relative to the campaign file) or a profile inline",
            key=named is None,
        )
    return instrument


def _profile_file(checker: Checker, path: KeyPath, file: Path) -> ProfileFacts | None:
    if not file.is_file():
        # the campaign names a file that is not there: its line in the campaign says where
        checker.add(
            path,
            f"no instrument profile at {str(file.resolve())!r}",
            "give a profile file's path relative to the campaign file, a known instrument's name, "
            "or the profile inline",
        )
        return None
    try:
        return read_profile(file, calibration=read_calibration)
    except InstrumentProfileError as exc:
        checker.problems += exc.problems
        return None


__all__ = ["LazyInstruments", "names_a_file", "on_twin", "read_calibration", "station_instrument"]
