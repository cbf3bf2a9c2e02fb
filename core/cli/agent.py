"""`tandem agent run|status|stop|pause|resume|approve|deny`: the agent daemon and the scientist's say over it.

The commands are thin: the daemon is built from its daemon file by
`tandem.campaign.daemon_wiring` (which describes the file), and a running daemon is reached
through its journal in Tiled by `tandem.campaign.daemon_control`; here are the arguments,
the signals, what is printed and the exit status.
"""

from __future__ import annotations

import datetime
import getpass
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from tandem.campaign.daemon_control import find_journal, signal_daemon, wait_for_exit
from tandem.campaign.daemon_wiring import build_daemon
from tandem.cli.app import app
from tandem.errors import TandemError

agent_app = typer.Typer(
    name="agent",
    help="The agent daemon: feeds the stations' queue servers with the agent's next samples.",
    no_args_is_help=True,
)
app.add_typer(agent_app)

#: `tandem agent run` stopped because every station was set aside for failing samples (as
#: `tandem campaign` exits 3 when it stops on failures)
STATIONS_SET_ASIDE_EXIT_CODE = 3


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
    from tandem.agents.journal import EntryStatus

    try:
        journal = find_journal(campaign, config)
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
    try:
        journal = find_journal(campaign, config)
        beat = journal.last_heartbeat() or {}
        pid = signal_daemon(journal.campaign_id, beat)
    except TandemError as error:
        raise _fail(error) from error
    if pid is None:
        typer.echo(
            f"no agent daemon of campaign {journal.campaign_id} is running here "
            f"(last state: {beat.get('state', 'never ran')})"
        )
        return
    typer.echo(f"asked the agent daemon of {journal.campaign_id} (pid {pid}) to stop; waiting…")
    try:
        wait_for_exit(pid, timeout_s)
    except TandemError as error:
        raise _fail(error) from error
    typer.echo("stopped; queued items run on, and `tandem agent run` picks up from the journal")


def _verdict(decision_uid: str, approved: bool, campaign: str | None, note: str) -> None:
    try:
        journal = find_journal(campaign, None)
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
        journal = find_journal(campaign, config)
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
