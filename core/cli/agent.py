"""`tandem agent run|status|approve|deny`: the autonomous agent daemon and the scientist's say over it.

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
"""

from __future__ import annotations

import datetime
import getpass
import logging
import math
import os
import signal
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.cli.app import app
from tandem.errors import TandemError
from tandem.files import read_text

if TYPE_CHECKING:
    from tandem.agents.daemon import (
        AgentDaemon,
        Attempt,
        Entry,
        Journal,
        PlanRequest,
        StopCriterion,
        Validator,
    )
    from tandem.campaign.config import Campaign
    from tandem.observations import Observation
    from tandem.suggestions import Suggestion

agent_app = typer.Typer(
    name="agent",
    help="The agent daemon: feeds the stations' queue servers with the agent's next samples.",
    no_args_is_help=True,
)
app.add_typer(agent_app)

logger = logging.getLogger(__name__)

#: `tandem agent run` stopped because every station was set aside for failing samples (as
#: `tandem campaign` exits 3 when it stops on failures)
STATIONS_SET_ASIDE_EXIT_CODE = 3


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


# --- wiring the daemon to a campaign ----------------------------------------------------------


def campaign_validator(campaign: Campaign) -> Validator:
    """Check a suggestion against the campaign: station, bounds, constraints, scan limits, stocks."""
    from tandem.campaign.agent_factory import stock_check

    stocks = stock_check(campaign)
    tolerance = campaign.space.tolerance

    def composition(suggestion: Suggestion) -> str | None:
        fractions = {n: suggestion.target.mass_fraction(n) for n in campaign.solutes}
        for name, (lo, hi) in campaign.space.bounds.items():
            value = fractions[name]
            if not (math.isfinite(value) and lo - tolerance <= value <= hi + tolerance):
                return f"{name} = {value:.4g} lies outside its bounds [{lo:g}, {hi:g}]"
        return campaign.constraint_violation(fractions)

    def scan(suggestion: Suggestion) -> str | None:
        station, scan = campaign.stations[suggestion.station], suggestion.scan
        lo_s, hi_s = station.exposure_range_s
        t_lo, t_hi = station.instrument.temperature_limits_c
        if not lo_s <= scan.exposure_s <= hi_s:
            return f"exposure {scan.exposure_s:g} s is outside {station.id}'s [{lo_s:g}, {hi_s:g}] s"
        if scan.configuration not in station.configurations:
            allowed = ", ".join(station.configurations)
            return f"configuration {scan.configuration!r} is not allowed at {station.id} ({allowed})"
        if scan.temperature_c is not None and not t_lo <= scan.temperature_c <= t_hi:
            return f"{scan.temperature_c:g} °C is outside {station.id}'s [{t_lo:g}, {t_hi:g}] °C"
        return None

    def validate(suggestion: Suggestion) -> str | None:
        if suggestion.station not in campaign.stations:
            return f"station {suggestion.station!r} is not in the campaign ({', '.join(campaign.stations)})"
        return composition(suggestion) or scan(suggestion) or stocks(suggestion.station, suggestion.target)

    return validate


def sample_plan_request(campaign: Campaign, suggestion: Suggestion, sample_uid: str) -> PlanRequest:
    """The `sample_plan` item for a suggestion: this station's devices by name, JSON arguments only."""
    from tandem.agents.daemon import PlanRequest

    sid = suggestion.station
    station = campaign.stations[sid]
    target = {n: float(suggestion.target.mass_fraction(n)) for n in campaign.solutes}
    volume = float(station.spec.sample_volume_ul)
    scan = suggestion.scan
    return PlanRequest(
        "sample_plan",
        (sid, f"{sid}_liquid_handler", f"{sid}_cell_loader", target, float(scan.exposure_s)),
        {
            "configuration": scan.configuration,
            "temperature_c": scan.temperature_c,
            "n_frames": int(scan.n_frames),
            "balance": station.solvent.name,
            "campaign_id": campaign.id,
            "decision_uid": suggestion.decision_uid,
            "sample_uid": sample_uid,
            "total_volume_ul": volume,
            "load_volume_ul": volume / 2,
        },
    )


