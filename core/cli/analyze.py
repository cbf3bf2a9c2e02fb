"""`tandem analyze`: analyse raw runs into analysed nodes, once (the backlog) or as a worker (`--follow`)."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from tandem.cli.app import TiledDirectoryOption, app, attached_store
from tandem.errors import TandemError
from tandem.files import read_text

if TYPE_CHECKING:
    from tandem.analysis.pipeline_settings import StationCalibration
    from tandem.analysis.store import AnalysisRecord


class CalibrationChoiceError(TandemError):
    """`tandem analyze` was given neither a calibration file nor `--sim`, or both."""


#: what `tandem analyze` says when it is not told where its calibrations come from
CHOOSE_CALIBRATION = (
    "tandem analyze needs the stations' calibrations: pass --calibration FILE at a real beamline "
    "(a JSON object {station: {detector_efficiency, open_beam_ratio, path_length_mm, ...}}), "
    "or --sim to use the digital twin's instruments"
)


def choose_calibrations(path: Path | None, *, sim: bool) -> dict[str, StationCalibration]:
    """The calibrations from `path`, or the twin's with `sim`; exactly one of the two must be given."""
    if sim and path is not None:
        raise CalibrationChoiceError(
            "--sim and --calibration exclude each other: the twin's calibrations or a file's, not both"
        )
    if sim:
        from tandem.sim.calibration import twin_calibrations

        return twin_calibrations()
    if path is None:
        raise CalibrationChoiceError(CHOOSE_CALIBRATION)
    return load_calibrations(path)


def load_calibrations(path: Path) -> dict[str, StationCalibration]:
    """Calibrations from a JSON file `{station: {detector_efficiency: ..., ...}}`."""
    from tandem.analysis.pipeline_settings import StationCalibration

    try:
        data = json.loads(read_text(path))
    except (OSError, json.JSONDecodeError) as error:
        raise TandemError(f"cannot read calibrations from {path}: {error}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TandemError(f"{path} must hold a JSON object: station -> calibration (an object)")
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
            help="JSON file of station calibrations {station: {detector_efficiency, open_beam_ratio, "
            "path_length_mm, ...}}; needed at a real beamline.",
        ),
    ] = None,
    sim: Annotated[
        bool,
        typer.Option("--sim", help="Use the digital twin's calibrations (its instrument models)."),
    ] = False,
    no_fit: Annotated[
        bool, typer.Option("--no-fit", help="Skip model fits (reduction, features, labels).")
    ] = False,
    poll_interval_s: Annotated[float, typer.Option("--poll", min=0.01, help="Seconds between looks.")] = 0.5,
    directory: TiledDirectoryOption = None,
) -> None:
    """Reduce, fit and label raw runs; write one analysed node per run to the data store.

    Catches up on every closed run without an analysed node, then (with --follow) waits for
    new ones. Safe to kill at any point and start again: no run is analysed twice. Several
    workers (on one host or several) share the runs: each claims a run in the data store before
    analysing it, and the run of a worker that died is taken over once its claim lapses (two
    minutes). The calibrations come from --calibration FILE, or from the digital twin with --sim.
    """
    from tandem.analysis.claims import RunClaims
    from tandem.analysis.pipeline import Analyzer
    from tandem.analysis.pipeline_settings import AnalysisSettings

    try:
        calibrations = choose_calibrations(calibration, sim=sim)
    except (TandemError, ValueError) as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from error
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        client = attached_store(directory).connect()
        analyzer = Analyzer(
            client,
            AnalysisSettings(calibrations=calibrations, fit=not no_fit),
            claims=RunClaims(client),
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
