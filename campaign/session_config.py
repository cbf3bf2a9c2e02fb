"""What a station session is opened with: its settings, its EPICS prefixes and its campaign.

`SessionSettings` reads the environment the IPython profile and the queue-server
startup are given; `EpicsPrefixes` says where a station's hardware answers on
Channel Access (a prefix given, else its instrument profile's, else tandem's
default); `resolve_campaign` turns what was named (a campaign, a file, or
nothing: the bundled demo) into a loaded campaign, and `check_backend` refuses a
real station opened on the twin. A `SessionConfigError` says what is wrong before
anything starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.config import Campaign, CampaignStation, load_campaign
from tandem.errors import TandemError
from tandem.instrument_profile import EpicsSpec, ProfileFacts, default_prefixes


class SessionConfigError(TandemError, ValueError):
    """A station session that cannot be opened as configured; nothing was started."""


@dataclass(frozen=True)
class EpicsPrefixes:
    """Where a station's hardware answers on Channel Access."""

    station: str
    cell_loader: str
    #: where each came from (`given`, `profile <name>`, `default`), for the banner
    origins: tuple[str, str] = field(default=("given", "given"), compare=False)

    @classmethod
    def for_station(
        cls,
        station_id: str,
        *,
        station: str | None = None,
        cell_loader: str | None = None,
        profile: ProfileFacts | None = None,
    ) -> EpicsPrefixes:
        """Each prefix: the one given (a flag or the environment), else the station's instrument
        profile's (`epics:` in its file), else the tandem default (`TANDEM:SAXS:`, `TANDEM:SAXS:CL:`)."""
        stated = profile.profile.epics if profile is not None else EpicsSpec()
        chosen = (
            _first(station, stated.station_prefix, profile),
            _first(cell_loader, stated.cell_loader_prefix, profile),
        )
        defaults = default_prefixes(station_id)
        return cls(
            station=chosen[0][0] or defaults[0],
            cell_loader=chosen[1][0] or defaults[1],
            origins=(chosen[0][1], chosen[1][1]),
        )

    def describe(self) -> str:
        """Both prefixes and where each came from, in a line."""
        return (
            f"station at {self.station} ({self.origins[0]}), "
            f"cell loader at {self.cell_loader} ({self.origins[1]})"
        )


def _first(given: str | None, in_profile: str | None, profile: ProfileFacts | None) -> tuple[str | None, str]:
    if given:
        return given, "given"
    if in_profile and profile is not None:
        return in_profile, f"profile {profile.station}"
    return None, "default"


def station_profile(station: CampaignStation) -> ProfileFacts | None:
    """The instrument profile the station names (file or inline), or None for the twin's instruments."""
    return station.instrument if isinstance(station.instrument, ProfileFacts) else None


def on_real_line(station: CampaignStation) -> bool:
    """Whether the station's profile says `backend: epics`: a real line, with a robot of its own."""
    profile = station_profile(station)
    return profile is not None and profile.backend == "epics"


def check_backend(campaign: Campaign, station_id: str, *, sim: bool) -> None:
    """Refuse `station_id` where it cannot be opened: absent from the campaign, or a real line on the twin."""
    if station_id not in campaign.stations:
        raise SessionConfigError(
            f"station {station_id!r} is not in campaign {campaign.id!r}; "
            f"its stations are {', '.join(sorted(campaign.stations))}"
        )
    profile = station_profile(campaign.stations[station_id])
    if sim and profile is not None and profile.backend == "epics":
        raise SessionConfigError(
            f"station {station_id!r} is a real line: its instrument profile "
            f"{profile.station!r} says backend: epics, which the digital twin cannot "
            "simulate; open it with --epics (TANDEM_SIM=false), or name a profile with backend: twin"
        )


class SessionSettings(BaseModel):
    """A session as the environment configures it (the IPython profile reads these).

    `TANDEM_STATION` (required), `TANDEM_SIM` (true: the twin; false: EPICS),
    `TANDEM_CAMPAIGN` (a campaign file; the bundled demo by default), `TANDEM_DATA`
    (folder of the Tiled store and plots), `TANDEM_STATION_PREFIX` and
    `TANDEM_CELL_LOADER_PREFIX` (EPICS); Tiled from `TANDEM_TILED_URI` and
    `TANDEM_TILED_API_KEY` (see `tandem.tiled_endpoint.TiledSettings`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    station: str = Field(min_length=1)
    sim: bool = True
    campaign: Path | None = None
    data: Path = Path("tandem-data")
    station_prefix: str | None = None
    cell_loader_prefix: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SessionSettings:
        """Settings from `environ` (default `os.environ`); a `SessionConfigError` says what is wrong."""
        env = os.environ if environ is None else environ
        values = {
            name: env[f"TANDEM_{name.upper()}"]
            for name in cls.model_fields
            if f"TANDEM_{name.upper()}" in env
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"TANDEM_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors() if e["loc"]
            )
            raise SessionConfigError(
                f"the station session is misconfigured: {problems} (set TANDEM_STATION to a station "
                "of the campaign, for example `saxs`; TANDEM_SIM to true or false)"
            ) from None


def resolve_campaign(campaign: Campaign | str | Path | None) -> Campaign:
    """A loaded campaign: the one given, the file named, or the bundled demo."""
    if isinstance(campaign, Campaign):
        return campaign
    if campaign is None:
        if not DEMO_CAMPAIGN.exists():
            raise SessionConfigError(
                f"no campaign file given and the bundled demo ({DEMO_CAMPAIGN}) is not there; "
                "pass --campaign FILE or set TANDEM_CAMPAIGN"
            )
        campaign = DEMO_CAMPAIGN
    return load_campaign(campaign)
