"""`tandem analyze`: analyse raw runs into analysed nodes, once (the backlog) or as a worker (`--follow`)."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from tandem.cli.app import TiledDirectoryOption, app
from tandem.errors import TandemError
from tandem.files import read_text

if TYPE_CHECKING:
    from tandem.analysis.pipeline import AnalysisRecord, StationCalibration


def twin_calibrations() -> dict[str, StationCalibration]:
    """The calibration of each station of the digital twin, from its instrument models.

    At a real beamline these numbers come from the instrument's calibration (a
    standard sample, the detector's data sheet): pass them with `--calibration`.
    """
    from tandem.campaign.rig import twin_calibration
    from tandem.sim.instruments import INSTRUMENTS

    return {station: twin_calibration(inst) for station, inst in INSTRUMENTS.items()}


def load_calibrations(path: Path | None) -> dict[str, StationCalibration]:
    """Calibrations from a JSON file `{station: {detector_efficiency: ..., ...}}`, or the twin's."""
    from tandem.analysis.pipeline import StationCalibration

    if path is None:
        return twin_calibrations()
    try:
        data = json.loads(read_text(path))
    except (OSError, json.JSONDecodeError) as error:
        raise TandemError(f"cannot read calibrations from {path}: {error}") from None
    if not isinstance(data, dict):
        raise TandemError(f"{path} must hold a JSON object: station -> calibration")
    return {str(k): StationCalibration.from_dict(v) for k, v in data.items()}


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command("analyze")
def analyze(
    *,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="After the backlog, keep analysing new runs until stopped.")
    ] = False,
    run: Annotated[
        list[str] | None, typer.Option("--run", help="Analyse (again) only this raw run uid; repeatable.")
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="JSON file of station calibrations; default: the digital twin's instruments.",
        ),
    ] = None,
    no_fit: Annotated[
        bool, typer.Option("--no-fit", help="Skip model fits (reduction, features, labels).")
    ] = False,
    poll_interval_s: Annotated[float, typer.Option("--poll", min=0.01, help="Seconds between looks.")] = 0.5,
    directory: TiledDirectoryOption = None,
) -> None:
    """Reduce, fit and label raw runs; write one analysed node per run to the data store.

    Catches up on every closed run without an analysed node, then (with --follow) waits for
    new ones. Safe to kill at any point and start again: no run is analysed twice.
    """
    from tandem.analysis.pipeline import AnalysisSettings, Analyzer
    from tandem.tiled_server import TiledSettings, attach, find_running_server

    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        if directory is not None:
            endpoint = find_running_server(directory)
            if endpoint is None:
                raise TandemError(
                    f"no Tiled server is running on {directory}; start one with `tandem data serve`"
                )
        else:
            settings = TiledSettings()
            if settings.uri is None or settings.api_key is None:
                raise TandemError(
                    "no data store: set TANDEM_TILED_URI and TANDEM_TILED_API_KEY "
                    "(`tandem data serve` prints them) or pass --directory"
                )
            endpoint = attach(settings.uri, settings.api_key.get_secret_value())
        analyzer = Analyzer(
            endpoint.connect(),
            AnalysisSettings(calibrations=load_calibrations(calibration), fit=not no_fit),
        )
    except (TandemError, ValueError) as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from error

    def report(record: AnalysisRecord) -> None:
        detail = record.label or "" if record.ok else f"{record.failure_code}: {record.failure_reason}"
        typer.echo(f"{record.run_uid} {record.status.value} {detail}", nl=True)

    try:
        if run:
            for uid in run:
                report(analyzer.analyze(uid, force=True))
            return
        n = analyzer.catch_up(on_done=report)
        typer.echo(f"backlog done: {n} run(s) analysed", err=True)
        if follow:
            analyzer.follow(poll_interval_s=poll_interval_s, on_done=report)
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