def stop_criteria(campaign: Campaign) -> list[StopCriterion]:
    """The campaign's stop criteria, as the daemon checks them before each new suggestion."""
    from tandem.agents.daemon import Progress

    stop = campaign.stop
    out: list[StopCriterion] = []
    if stop.max_samples is not None:
        budget = stop.max_samples

        def samples(p: Progress) -> str | None:
            return f"sample budget reached ({budget})" if p.measured + p.open >= budget else None

        out.append(samples)
    if stop.max_station_hours is not None:
        hours = stop.max_station_hours

        def beamtime(p: Progress) -> str | None:
            spent: dict[str, float] = {}
            for o in p.observations:
                if o.finished_at_s is not None:
                    spent[o.station] = max(spent.get(o.station, 0.0), o.finished_at_s)
            total = sum(spent.values()) / 3600
            return f"beamtime budget reached ({total:.1f} of {hours:g} h)" if total >= hours else None

        out.append(beamtime)
    if stop.target_confidence is not None:
        goal = stop.target_confidence
        grid = campaign.grid()

        def confidence(p: Progress) -> str | None:
            if not p.observations:
                return None
            prediction = p.agent.predict(grid)
            if prediction.probabilities is None or not len(prediction.probabilities):
                return None
            mean = float(prediction.probabilities.max(axis=1).mean())
            return f"map confidence {mean:.3f} reached the target {goal:g}" if mean >= goal else None

        out.append(confidence)
    return out


class CampaignResults:
    """A campaign's analysed results as its agent sees them (absent components at zero, edges clipped),
    under the phase names phase finding gives them across the campaign (`tandem.campaign.phases`).

    Each call reads the records' metadata, and the curve of each run not seen before; phase events
    and the phases' state go to the campaign ledger. A renamed earlier run comes back with its new
    name: the daemon re-tells its agent.
    """

    def __init__(self, client: Any, campaign: Campaign) -> None:
        from tandem.analysis.store import AnalysisStore
        from tandem.campaign.ledger import Ledger
        from tandem.campaign.phases import CampaignPhases

        self.store = AnalysisStore(client)
        self.campaign = campaign
        ledger = Ledger.create(client, campaign.id, campaign.to_dict())
        self.phases = CampaignPhases(None, ledger.record_phases)
        self.phases.restore(dict(ledger.phase_state()))
        self._observations: dict[str, Observation] = {}

    def observations(self, campaign_id: str) -> list[Observation]:
        from tandem.campaign.history import agent_observation

        records = self.store.records(campaign_id=campaign_id, with_curve=False)
        new = []
        for r in records:
            if r.run_uid in self._observations:
                continue
            full = self.store.get(r.run_uid, with_curve=True) if r.ok else r
            record = full if full is not None else r
            new.append((record, agent_observation(self.campaign, record, record.finished_at_s)))
        for obs in self.phases.learn(new) if new else []:
            self._observations[obs.run_uid] = obs
        labels = self.phases.finding.labels
        for uid, obs in self._observations.items():
            name = labels.get(uid)
            if name is not None and obs.label != name:
                self._observations[uid] = replace(obs, label=name, label_probabilities={name: 1.0})
        return list(self._observations.values())


