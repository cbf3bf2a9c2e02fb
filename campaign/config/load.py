"""Loading a campaign: `load_campaign` (a file) and `load_campaign_data` (data, such as a stored record).

The order is the whole of it: the YAML with its marks, whole numbers that cannot
be stored, the schema, then every check the schema cannot make (components and
space, each station, what the stocks reach, the agent, the stop criteria, the
twin). Every problem found is raised together in one `CampaignConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tandem.file_problems import Problem
from tandem.files import read_text
from tandem.instrument import InstrumentFacts
from tandem.schema_problems import huge_integers, schema_problem
from tandem.yaml_marks import Marks

from .agent_checks import check_agent, check_stop, check_twin
from .campaign import Campaign, CampaignStation
from .checker import Checker
from .problems import CampaignConfigError
from .profiles import LazyInstruments, on_twin
from .schema import CampaignFile
from .space_checks import check_components, check_space
from .station_checks import check_reach, check_station
from .twin import twin_instruments
from .yaml_marks import read_yaml


def load_campaign(path: str | Path, *, instruments: Mapping[str, InstrumentFacts] | None = None) -> Campaign:
    """Read and check a campaign file; raise `CampaignConfigError` with every problem found.

    Its stations name their instruments among `instruments` (by name); None: the twin's.
    """
    path = Path(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise CampaignConfigError(
            [
                Problem(
                    str(path), "", f"cannot read the campaign file: {exc.strerror or exc}", "check the path"
                )
            ]
        ) from None
    data, marks = read_yaml(text, str(path))
    return _build(data, marks, base=path.parent, source_path=path, instruments=instruments)


def load_campaign_data(
    data: Mapping[str, Any],
    *,
    source: str = "campaign",
    base: Path | None = None,
    instruments: Mapping[str, InstrumentFacts] | None = None,
) -> Campaign:
    """Check a campaign given as data (for example `Campaign.to_dict()` read back from Tiled).

    `instruments` as for `load_campaign` (None: the twin's).
    """
    return _build(
        dict(data), Marks(source), base=base or Path.cwd(), source_path=None, instruments=instruments
    )


def _build(
    data: Any,
    marks: Marks,
    *,
    base: Path,
    source_path: Path | None,
    instruments: Mapping[str, InstrumentFacts] | None,
) -> Campaign:
    if not isinstance(data, dict):
        raise CampaignConfigError(
            [
                marks.problem(
                    (),
                    "a campaign file is a mapping of keys (id, space, stations, agent, stop, ...)",
                    "see campaign/demo/demo.yaml",
                )
            ]
        )
    huge = huge_integers(data, (), marks)
    try:
        spec = CampaignFile.model_validate(data)
    except ValidationError as exc:
        problems = [schema_problem(err, marks, CampaignFile) for err in exc.errors()]
        raise CampaignConfigError(_merged(problems, huge)) from None
    if huge:
        raise CampaignConfigError(huge)
    # the twin's instruments are made only if a station names one (a profile's station needs none)
    checker = Checker(
        spec, marks, base, LazyInstruments(twin_instruments) if instruments is None else instruments
    )
    campaign = _check(checker, source_path)
    if checker.problems:
        raise CampaignConfigError(checker.problems)
    assert campaign is not None
    return campaign


def _check(checker: Checker, source_path: Path | None) -> Campaign | None:
    """Every check the schema cannot make; a check that needs a sound part runs only when it is."""
    components = check_components(checker)
    if components is None:
        return None
    space_ok = check_space(checker, components)
    stations: dict[str, CampaignStation[InstrumentFacts]] = {}
    for sid, station_spec in checker.spec.stations.items():
        station = check_station(checker, sid, station_spec, components)
        if station is not None:
            stations[sid] = station
    if space_ok and len(stations) == len(checker.spec.stations):
        check_reach(checker, components, stations)
    check_agent(checker)
    check_stop(checker)
    campaign = Campaign(checker.spec, components, stations, source_path)
    # the twin's truth is checked only when a station runs on the twin (not an EPICS station's profile)
    if space_ok and any(on_twin(s.instrument) for s in stations.values()):
        check_twin(checker, campaign)
    return None if checker.problems else campaign


def _merged(first: Sequence[Problem], then: Sequence[Problem]) -> list[Problem]:
    """`first`, then the problems of `then` at a key `first` does not already name."""
    named = {p.key for p in first}
    return [*first, *(p for p in then if p.key not in named)]


__all__ = ["load_campaign", "load_campaign_data"]
