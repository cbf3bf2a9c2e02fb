"""`tandem map`: phases, a phase map and the next compositions from a folder of your own curves."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from tandem.cli.app import app
from tandem.cli.output import console as make_console
from tandem.errors import TandemError

if TYPE_CHECKING:
    from tandem.campaign.mapping import CurveMap

#: exit status for input the map cannot be made from (missing files, bad table, bounds, too few curves)
EXIT_BAD_INPUT = 2
#: the table looked for in the folder when --table is not given
DEFAULT_TABLE = "compositions.csv"

_HELP = (
    "Find the phases in a folder of reduced 1-D curves (NXcanSAS HDF5 or q/I/dI text), map them over "
    "composition space and suggest the next compositions to measure, with the campaign's own phase "
    "finding and phase-mapping agent.\n\n"
    "The composition table is a CSV: the curve file (as named in the folder, or its stem), then one "
    "column of mass fractions per component (the solvent is the rest), optionally a 'probe' column "
    "(xray or neutron) for data of both probes.\n\n"
    "Example: tandem map beamtime/ --table beamtime/compositions.csv --bounds SLES=0:0.35 --suggest 5\n\n"
    "Writes phase_map.png, phase_map.csv, phases.json and suggestions.csv to --out. Exit status: 0 with "
    "the map; 2 if the input cannot be mapped (a missing folder or table, a table naming a missing file, "
    "bounds that leave out the table's compositions, fewer than 2 usable curves, an --out folder holding "
    "other files)."
)


@app.command("map", help=_HELP)
def map_command(
    folder: Annotated[Path, typer.Argument(help="Folder of curve files (NXcanSAS .h5/.nxs or text q I dI).")],
    *,
    table: Annotated[
        Path | None,
        typer.Option(
            "--table",
            "-t",
            help=f"Composition table (CSV). Default: FOLDER/{DEFAULT_TABLE}.",
            show_default=False,
        ),
    ] = None,
    probe: Annotated[
        str, typer.Option("--probe", "-p", help="Probe of the curves: xray or neutron (a table column wins).")
    ] = "xray",
    bounds: Annotated[
        list[str] | None,
        typer.Option(
            "--bounds",
            "-b",
            help="NAME=LO:HI mass-fraction bounds of a component (repeatable; default: the table's range).",
        ),
    ] = None,
    suggest: Annotated[
        int, typer.Option("--suggest", "-n", help="How many next compositions to suggest.")
    ] = 3,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the map to.")] = Path("map"),
    no_fits: Annotated[
        bool,
        typer.Option("--no-fits", help="Skip each curve's morphology (faster; phases named phase-1, ...)."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into an --out folder that holds other files (left alone).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the agent's suggestions.")] = 0,
) -> None:
    from tandem.campaign.map_inputs import load_curves
    from tandem.campaign.mapping import check_out_dir, map_curves, write_map

    console = make_console(highlight=False, soft_wrap=True)
    errors = make_console(stderr=True, highlight=False, soft_wrap=True)
    try:
        check_out_dir(out, force=force)
        given = _bounds(bounds or [])
        if suggest < 0:
            raise typer.BadParameter(f"--suggest is a count >= 0, got {suggest}")
        with _quiet(), _progress(errors) as step:
            inputs = load_curves(folder, table or folder / DEFAULT_TABLE, probe, progress=step)
            result = map_curves(
                inputs.curves,
                inputs.compositions,
                inputs.probes,
                given or None,
                suggest,
                fits=not no_fits,
                unreadable=inputs.unreadable,
                seed=seed,
                progress=step,
            )
            step("writing the map", 0, 1)
            paths = write_map(result, out, force=force)
    except (TandemError, typer.BadParameter) as error:
        message = " ".join(str(error).split())
        errors.print(f"[bold red]error:[/] {escape(message)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    _summary(console, result, out, [p.name for p in paths.values()])


def _bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    from tandem.campaign.map_inputs import MapInputError

    chosen: dict[str, tuple[float, float]] = {}
    for item in items:
        name, sep, span = item.partition("=")
        lo_text, colon, hi_text = span.partition(":")
        try:
            if not (sep and colon and name.strip()):
                raise ValueError
            lo, hi = float(lo_text), float(hi_text)
        except ValueError:
            raise MapInputError(
                f"--bounds takes NAME=LO:HI in mass fractions (e.g. SLES=0:0.35), got {item!r}"
            ) from None
        if name.strip() in chosen:
            raise MapInputError(f"--bounds gives {name.strip()!r} twice")
        chosen[name.strip()] = (lo, hi)
    return chosen


@contextmanager
def _quiet() -> Iterator[None]:
    """No library warnings or log lines in the terminal: what matters is in the summary and phases.json."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextmanager
def _progress(console: Console) -> Iterator[_Step]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a log file or a pipe gets the summary only
    ) as progress:
        yield _Step(progress)


class _Step:
    """A progress callback for `tandem.campaign.mapping`: one bar per stage, earlier ones completed."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            for task in self.tasks.values():
                self.progress.update(task, completed=self.progress.tasks[task].total)
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _summary(console: Console, result: CurveMap, out: Path, files: list[str]) -> None:
    used = len(result.labels)
    console.print(
        f"[bold]{len(result.phases)} phase(s)[/] from {used} curve(s) over {escape(', '.join(result.names))}:"
    )
    width = max(len(p) for p in result.phases)
    for phase, members in result.phases.items():
        kinds: dict[str, int] = {}
        for m in members:
            label = result.morphologies.get(m)
            if label is not None:
                kinds[label] = kinds.get(label, 0) + 1
        shows = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        console.print(
            f"  {escape(phase.ljust(width))}  {len(members):3d} curve(s)"
            + (f"  ({escape(shows)})" if shows else "")
        )
    if result.excluded:
        console.print(f"[bold yellow]{len(result.excluded)} curve(s) left out[/]:")
        for name, reason in result.excluded.items():
            console.print(f"  {escape(name)}: {escape(' '.join(reason.split()))}")
    if result.suggestions:
        console.print("[bold]next compositions[/] (mass fractions):")
        for i, s in enumerate(result.suggestions, 1):
            console.print(f"  {i}. " + "  ".join(f"{escape(n)}={s[n]:.4g}" for n in result.names))
    console.print(f"written to {escape(str(out))}/: {escape(', '.join(files))}")
