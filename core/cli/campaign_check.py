"""`tandem campaign check FILE`: read a campaign file and its instrument profiles, touch no hardware.

The first step on a new line: every problem of the campaign file, its decks, its profiles and
their calibration files is reported with its file and line, as `tandem campaign run` would report
it, but before anything is started; a file without problems is summed up station by station
(where its PVs are, which robot pipettes, which calibration each configuration uses), so what
`tandem shell --epics` and `tandem station start --epics` will connect to can be read first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tandem.cli.campaign import campaign_app
from tandem.cli.output import console as make_console
from tandem.cli.output import esc

if TYPE_CHECKING:
    from tandem.campaign.config import CampaignStation

console = make_console()
#: as `tandem campaign run` exits for a campaign file with problems
PROBLEMS_EXIT_CODE = 2


@campaign_app.command("check")
def check(
    config: Annotated[Path, typer.Argument(help="The campaign file (YAML); see docs/how-to/campaigns.md.")],
) -> None:
    """Check a campaign file, its decks and instrument profiles, and say what each station will use.

    Touches no hardware and starts nothing. Exits with 2 for a file with problems (each with its
    file and line), 0 otherwise. Example: `tandem campaign check campaign.yaml`.
    """
    from tandem.campaign import CampaignConfigError, load_campaign

    try:
        campaign = load_campaign(config)
    except CampaignConfigError as exc:
        console.print(
            f"[red]{esc(config)}: the campaign file has problems.[/red]\n{esc(exc)}", soft_wrap=True
        )
        raise typer.Exit(PROBLEMS_EXIT_CODE) from None
    count = len(campaign.stations)
    # whole lines, never wrapped: they hold paths and PV prefixes to copy
    console.print(
        f"{esc(config)}: campaign {esc(campaign.id)!r} is ready to run "
        f"({count} station{'s' if count != 1 else ''})",
        soft_wrap=True,
    )
    for station in campaign.stations.values():
        for line in _describe(station):
            console.print(esc(line), highlight=False, soft_wrap=True)


def _describe(station: CampaignStation) -> list[str]:
    """What the station will use, a line each: instrument, PVs, robot, calibration, deck."""
    from tandem.campaign.session_config import EpicsPrefixes, station_profile

    profile = station_profile(station)
    stocks = ", ".join(stock.name for stock in station.deck.stocks)
    deck = f"    deck        {station.deck_path or '(inline)'}: stocks {stocks}"
    if profile is None:
        return [f"  {station.id}: the digital twin's instrument {station.instrument.station!r}", deck]
    facts = profile.profile
    lines = [f"  {station.id}: instrument profile {facts.name!r}, backend {facts.backend}"]
    if facts.backend == "epics":
        prefixes = EpicsPrefixes.for_station(station.id, profile=profile)
        lines.append(f"    EPICS       {prefixes.describe()}")
    options = ", ".join(f"{key}={value}" for key, value in facts.robot.options.items())
    lines.append(f"    robot       {facts.robot.backend}" + (f" ({options})" if options else ""))
    for name in station.configurations:
        path = profile.calibration_path(name)
        what = str(path) if path is not None else "none: curves in relative units"
        default = "  (the default configuration)" if name == station.default_configuration else ""
        lines.append(f"    {name:<11} calibration {what}{default}")
    lines.append(deck)
    return lines


__all__ = ["check"]
