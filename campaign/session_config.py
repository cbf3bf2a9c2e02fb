"""What a station session is opened with: its settings, its EPICS prefixes and its campaign.

`SessionSettings` reads the environment the IPython profile and the queue-server
startup are given; `EpicsPrefixes` says where a station's hardware answers on
Channel Access; `resolve_campaign` turns what was named (a campaign, a file, or
nothing: the bundled demo) into a loaded campaign. A `SessionConfigError` says
what is wrong before anything starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.config import Campaign, load_campaign
from tandem.campaign.rig import CELL_LOADER_PREFIX
from tandem.errors import TandemError

#: the station's PV prefix on the EPICS backend when none is configured
STATION_PREFIX = "TANDEM:{station}:"


class SessionConfigError(TandemError, ValueError):
    """A station session that cannot be opened as configured; nothing was started."""


@dataclass(frozen=True)
class EpicsPrefixes:
    """Where a station's hardware answers on Channel Access."""

    station: str
    cell_loader: str

    @classmethod
    def for_station(
        cls, station_id: str, *, station: str | None = None, cell_loader: str | None = None
    ) -> EpicsPrefixes:
        """The given prefixes, else the tandem defaults (`TANDEM:SAXS:`, `TANDEM:SAXS:CL:`)."""
        upper = station_id.upper()
        return cls(
            station=station or STATION_PREFIX.format(station=upper),
            cell_loader=cell_loader or CELL_LOADER_PREFIX.format(station=upper),
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
