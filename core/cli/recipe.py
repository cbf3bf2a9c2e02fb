"""`tandem recipe`: the transfers that make a target composition from the stocks of a deck file."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tandem.cli.app import app
from tandem.cli.output import console as make_console
from tandem.cli.output import esc
from tandem.components import Components
from tandem.composition import Amount, Composition
from tandem.errors import TandemError
from tandem.files import json_ready

#: Exit codes: 0 made, 1 the request is malformed, 2 the target cannot be made on this deck.
EXIT_BAD_INPUT = 1
EXIT_INFEASIBLE = 2

_HELP = (
    "Compute the transfers that make a target composition from the stocks of a deck file.\n\n"
    "The target is given component by component with --set NAME=AMOUNT (repeatable); the amount "
    "carries its basis: a bare number is a mass fraction (0.01), else 5wt%, 20mg/ml, 5g/l, 0.1M, "
    "100mM, 0.3vf or 30vol%. One --balance component takes the rest.\n\n"
    "Example, 1 mL of 20 mg/mL SDS with 0.1 M NaCl in water on the SAXS example deck:\n\n"
    "tandem recipe examples/decks/saxs_lab.yaml --set sds=20mg/ml --set nacl=0.1M "
    "--balance water --volume-ul 1000\n\n"
    "Exit status: 0 with the recipe; 1 if the request or the deck file is malformed; 2 if the "
    "target cannot be made, with every reason that applies."
)


@app.command("recipe", help=_HELP)
def recipe(
    deck_file: Annotated[
        Path, typer.Argument(help="Deck file (YAML): components, stocks, wells, tip racks and pipettes.")
    ],
    *,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="NAME=AMOUNT, e.g. sds=20mg/ml, nacl=0.1M, ethanol=0.3vf, peg=0.01 (repeatable).",
        ),
    ] = None,
    balance: Annotated[
        str, typer.Option("--balance", "-b", help="The component that takes the rest (the solvent).")
    ],
    volume_ul: Annotated[float, typer.Option("--volume-ul", "-v", help="Total volume to make, in µL.")],
    destination: Annotated[
        str | None,
        typer.Option(
            "--destination", "-d", help="Well slot to mix in (default: the first empty well big enough)."
        ),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Largest accepted deviation, in mass fraction.")
    ] = 1e-3,
    dilute: Annotated[
        bool,
        typer.Option("--dilute", help="Make diluted intermediates for volumes below the smallest transfer."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for machines instead of tables.")
    ] = False,
) -> None:
    from tandem.robots.deck_file import load_deck_file
    from tandem.robots.recipe import solve_recipe
    from tandem.robots.recipe_feasibility import InfeasibleRecipeError

    console = make_console(highlight=False, soft_wrap=False)
    try:
        deck = load_deck_file(deck_file)
        target = _target(deck.components, set_ or [], balance)
        with _stdout_to_stderr():
            made = solve_recipe(
                deck,
                target,
                total_volume_ul=volume_ul,
                destination=destination,
                tolerance=tolerance,
                allow_dilution=dilute,
            )
    except InfeasibleRecipeError as error:
        if as_json:
            typer.echo(json.dumps({"ok": False, "reasons": [r.to_dict() for r in error.reasons]}, indent=2))
        else:
            console.print(f"[bold red]The target cannot be made[/] ({len(error.reasons)} reason(s)):")
            for reason in error.reasons:
                console.print(f"  [red]•[/] [bold]{esc(reason.code.value)}[/]: {esc(reason.message)}")
        raise typer.Exit(EXIT_INFEASIBLE) from None
    except TandemError as error:
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": str(error)}, indent=2))
        else:
            console.print(f"[bold red]error:[/] {esc(error)}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, **json_ready(made.to_dict())}, indent=2))
        return
    _print_recipe(console, made)


def _target(components: Components, settings: list[str], balance: str) -> Composition:
    from tandem.robots.deck_file import DeckFileError, parse_amount

    amounts: dict[str, Amount] = {}
    for item in settings:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise DeckFileError(f"--set takes NAME=AMOUNT (e.g. sds=20mg/ml), got {item!r}")
        if name in amounts:
            raise DeckFileError(f"--set gives {name!r} twice")
        amounts[name] = parse_amount(text)
    names = [*amounts, balance]
    chosen = Components(components[n] for n in dict.fromkeys(names))  # unknown names raise, listing the known
    return Composition.from_amounts(chosen, amounts, balance=balance)


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what C libraries print to stdout to stderr instead.

    HiGHS (the MILP solver under scipy) prints some diagnostics with a raw printf that
    no option silences; on stdout they would corrupt `--json`.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded); nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _print_recipe(console: Console, made: Any) -> None:
    transfers = Table(
        title=f"Recipe: {made.total_volume_ul:g} µL into well {esc(made.destination)}", title_justify="left"
    )
    transfers.add_column("#", justify="right")
    transfers.add_column("from")
    transfers.add_column("to")
    transfers.add_column("volume / µL", justify="right")
    transfers.add_column("pipette")
    for i, t in enumerate(made.transfers, 1):
        transfers.add_row(str(i), esc(t.source), esc(t.destination), f"{t.volume_ul:.2f}", esc(t.pipette))
    console.print(transfers)

    predicted, target = made.predicted, made.target
    names = [n for n in predicted.components if predicted.mass_fraction(n) > 0 or target.mass_fraction(n) > 0]
    names += [n for n in target.components if n not in names]
    comp = Table(title="Composition (ideal mixing)", title_justify="left")
    for header in ("component", "target w", "predicted w", "|Δw|", "vol. fraction", "mg/mL", "mol/L"):
        comp.add_column(header, justify="left" if header == "component" else "right")
    vf, conc, mol = (
        predicted.volume_fractions,
        predicted.concentrations_mg_per_ml,
        predicted.molarities_mol_per_l,
    )
    for n in names:
        comp.add_row(
            esc(n),
            f"{target.mass_fraction(n):.5g}",
            f"{predicted.mass_fraction(n):.5g}",
            f"{abs(predicted.mass_fraction(n) - target.mass_fraction(n)):.2g}",
            f"{vf[n]:.4g}" if n in vf else "—",
            f"{conc.get(n, 0.0):.4g}",
            f"{mol.get(n, 0.0):.4g}",
        )
    console.print(comp)
    for slot, inter in made.intermediates.items():
        console.print(f"intermediate in {esc(slot)}: {esc(inter)}")
    tips = esc(", ".join(f"{n} × {tip}" for tip, n in made.tips_needed.items()))
    console.print(
        f"deviation {made.deviation:.3g} (tolerance {made.tolerance:g}) · density "
        f"{predicted.density_g_per_ml:.4g} g/mL · tips: {tips}"
    )