class LedgerRecorder:
    """Writes each sample the daemon finished into the campaign ledger, which `tandem report` reads.

    The daemon's journal is per decision; the ledger is per sample, as the in-process
    runner writes it. A sample's station times are its run's start and stop, in
    wall-clock seconds since the campaign began (a real station has no other clock);
    without a closed run they are left out.
    """

    def __init__(self, client: Any, campaign: Campaign) -> None:
        from tandem.campaign.ledger import Ledger
        from tandem.catalog import Catalog

        self.ledger = Ledger.create(client, campaign.id, campaign.to_dict())
        self.catalog = Catalog(client)
        self.began = float(self.ledger.node.metadata.get("created", 0.0))

    def _run_times(self, run_uid: str | None) -> tuple[float | None, float | None]:
        from tandem.catalog import RunNotFoundError

        if run_uid is None:
            return None, None
        try:
            run = self.catalog.run(run_uid)
        except RunNotFoundError:
            return None, None
        stop = run.stop or {}
        end = stop.get("time")
        return run.time - self.began, None if end is None else float(end) - self.began

    def recorded(self) -> set[str]:
        return {str(key) for key in self.ledger.samples}

    def record(self, entry: Entry, attempt: Attempt) -> None:
        from tandem.campaign.ledger import LedgerEntry, SampleStatus

        start_s, end_s = self._run_times(attempt.run_uid)
        self.ledger.put(
            LedgerEntry(
                sample_uid=attempt.sample_uid,
                campaign_id=entry.campaign_id,
                station=entry.station,
                decision_uid=entry.decision_uid,
                target=dict(entry.target),
                scan=dict(entry.scan),
                status=SampleStatus.MEASURED if attempt.outcome == "completed" else SampleStatus.FAILED,
                run_uid=attempt.run_uid,
                reason=attempt.reason,
                start_s=start_s,
                end_s=end_s,
                decided_at=attempt.queued_at,
            )
        )


def _client() -> Any:
    from tandem.tiled_server import TiledSettings, attach

    settings = TiledSettings()
    if settings.uri is None or settings.api_key is None:
        raise DaemonConfigError(
            "no data store: set TANDEM_TILED_URI and TANDEM_TILED_API_KEY (`tandem serve` prints them)"
        )
    return attach(settings.uri, settings.api_key.get_secret_value()).connect()


def build_daemon(config: Path, *, client: Any | None = None) -> AgentDaemon:
    """The daemon a daemon file describes, connected to Tiled and to every station's RE Manager."""
    from tandem.agents.daemon import AgentDaemon, DaemonSettings, Journal, QueueServerStation
    from tandem.campaign.agent_factory import build_agent
    from tandem.campaign.config import load_campaign
    from tandem.campaign.processes import read_state

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
    client = client if client is not None else _client()
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


