"""`tandem campaign run|resume|report|demo`: closed-loop campaigns and their reports."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.cli.app import app, attached_store
from tandem.cli.output import console as make_console
from tandem.cli.output import esc
from tandem.errors import TandemError

if TYPE_CHECKING:
    from tandem.campaign.report import Report
    from tandem.campaign.runner_accounting import Progress as CampaignProgress
    from tandem.tiled_endpoint import TiledEndpoint

console = make_console(stderr=True)

campaign_app = typer.Typer(
    name="campaign",
    help="Closed-loop campaigns: run one from its file, resume it, rebuild its report, or run the demo.",
    no_args_is_help=True,
)
app.add_typer(campaign_app)

#: exit status of a campaign that stopped because its samples kept failing (2: a bad campaign file)
FAILURES_EXIT_CODE = 3
#: exit status of a campaign stopped with Ctrl-C (128 + SIGINT, as a shell reports it): the report is
#: written, but a script that waits for the campaign must not take it for a finished one
INTERRUPTED_EXIT_CODE = 130


#: terminals narrower than this get the compact progress line (an 80-column one shows it whole)
WIDE = 110


def progress_columns(*, wide: bool) -> tuple[ProgressColumn, ...]:
    """The progress line's columns: a short bar on a narrow terminal leaves the status room."""
    return (
        TextColumn("{task.description}"),
        BarColumn(bar_width=40 if wide else 10),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        # the status names stations (user text): shown as text, never read as markup
        TextColumn("{task.fields[status]}", markup=False),
    )


def status_line(p: CampaignProgress, *, compact: bool = False) -> str:
    """The progress line's status: samples and utilisation per station, beamtime, map accuracy, failures.

    Compact (for narrow terminals): ``saxs 10 97% · sans 2 100% · 1.2 h · map 52% · 1 failed``.
    """
    if compact:
        parts = [f"{sid} {n} {p.utilisation(sid):.0%}" for sid, n in p.samples_by_station.items()]
        parts.append(f"{p.beamtime_h:.1f} h")
        if p.accuracy is not None:
            parts.append(f"map {p.accuracy:.0%}")
        if p.failed:
            parts.append(f"{p.failed} failed")
        parts += [f"{sid} set aside" for sid in p.set_aside]
        return " · ".join(parts)
    stations = "  ".join(
        f"{sid} {n} ({p.utilisation(sid):.0%} busy)" for sid, n in p.samples_by_station.items()
    )
    accuracy = "" if p.accuracy is None else f"  map accuracy {p.accuracy:.0%}"
    failed = f"  failed {p.failed}" if p.failed else ""
    aside = "".join(f"  {sid} set aside" for sid in p.set_aside)
    return f"{stations}  beamtime {p.beamtime_h:.1f} h{accuracy}{failed}{aside}"


def _run(config: Path, data: Path | None, report_dir: Path | None, resume: bool) -> None:
    from tandem.campaign import CampaignConfigError, load_campaign
    from tandem.campaign.runner import CampaignRunner

    try:
        campaign = load_campaign(config)
    except CampaignConfigError as exc:
        console.print(
            f"[red]{esc(config)}: the campaign file has problems; nothing was started.[/red]\n{esc(exc)}"
        )
        raise typer.Exit(2) from None
    data = data or Path("runs") / campaign.id
    report_dir = report_dir or data / "report"
    budget = campaign.stop.max_samples
    console.print(
        f"[bold]{esc(campaign.name)}[/bold] ({esc(campaign.id)}): data in {esc(data)}, "
        f"report to {esc(report_dir)}"
    )
    with Progress(
        *progress_columns(wide=console.width >= WIDE), console=console, transient=False
    ) as progress:
        task = progress.add_task("samples", total=budget, status="starting the lab (Tiled, IOCs)…")

        def show(p: CampaignProgress) -> None:
            progress.update(task, completed=p.samples, status=status_line(p, compact=console.width < WIDE))

        runner = CampaignRunner(campaign, data, resume=resume, on_progress=show)
        previous = signal.getsignal(signal.SIGINT)
        interrupted = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal interrupted
            interrupted = True
            progress.update(task, status="stopping after the sample in progress (Ctrl-C again to abort)…")
            runner.request_stop()
            signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, stop)
        try:
            outcome = runner.run()
        finally:
            signal.signal(signal.SIGINT, previous)
    for station, health in outcome.set_aside.items():
        console.print(
            f"[yellow]station {esc(station)} was set aside: {health['failures_in_a_row']} failed samples "
            f"in a row, the last with: {esc(health['last_failure'])}[/yellow]"
        )
    if outcome.stopped_on_failures:
        console.print(f"[red]stopped: {esc(outcome.stop_reason)}[/red]")
        try:
            report = _write(data, campaign.id, report_dir)
        except Exception as exc:  # the failures are the news; a report of them is a bonus
            console.print(f"no report was written ({type(exc).__name__}: {esc(exc)})")
        else:
            _summarise(report.metrics, report.folder)
        raise typer.Exit(FAILURES_EXIT_CODE)
    console.print(f"stopped: {esc(outcome.stop_reason)}; writing the report…")
    report = _write(data, campaign.id, report_dir)
    _summarise(report.metrics, report.folder)
    if interrupted:
        console.print("stopped with Ctrl-C: `tandem campaign resume` continues the campaign")
        raise typer.Exit(INTERRUPTED_EXIT_CODE)


