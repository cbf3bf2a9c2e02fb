"""The agent daemon a daemon file describes, wired to its campaign, the data store and the stations.

A daemon file (YAML) names the campaign and how to reach the stations::

    campaign: demo.yaml           # relative to this file
    stations:                     # optional: stations started with `tandem station start` are found
      saxs: {control_addr: "tcp://127.0.0.1:60615"}
    queue_depth: 2                # items queued or running per station
    approval: false               # true: every suggestion waits for `tandem agent approve`
    max_attempts: 2               # a failed sample is tried once more, then recorded failed
    poll_interval_s: 1.0

The data store comes from `TANDEM_TILED_URI` and `TANDEM_TILED_API_KEY`. When a station's samples
keep failing it is set aside as the campaign file's `faults` section says (see `tandem.breaker`).
`build_daemon` puts the parts together: the campaign's agent, its rules
(`tandem.campaign.daemon_rules`), its results and ledger (`tandem.campaign.daemon_records`)
and each station's RE Manager. Heavy parts are imported when a daemon is built, not with
this module, which the CLI imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.campaign.daemon_records import CampaignResults, LedgerRecorder
from tandem.campaign.daemon_rules import campaign_validator, sample_plan_request, stop_criteria
from tandem.errors import TandemError
from tandem.files import read_text

if TYPE_CHECKING:
    from tandem.agents.daemon import AgentDaemon


class DaemonConfigError(TandemError, ValueError):
    """A daemon file that cannot run: what is wrong and where."""


class StationAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    control_addr: str = Field(pattern=r"^tcp://")
    info_addr: str | None = Field(default=None, pattern=r"^tcp://")


class DaemonFile(BaseModel):
    """The daemon file, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign: Path
    #: stations by id; those left out are looked up among the stations `tandem station start` recorded
    stations: dict[str, StationAddress] = Field(default_factory=dict)
    state_dir: Path | None = None
    queue_depth: int = Field(default=2, ge=1, le=100)
    poll_interval_s: float = Field(default=1.0, gt=0, le=600)
    approval: bool = False
    max_attempts: int = Field(default=1, ge=1, le=10)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    set_aside_after_s: float = Field(default=10.0, gt=0)
    #: samples a station may take in all (its share of the campaign); no limit of its own by default
    max_samples_per_station: int | None = Field(default=None, ge=1)
    user_group: str = "agent"


def load_daemon_file(path: Path) -> tuple[DaemonFile, Path]:
    """The daemon file and the campaign file it names (resolved against the daemon file's folder)."""
    try:
        data = yaml.safe_load(read_text(path))
    except (OSError, yaml.YAMLError) as exc:
        raise DaemonConfigError(f"{path}: cannot read the daemon file: {exc}") from None
    try:
        spec = DaemonFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise DaemonConfigError(f"{path}: {problems} (keys: {', '.join(DaemonFile.model_fields)})") from None
    campaign = spec.campaign if spec.campaign.is_absolute() else (path.parent / spec.campaign)
    return spec, campaign.resolve()


def data_store_client() -> Any:
    """The data store of `TANDEM_TILED_URI` and `TANDEM_TILED_API_KEY`, connected."""
    from tandem.tiled_endpoint import TiledSettings, attach

    settings = TiledSettings()
    if settings.uri is None or settings.api_key is None:
        raise DaemonConfigError(
            "no data store: set TANDEM_TILED_URI and TANDEM_TILED_API_KEY (`tandem data serve` prints them)"
        )
    return attach(settings.uri, settings.api_key.get_secret_value()).connect()


def build_daemon(config: Path, *, client: Any | None = None) -> AgentDaemon:
    """The daemon a daemon file describes, connected to Tiled and to every station's RE Manager."""
    from tandem.agents.daemon import AgentDaemon
    from tandem.agents.daemon_settings import DaemonSettings
    from tandem.agents.journal import Journal
    from tandem.agents.station_queue import QueueServerStation
    from tandem.campaign.agent_factory import build_agent
    from tandem.campaign.config import load_campaign
    from tandem.campaign.station_state import read_state

    spec, campaign_path = load_daemon_file(config)
    campaign = load_campaign(campaign_path)
    recorded = read_state(spec.state_dir).stations
    queues = {}
    for sid in campaign.stations:
        address = spec.stations.get(sid)
        if address is None and sid in recorded:
            address = StationAddress(
                control_addr=recorded[sid].control_addr, info_addr=recorded[sid].info_addr
            )
        if address is None:
            continue
        queues[sid] = QueueServerStation(
            sid, address.control_addr, info_addr=address.info_addr, user_group=spec.user_group
        )
    unknown = sorted(set(spec.stations) - set(campaign.stations))
    if unknown or not queues:
        raise DaemonConfigError(
            f"{config}: "
            + (f"stations {', '.join(unknown)} are not in the campaign; " if unknown else "")
            + (
                "no station to feed: start one with `tandem station start` or list it under stations"
                if not queues
                else ""
            )
        )
    client = client if client is not None else data_store_client()
    agent = build_agent(campaign)
    region = agent.region

    def restore(record: Any, observations: Any) -> Any:
        return type(agent).from_state(record.agent_state, region, observations)  # type: ignore[attr-defined]

    settings = DaemonSettings(
        queue_depth=spec.queue_depth,
        poll_interval_s=spec.poll_interval_s,
        approval=spec.approval,
        max_attempts=spec.max_attempts,
        backoff_initial_s=spec.backoff_initial_s,
        backoff_max_s=spec.backoff_max_s,
        set_aside_after_s=spec.set_aside_after_s,
        max_samples_per_station=spec.max_samples_per_station,
        breaker=campaign.faults.breaker_settings(),
    )
    return AgentDaemon(
        agent,
        campaign.id,
        journal=Journal(client, campaign.id, campaign.to_dict()),
        results=CampaignResults(client, campaign),
        queues=queues,
        plan_for=lambda suggestion, sample_uid: sample_plan_request(campaign, suggestion, sample_uid),
        validate=campaign_validator(campaign),
        stop_criteria=stop_criteria(campaign),
        settings=settings,
        restore_agent=restore,
        recorder=LedgerRecorder(client, campaign),
    )