# --- commands ---------------------------------------------------------------------------------


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@agent_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The daemon file (YAML).")],
    *,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every decision.")] = False,
) -> None:
    """Run the agent daemon until the campaign's stop criteria are met (or SIGTERM / Ctrl-C).

    Restart it at any time, also after kill -9: it rebuilds its state from Tiled and the
    queue histories, and neither repeats nor loses a sample. SIGTERM finishes the current round,
    records the daemon's state and exits; items already queued run on.

    A station whose samples keep failing is set aside (the campaign file's `faults`), then tried
    again with one sample after a pause. Exit status: 0 when the campaign is done or the daemon was
    stopped by a signal; 1 when it cannot start; 3 when every station was set aside at once (the
    reason names each station's last failure; mend them and run it again).
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        daemon = build_daemon(config)
    except TandemError as error:
        raise _fail(error) from error
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    typer.echo(f"agent daemon for campaign {daemon.campaign_id}: stations {', '.join(daemon.queues)}")
    outcome = daemon.run(stop)
    typer.echo(outcome)
    if daemon.stopped_on_faults:
        raise typer.Exit(STATIONS_SET_ASIDE_EXIT_CODE)


def _journal(campaign_id: str | None, config: Path | None) -> Journal:
    from tandem.agents.journal import CAMPAIGNS, Journal
    from tandem.campaign.config import load_campaign

    client = _client()
    if campaign_id is None and config is not None:
        _spec, campaign_path = load_daemon_file(config)
        campaign_id = load_campaign(campaign_path).id
    if campaign_id is None:
        known = list(client[CAMPAIGNS]) if CAMPAIGNS in client else []
        if len(known) != 1:
            raise DaemonConfigError(
                "name the campaign with --campaign ID or the daemon file; "
                f"campaigns in the store: {', '.join(known) or 'none'}"
            )
        campaign_id = known[0]
    journal = Journal.find(client, campaign_id)
    if journal is None:
        raise DaemonConfigError(f"the data store has no campaign {campaign_id!r}")
    return journal


CampaignOption = Annotated[
    str | None, typer.Option("--campaign", help="Campaign id (default: the only one in the store).")
]


@agent_app.command("status")
def status(
    config: Annotated[
        Path | None, typer.Argument(help="The daemon file (or give --campaign).", show_default=False)
    ] = None,
    *,
    campaign: CampaignOption = None,
) -> None:
    """What the daemon is doing (from its heartbeat in Tiled) and what it has queued or left waiting."""
    from tandem.agents.daemon import EntryStatus

    try:
        journal = _journal(campaign, config)
    except TandemError as error:
        raise _fail(error) from error
    beat = journal.last_heartbeat()
    if beat is None:
        typer.echo(f"campaign {journal.campaign_id}: no daemon has run yet")
    else:
        typer.echo(
            f"campaign {journal.campaign_id}: {beat.get('state')} "
            f"(pid {beat.get('pid')} on {beat.get('host')}, last seen {beat.get('updated')})"
        )
        typer.echo(
            f"  measured {beat.get('measured')}, failed {beat.get('failed')}, open {beat.get('open')}, "
            f"results read {beat.get('results')}"
        )
        for sid, s in (beat.get("stations") or {}).items():
            health = (
                "answering"
                if s.get("answering")
                else ("SET ASIDE" if s.get("set_aside") else "not answering")
            )
            typer.echo(
                f"  {sid}: {health}, {s.get('open_decisions')} open, running {s.get('running') or '-'}"
            )
            failing = s.get("failing")
            if failing:
                typer.echo(
                    f"    SET ASIDE since {failing.get('since')} after {failing.get('failures_in_a_row')} "
                    f"failed samples in a row; one trial sample from {failing.get('until')}; "
                    f"last failure: {failing.get('last_failure')}"
                )
    entries = journal.entries()
    open_entries = [e for e in entries if e.status.open]
    if open_entries:
        typer.echo("open decisions:")
    for e in open_entries:
        target = ", ".join(f"{k} {v:.4f}" for k, v in e.target.items())
        typer.echo(
            f"  {e.decision_uid}  {e.station:5s} {e.status.value:18s} {target}  {e.scan.get('exposure_s')} s"
        )
    waiting = sum(e.status is EntryStatus.AWAITING_APPROVAL for e in entries)
    if waiting:
        typer.echo(
            f"{waiting} suggestion(s) await approval: tandem agent approve UID / tandem agent deny UID"
        )


@agent_app.command("stop")
def stop(
    config: Annotated[
        Path | None, typer.Argument(help="The daemon file (or give --campaign).", show_default=False)
    ] = None,
    *,
    campaign: CampaignOption = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait for the daemon to exit.")
    ] = 120.0,
) -> None:
    """Stop the campaign's agent daemon, found by its heartbeat in Tiled (no PID to look up).

    It is sent SIGTERM, as `tandem agent run` expects: it finishes its round, records its state and
    exits; items already queued run on, and a later `tandem agent run` picks up from the journal.
    Only a daemon on this machine can be stopped from here.
    """
    from tandem.child_processes import pid_alive

    try:
        journal = _journal(campaign, config)
    except TandemError as error:
        raise _fail(error) from error
    beat = journal.last_heartbeat() or {}
    pid, host = beat.get("pid"), beat.get("host")
    if isinstance(pid, int) and host != socket.gethostname():
        raise _fail(
            DaemonConfigError(
                f"the daemon of {journal.campaign_id} runs on {host} (pid {pid}); stop it there"
            )
        )
    if not isinstance(pid, int) or not pid_alive(pid):
        typer.echo(
            f"no agent daemon of campaign {journal.campaign_id} is running here "
            f"(last state: {beat.get('state', 'never ran')})"
        )
        return
    if not _is_agent_daemon(pid):
        raise _fail(
            DaemonConfigError(
                f"pid {pid} of the last heartbeat is no longer a tandem agent daemon "
                "(the daemon is gone and its pid was reused); nothing was stopped"
            )
        )
    os.kill(pid, signal.SIGTERM)
    typer.echo(f"asked the agent daemon of {journal.campaign_id} (pid {pid}) to stop; waiting…")
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise _fail(DaemonConfigError(f"the daemon (pid {pid}) has not exited after {timeout_s:g} s"))
        time.sleep(0.2)
    typer.echo("stopped; queued items run on, and `tandem agent run` picks up from the journal")


def _is_agent_daemon(pid: int) -> bool:
    """Whether `pid` runs `tandem agent run` (a heartbeat's pid may have been reused since)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc to ask (not Linux): trust the heartbeat
    words = [a.decode(errors="replace") for a in argv]
    return "agent" in words and "run" in words[words.index("agent") :]


def _verdict(decision_uid: str, approved: bool, campaign: str | None, note: str) -> None:
    try:
        journal = _journal(campaign, None)
        entry = journal.set_verdict(decision_uid, approved, by=getpass.getuser(), note=note)
    except TandemError as error:
        raise _fail(error) from error
    when = datetime.datetime.now().isoformat(timespec="seconds")
    typer.echo(
        f"{entry.decision_uid} {entry.approval['verdict']} at {when} (the daemon acts on it next round)"
    )


DecisionArgument = Annotated[str, typer.Argument(help="Decision uid of a suggestion awaiting approval.")]
NoteOption = Annotated[str, typer.Option("--note", help="Why, for the record.")]


def _pause(paused: bool, config: Path | None, campaign: str | None, note: str) -> None:
    try:
        journal = _journal(campaign, config)
        journal.set_paused(paused, by=getpass.getuser(), note=note)
    except TandemError as error:
        raise _fail(error) from error
    what = "paused: no new decisions" if paused else "resumed: decisions go on"
    typer.echo(f"campaign {journal.campaign_id}: {what} (the daemon acts on it next round)")


DaemonFileArgument = Annotated[
    Path | None, typer.Argument(help="The daemon file (or give --campaign).", show_default=False)
]


@agent_app.command("pause")
def pause(
    config: DaemonFileArgument = None, *, campaign: CampaignOption = None, note: NoteOption = ""
) -> None:
    """Pause the agent daemon's decisions (recorded in Tiled): it keeps reading results and recording
    them, items already queued run on, but nothing new is queued until `tandem agent resume`."""
    _pause(True, config, campaign, note)


@agent_app.command("resume")
def resume(
    config: DaemonFileArgument = None, *, campaign: CampaignOption = None, note: NoteOption = ""
) -> None:
    """Let a paused agent daemon decide again, from its next round."""
    _pause(False, config, campaign, note)


@agent_app.command("approve")
def approve(
    decision_uid: DecisionArgument,
    *,
    campaign: CampaignOption = None,
    note: NoteOption = "",
) -> None:
    """Let a suggestion that waits for approval go to its station's queue (recorded in Tiled)."""
    _verdict(decision_uid, True, campaign, note)


@agent_app.command("deny")
def deny(
    decision_uid: DecisionArgument,
    *,
    campaign: CampaignOption = None,
    note: NoteOption = "",
) -> None:
    """Refuse a suggestion that waits for approval; it is never queued (recorded in Tiled)."""
    _verdict(decision_uid, False, campaign, note)