def _write(data: Path, campaign_id: str, report_dir: Path) -> Report:
    """Build the report of `campaign_id` from the catalog in `data` (starting its server if needed)."""
    from tandem.tiled_directory import find_running_server
    from tandem.tiled_server import EmbeddedTiledServer

    endpoint = find_running_server(data / "tiled")
    if endpoint is not None:
        return _write_from(endpoint, campaign_id, report_dir)
    with EmbeddedTiledServer(data / "tiled") as started:
        return _write_from(started, campaign_id, report_dir)


def _write_from(store: TiledEndpoint, campaign_id: str, report_dir: Path) -> Report:
    """Build the report of `campaign_id` from the running data store `store`."""
    from tandem.campaign.history import build_history
    from tandem.campaign.report import write_report

    return write_report(build_history(store.connect(), campaign_id), report_dir)


def _summarise(metrics: Mapping[str, Any], folder: Path) -> None:
    console.print(f"[green]report written to {esc(folder)}[/green]")
    interrupted = metrics.get("interrupted", 0)
    cut_off = f"; {interrupted} more cut off by a stop and run again" if interrupted else ""
    console.print(f"  samples: {metrics['samples']} ({metrics['failed']} failed{cut_off})")
    console.print(f"  station hours: {metrics['station_hours']:.1f}")
    if "accuracy" in metrics:
        console.print(f"  phase-map accuracy against the truth: {metrics['accuracy']:.1%}")
    for goal, reached in metrics.get("to_reach", {}).items():
        if reached["samples"] is not None:
            console.print(
                f"  {float(goal):.0%} accuracy after {reached['samples']} samples, "
                f"{reached['station_hours']:.1f} station hours"
            )


#: the campaign file, as `run` and `resume` take it
CampaignFileArgument = Annotated[
    Path, typer.Argument(help="The campaign file (YAML); see docs/how-to/campaigns.md.")
]
#: where the campaign's Tiled catalog lives
CampaignDataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", "-d", help="Folder for the campaign's Tiled catalog [default: runs/<campaign id>]."
    ),
]
#: where its report goes
CampaignReportOption = Annotated[
    Path | None, typer.Option("--report", "-r", help="Folder for the report [default: <data>/report].")
]


@campaign_app.command("run")
def run(
    config: CampaignFileArgument, data: CampaignDataOption = None, report_dir: CampaignReportOption = None
) -> None:
    """Run a closed-loop campaign on the digital twin or on real stations, then write its report.

    On the twin, both stations run at once on their virtual clocks; on real stations (instrument
    profiles with `backend: epics`: devices over Channel Access, the profile's robot through
    PyLabRobot) samples run one at a time on the wall clock, after every station's PVs and robot
    have answered. Each sample is analysed as its run ends, and the agent chooses for whichever
    station is free. A campaign mixing twin and EPICS stations is refused.

    Ctrl-C stops after the sample in progress; `tandem campaign resume` continues later without
    repeating or losing a sample. Exits with 2 for a campaign file with problems, 3 when the campaign
    stopped because its samples kept failing (`stop: max_consecutive_failures`, or every station set
    aside: `faults`), 130 when stopped with Ctrl-C (the report is written), 1 for any other error.
    Example: `tandem campaign run campaign/demo/demo.yaml --data runs/demo`.
    """
    _start(config, data, report_dir, resume=False)


