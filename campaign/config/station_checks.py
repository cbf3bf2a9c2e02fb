"""Each station against its instrument and its deck: solvent, scan limits, stocks, and what they can make.

A station is checked on its own first (its instrument, by name, profile file or inline: `profiles`;
the solvent, the scan settings within the instrument's limits, the deck read and built, its stocks
holding every component the space needs); `check_reach` then asks, once every
station is sound, whether each deck's stocks make every corner of the space and
whether the robot can pipette those corners.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from tandem.components import Component, Components
from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.file_problems import KeyPath
from tandem.files import read_text
from tandem.instrument import InstrumentFacts
from tandem.reach import closest_mixture, explain_unreachable
from tandem.robots.deck import Deck
from tandem.robots.deck_file import DeckFile
from tandem.robots.recipe import solve_recipe
from tandem.robots.recipe_feasibility import InfeasibleRecipeError, InvalidRecipeRequestError
from tandem.schema_problems import schema_problem

from .campaign import CampaignStation
from .checker import Checker
from .problems import CampaignConfigError
from .profiles import station_instrument
from .schema import ScanSpec, StationSpec
from .yaml_marks import read_yaml

#: At most this many unreachable corners are reported per station; the rest are counted.
MAX_CORNERS_REPORTED = 3
#: where a deck's own error names its entry ("stocks[2] (water): ..."), to point at that entry in the file
_DECK_WHERE = re.compile(r"^(\w+)\[(\d+)\]")


def check_station(
    checker: Checker, sid: str, spec: StationSpec, components: Components
) -> CampaignStation[InstrumentFacts] | None:
    """The station built (instrument, solvent, deck), or None when a problem stops it."""
    where: KeyPath = ("stations", sid)
    instrument = station_instrument(checker, sid, spec)
    if instrument is None:
        return None
    name = instrument.station
    if spec.probe is not None and spec.probe is not instrument.probe:
        checker.add(
            (*where, "probe"),
            f"instrument {name!r} uses {instrument.probe.value}, not {spec.probe.value}",
            f"set probe: {instrument.probe.value} or leave it out",
        )
    solvent = _station_solvent(checker, where, spec, instrument, components)
    _scan(checker, where, spec.scan, instrument)
    built = _deck(checker, where, spec)
    if solvent is None or built is None:
        return None
    deck_file, deck, deck_path = built
    if not _deck_matches(checker, where, deck, solvent, components):
        return None
    # the instrument as this campaign uses it (the twin measures the campaign's own components in its solvent)
    return CampaignStation(
        sid, spec, instrument.for_campaign(components, solvent), solvent, deck, deck_file, deck_path
    )


def _station_solvent(
    checker: Checker, where: KeyPath, spec: StationSpec, instrument: InstrumentFacts, components: Components
) -> Component | None:
    name = spec.solvent or instrument.solvent.name
    path = (*where, "solvent") if spec.solvent else where
    if name not in components:
        checker.add(
            path,
            f"the solvent {name!r} is not a campaign component",
            f"add it to 'components' or choose one of: {', '.join(c.name for c in components.liquids)}",
            key=spec.solvent is None,
        )
        return None
    solvent = components[name]
    if not solvent.is_liquid:
        checker.add(path, f"the solvent {name!r} is a solute", "a solvent must be a liquid component")
        return None
    return solvent


def _scan(checker: Checker, where: KeyPath, scan: ScanSpec, instrument: InstrumentFacts) -> None:
    path: KeyPath = (*where, "scan")
    known = list(instrument.configurations)
    allowed = scan.configurations or known
    for i, config in enumerate(scan.configurations or ()):
        if config not in known:
            checker.add(
                (*path, "configurations", i),
                f"instrument {instrument.station!r} has no configuration {config!r}",
                f"use one of: {', '.join(known)}",
            )
    if scan.default_configuration is not None and scan.default_configuration not in allowed:
        checker.add(
            (*path, "default_configuration"),
            f"{scan.default_configuration!r} is not an allowed configuration",
            f"use one of: {', '.join(c for c in allowed if c in known)}",
        )
    lo, hi = instrument.exposure_limits_s
    exposure = scan.exposure_s
    for key in ("min", "max", "default"):
        value = getattr(exposure, key)
        if not lo <= value <= hi:
            checker.add(
                (*path, "exposure_s", key),
                f"exposure {value:g} s is outside what {instrument.station!r} allows ({lo:g} to {hi:g} s)",
                f"choose a value between {lo:g} and {hi:g}",
            )
    for i, choice in enumerate(exposure.choices or ()):
        if not exposure.min <= choice <= exposure.max:
            checker.add(
                (*path, "exposure_s", "choices", i),
                f"the choice {choice:g} s lies outside [{exposure.min:g}, {exposure.max:g}] s",
                "choose exposures between min and max",
            )
    if exposure.min > exposure.max:
        checker.add(
            (*path, "exposure_s"), f"min {exposure.min:g} s is above max {exposure.max:g} s", "swap them"
        )
    elif not exposure.min <= exposure.default <= exposure.max:
        checker.add(
            (*path, "exposure_s", "default"),
            f"the default {exposure.default:g} s lies outside [{exposure.min:g}, {exposure.max:g}] s",
            "choose a default between min and max",
        )
    t_lo, t_hi = instrument.temperature_limits_c
    if not t_lo <= scan.temperature_c <= t_hi:
        checker.add(
            (*path, "temperature_c"),
            f"{scan.temperature_c:g} °C is outside what {instrument.station!r} allows "
            f"({t_lo:g} to {t_hi:g} °C)",
            f"choose a temperature between {t_lo:g} and {t_hi:g} °C",
        )


def _deck(checker: Checker, where: KeyPath, spec: StationSpec) -> tuple[DeckFile, Deck, Path | None] | None:
    path: KeyPath = (*where, "deck")
    if isinstance(spec.deck, str):
        deck_path = (checker.base / spec.deck).resolve()
        try:
            text = read_text(deck_path)
        except OSError as exc:
            checker.add(
                path,
                f"cannot read deck file {str(deck_path)!r}: {exc.strerror or exc}",
                "give a path relative to the campaign file, or the deck inline",
            )
            return None
        try:
            data, marks = read_yaml(text, str(deck_path))
        except CampaignConfigError as exc:
            checker.problems += exc.problems
            return None
        prefix: KeyPath = ()
    else:
        deck_path, data, marks, prefix = None, spec.deck, checker.marks, path
    try:
        deck_file = DeckFile.model_validate(data)
    except ValidationError as exc:
        checker.problems += [schema_problem(e, marks, DeckFile, prefix) for e in exc.errors()]
        return None
    try:
        deck = deck_file.to_deck()
    except TandemError as exc:
        message = str(exc)
        match = _DECK_WHERE.match(message)
        at: KeyPath = (*prefix, match.group(1), int(match.group(2))) if match else prefix
        checker.problems.append(marks.problem(at, message, "fix the deck"))
        return None
    return deck_file, deck, deck_path


def _deck_matches(
    checker: Checker, where: KeyPath, deck: Deck, solvent: Component, components: Components
) -> bool:
    """The deck must define the campaign's components as the campaign does, and stock each one needed."""
    ok = True
    needed = [n for n, (_lo, hi) in checker.spec.space.bounds.items() if hi > 0] + [solvent.name]
    for name in needed:
        if name in deck.components and deck.components[name] != components[name]:
            checker.add(
                (*where, "deck"),
                f"the deck defines {name!r} as {_describe(deck.components[name])}, the campaign as "
                f"{_describe(components[name])}",
                f"use the same formula, density and role for {name!r} in both",
            )
            ok = False
    for name in needed:
        if not any(s.composition.mass_fraction(name) > 0 for s in deck.stocks):
            what = "the solvent" if name == solvent.name else f"up to {checker.spec.space.bounds[name][1]:g}"
            checker.add(
                (*where, "deck"),
                f"no stock on this deck holds {name!r}, which the campaign needs ({what})",
                f"add a stock with {name!r} to the deck, or remove {name!r} from space.bounds"
                if name != solvent.name
                else f"add a stock of {name!r}",
            )
            ok = False
    return ok


def check_reach(checker: Checker, components: Components, stations: Mapping[str, CampaignStation]) -> None:
    """Each station's stocks must mix every corner of the space, and its robot pipette it."""
    vertices = checker.vertices()
    tolerance = checker.spec.space.tolerance
    for sid, station in stations.items():
        solvent = station.solvent.name
        stocks = {s.name: s.composition.mass_fractions for s in station.deck.stocks}
        unreachable = []
        for vertex in vertices:
            target = {**vertex, solvent: max(0.0, 1.0 - math.fsum(vertex.values()))}
            closest = closest_mixture(stocks, target)
            if closest.distance > tolerance:
                unreachable.append((closest.distance, vertex, target, closest))
            else:
                _recipe(checker, sid, station, components, vertex)
        # the corners missed by the most first: they say what the stocks lack
        unreachable.sort(key=lambda item: -item[0])
        for _distance, vertex, target, closest in unreachable[:MAX_CORNERS_REPORTED]:
            why, hint = explain_unreachable(stocks, target, closest, solvent=solvent)
            checker.add(
                ("stations", sid, "deck"),
                f"no mixture of the stocks at {sid!r} makes the corner ({_corner(vertex)}) "
                f"of the space: {why}",
                hint,
            )
        if len(unreachable) > MAX_CORNERS_REPORTED:
            checker.add(
                ("stations", sid, "deck"),
                f"... and {len(unreachable) - MAX_CORNERS_REPORTED} more corners of the space "
                f"that {sid!r} cannot make",
            )


def _recipe(
    checker: Checker, sid: str, station: CampaignStation, components: Components, vertex: Mapping[str, float]
) -> None:
    """A corner the stocks reach must also be pipettable (volumes, inventory, wells, tips)."""
    comps = Components([*(components[n] for n in vertex), station.solvent])
    target = Composition.from_mass_fractions(comps, vertex, balance=station.solvent.name)
    try:
        solve_recipe(
            station.deck,
            target,
            total_volume_ul=station.spec.sample_volume_ul,
            tolerance=checker.spec.space.tolerance,
            allow_dilution=True,
        )
    except (InfeasibleRecipeError, InvalidRecipeRequestError) as exc:
        reasons = "; ".join(r.message for r in getattr(exc, "reasons", ())) or str(exc)
        checker.add(
            ("stations", sid, "deck"),
            f"the robot at {sid!r} cannot make the corner ({_corner(vertex)}) "
            f"of {station.spec.sample_volume_ul:g} µL: {reasons}",
            "change the stocks, pipettes or sample_volume_ul, or narrow the bounds",
        )


def _corner(vertex: Mapping[str, float]) -> str:
    return ", ".join(f"{n}={w:.4g}" for n, w in vertex.items())


def _describe(component: Component) -> str:
    return f"{component.formula}, {component.density_g_per_ml:g} g/mL, {component.role.value}"


__all__ = ["check_reach", "check_station"]