@campaign_app.command("resume")
def resume(
    config: CampaignFileArgument, data: CampaignDataOption = None, report_dir: CampaignReportOption = None
) -> None:
    """Continue a stopped or killed campaign from its catalog, losing and repeating no sample.

    The runs a stop cut off are closed and their samples made again; the budget counts only samples
    that finished. Same exit statuses as `tandem campaign run`.
    """
    _start(config, data, report_dir, resume=True)


def _start(config: Path, data: Path | None, report_dir: Path | None, *, resume: bool) -> None:
    _configure_logging()
    try:
        _run(config, data, report_dir, resume)
    except TandemError as exc:
        console.print(f"[red]{esc(exc)}[/red]")
        raise typer.Exit(1) from None


@campaign_app.command("demo")
def demo(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            "-d",
            help="Folder for the demo's catalog and report (an earlier demo's are replaced; "
            "a non-empty folder tandem did not make is refused).",
        ),
    ] = Path("runs/demo"),
) -> None:
    """Run the bundled example campaign and write its report (the main job).

    SDS / PPG / NaCl on the twin, linked SAXS + SANS, 60 samples; the report goes to
    <data>/report. Takes a few minutes on a laptop.
    """
    from tandem.data_folder import clear_data_folder

    _configure_logging()
    if not DEMO_CAMPAIGN.exists():
        console.print(
            f"[red]the bundled campaign is not at {esc(DEMO_CAMPAIGN)}: this tandem was installed "
            "without its package data; reinstall it[/red]"
        )
        raise typer.Exit(1)
    try:
        # only what an earlier demo wrote goes; a folder tandem did not make is refused, untouched
        clear_data_folder(data)
        _run(DEMO_CAMPAIGN, data, data / "report", resume=False)
    except TandemError as exc:
        console.print(f"[red]{esc(exc)}[/red]")
        raise typer.Exit(1) from None


@campaign_app.command("report")
def report(
    campaign_id: Annotated[str, typer.Argument(help="The campaign's id (the `id:` of its file).")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="The campaign's data folder [default: the server TANDEM_TILED_URI names, if set; "
            "else runs/<campaign id>].",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report folder [default: <data>/report].", show_default=False),
    ] = None,
) -> None:
    """Rebuild a campaign's report from its Tiled catalog.

    Phase map beside the truth, accuracy against samples and beamtime, station
    timelines, measured curves, report.json and phase_map.csv. The catalog is the
    campaign's data folder's, or, with TANDEM_TILED_URI and TANDEM_TILED_API_KEY set and
    no --data, the shared data store's wherever it runs (a facility's, another site's).
    """
    from tandem.tiled_endpoint import TiledSettings

    _configure_logging()
    if data is None and TiledSettings().uri is not None:
        try:
            report_dir = out or Path("runs") / campaign_id / "report"
            result = _write_from(attached_store(None), campaign_id, report_dir)
        except TandemError as exc:
            console.print(f"[red]{esc(exc)}[/red]")
            raise typer.Exit(1) from None
        _summarise(result.metrics, result.folder)
        return
    data = data or Path("runs") / campaign_id
    if not (data / "tiled").exists():
        console.print(
            f"[red]{esc(data)} holds no campaign catalog; pass --data with the campaign's folder[/red]"
        )
        raise typer.Exit(1)
    try:
        result = _write(data, campaign_id, out or data / "report")
    except TandemError as exc:
        console.print(f"[red]{esc(exc)}[/red]")
        raise typer.Exit(1) from None
    _summarise(result.metrics, result.folder)


def _configure_logging() -> None:
    # the runner reports every failed sample with its reason in one line; the RunEngine's own log of
    # each aborted run is a traceback per sample (a dead IOC gives dozens), so it stays quiet
    logging.getLogger("bluesky").setLevel(logging.CRITICAL)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
