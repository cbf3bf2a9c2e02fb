"""Deck files: the components, stocks, wells, tip racks and pipettes of a lab, in YAML.

A deck file describes what is physically on the deck at the start of a session::

    components:
      - {name: water, formula: H2O, density_g_per_ml: 0.997, role: liquid}
      - {name: sds, formula: C12H25NaO4S, density_g_per_ml: 1.01, role: solute}
    pipettes:
      - {name: p300, min_volume_ul: 20, max_volume_ul: 200, tip_type: opentrons_300}
    tip_racks:
      - {slot: "10", tip_type: opentrons_300, n_tips: 96}
    stocks:
      - name: sds_200
        slot: "1"
        volume_ul: 12000
        capacity_ul: 15000
        dead_volume_ul: 500
        composition: {sds: 200 mg/ml}
        balance: water
    plates:
      - {slot: "4", rows: 2, columns: 3, well_capacity_ul: 2000, dead_volume_ul: 20}
    wells:
      - {slot: "5", capacity_ul: 5000}

A stock's composition may mix bases, as `parse_amount` reads them (`0.01` is a mass
fraction, `20 mg/ml`, `0.1 M`, `100 mM`, `0.3 vf`, `30 vol%`, `5 wt%`); one `balance`
component takes the rest. Plate wells are named `<slot>/<row letter><column>`, for
example `4/A1`. A tip rack, stock, plate or well may name the standard labware on its
slot (`labware: cor_cos_24_wellplate_3470uL_Fb`, a PyLabRobot definition); a robot driven
through PyLabRobot then uses that definition instead of generic labware built from the
numbers. Unknown keys are refused, and every error names the key it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tandem.components import Component, Components, Role
from tandem.composition import Amount, Basis, Composition
from tandem.errors import TandemError
from tandem.files import read_text
from tandem.robots.deck import Deck, Pipette, Stock, TipRack, Well

T = TypeVar("T")
#: tips a deck file may give one rack (a 384-tip rack is the largest in use)
MAX_TIPS_PER_RACK = 10_000


class DeckFileError(TandemError, ValueError):
    """A deck file cannot be read: bad YAML, an unknown key, a value out of range."""


# unit (lower case, spaces removed) -> basis and the factor to that basis's unit
_UNITS: dict[str, tuple[Basis, float]] = {
    "": (Basis.MASS_FRACTION, 1.0),
    "wf": (Basis.MASS_FRACTION, 1.0),
    "mf": (Basis.MASS_FRACTION, 1.0),
    "w/w": (Basis.MASS_FRACTION, 1.0),
    "wt%": (Basis.MASS_FRACTION, 0.01),
    "%w/w": (Basis.MASS_FRACTION, 0.01),
    "vf": (Basis.VOLUME_FRACTION, 1.0),
    "v/v": (Basis.VOLUME_FRACTION, 1.0),
    "vol%": (Basis.VOLUME_FRACTION, 0.01),
    "%v/v": (Basis.VOLUME_FRACTION, 0.01),
    "mg/ml": (Basis.CONCENTRATION_MG_PER_ML, 1.0),
    "g/l": (Basis.CONCENTRATION_MG_PER_ML, 1.0),
    "ug/ml": (Basis.CONCENTRATION_MG_PER_ML, 1e-3),
    "µg/ml": (Basis.CONCENTRATION_MG_PER_ML, 1e-3),
    "g/ml": (Basis.CONCENTRATION_MG_PER_ML, 1e3),
    "m": (Basis.MOLARITY_MOL_PER_L, 1.0),
    "mol/l": (Basis.MOLARITY_MOL_PER_L, 1.0),
    "mm": (Basis.MOLARITY_MOL_PER_L, 1e-3),
    "mmol/l": (Basis.MOLARITY_MOL_PER_L, 1e-3),
    "um": (Basis.MOLARITY_MOL_PER_L, 1e-6),
    "µm": (Basis.MOLARITY_MOL_PER_L, 1e-6),
}
_AMOUNT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)\s*(.*?)\s*$", re.IGNORECASE)


def parse_amount(text: str | float) -> Amount:
    """Read an amount: `20 mg/ml`, `0.1M`, `100 mM`, `0.3vf`, `30 vol%`, `5 wt%`, `0.01` (mass fraction).

    Molarity units are case-insensitive (`m` is mol/L, `mM` and `mm` mmol/L).
    """
    if isinstance(text, bool):
        raise DeckFileError(f"an amount must be a number with a unit, got {text!r}")
    if isinstance(text, int | float):
        return _amount(float(text), Basis.MASS_FRACTION, str(text))
    match = _AMOUNT.match(str(text))
    if not match:
        raise DeckFileError(f"cannot read amount {text!r}; write a number and a unit, e.g. {_EXAMPLES}")
    number, unit = match.groups()
    key = unit.lower().replace(" ", "")
    if key not in _UNITS:
        raise DeckFileError(
            f"unknown unit {unit!r} in {text!r}; known units: mass fraction (no unit, wf, wt%), "
            "volume fraction (vf, vol%), concentration (mg/ml, g/l, ug/ml), molarity (M, mM, uM, mol/l)"
        )
    basis, factor = _UNITS[key]
    return _amount(float(number) * factor, basis, str(text))


_EXAMPLES = "'20 mg/ml', '0.1 M', '0.3 vf', '0.01'"


def _amount(value: float, basis: Basis, text: str) -> Amount:
    try:
        return Amount(value, basis)
    except ValueError as exc:
        raise DeckFileError(f"amount {text!r}: {exc}") from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentModel(_Model):
    """A substance the lab handles: a liquid (its volume adds) or a solute (its mass adds, no volume)."""

    #: the name stocks, targets and campaign files use
    name: str = Field(min_length=1)
    #: chemical formula (Hill notation or any periodictable reads): scattering contrast and molarity
    formula: str = Field(min_length=1)
    #: density of the pure component (a solute's: as dissolved, from its partial specific volume)
    density_g_per_ml: float = Field(gt=0, allow_inf_nan=False)
    role: Role = Role.LIQUID


class PipetteModel(_Model):
    """A pipette channel and the volumes it can move in one aspirate-dispense."""

    name: str = Field(min_length=1)
    min_volume_ul: float = Field(gt=0, allow_inf_nan=False)
    max_volume_ul: float = Field(gt=0, allow_inf_nan=False)
    #: the tips it takes (a tip rack's `tip_type`)
    tip_type: str = Field(min_length=1)
    #: relative bias of every dispensed volume (-0.01: 1 % short); the simulated robot applies it
    systematic_error: float = Field(0.0, gt=-1, lt=1, allow_inf_nan=False)
    #: relative standard deviation of a dispensed volume; the simulated robot applies it
    random_error: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)


class TipRackModel(_Model):
    """A rack of disposable tips of one type."""

    #: deck position
    slot: str = Field(min_length=1)
    tip_type: str = Field(min_length=1)
    # a rack holds at most a few hundred tips: far more is a typo, not a rack
    #: tips the rack holds when full
    n_tips: int = Field(96, ge=0, le=MAX_TIPS_PER_RACK)
    #: tips already used at the start of the session
    n_used: int = Field(0, ge=0, le=MAX_TIPS_PER_RACK)
    #: a standard labware for this slot, by its PyLabRobot definition's name (`hamilton_96_tiprack_300uL`);
    #: without one, generic labware is built from the numbers here
    labware: str | None = Field(None, min_length=1)


class StockModel(_Model):
    """A stock solution in a container on the deck: what samples are mixed from."""

    name: str = Field(min_length=1)
    #: deck position (a plate's well, `4/A1`, or a slot of its own)
    slot: str = Field(min_length=1)
    #: volume in the container at the start of the session
    volume_ul: float = Field(ge=0, allow_inf_nan=False)
    capacity_ul: float = Field(gt=0, allow_inf_nan=False)
    #: volume a pipette cannot reach at the bottom of the container
    dead_volume_ul: float = Field(0.0, ge=0, allow_inf_nan=False)
    #: component -> amount (`0.01` is a mass fraction; `'20 mg/ml'`, `'0.1 M'`, `'30 vol%'`, `'5 wt%'`)
    composition: dict[str, str | float] = Field(default_factory=dict)
    #: the component that takes the rest (the solvent)
    balance: str | None = None
    #: a standard labware for the stock's slot (for a stock in a plate's well, `4/A1`: the plate's), by
    #: its PyLabRobot definition's name; without one, generic labware is built from the numbers here
    labware: str | None = Field(None, min_length=1)

    @field_validator("slot", mode="before")
    @classmethod
    def _slot_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class WellModel(_Model):
    """An empty container samples are mixed in, on a slot of its own."""

    slot: str = Field(min_length=1)
    capacity_ul: float = Field(gt=0, allow_inf_nan=False)
    dead_volume_ul: float = Field(0.0, ge=0, allow_inf_nan=False)
    #: a standard container for this slot (a tube, a trough), by its PyLabRobot definition's name;
    #: for a well in a plate (`4/A1`), the plate's; without one, a generic tube is built
    labware: str | None = Field(None, min_length=1)

    @field_validator("slot", mode="before")
    @classmethod
    def _slot_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class PlateModel(_Model):
    """A plate of empty mixing wells, named `<slot>/<row letter><column>` (`4/A1`)."""

    slot: str = Field(min_length=1)
    rows: int = Field(ge=1, le=26)
    columns: int = Field(ge=1, le=48)
    well_capacity_ul: float = Field(gt=0, allow_inf_nan=False)
    #: volume of each well a pipette cannot reach
    dead_volume_ul: float = Field(0.0, ge=0, allow_inf_nan=False)
    #: a standard plate, by its PyLabRobot definition's name (`cor_cos_24_wellplate_3470uL_Fb`); its
    #: wells must hold `well_capacity_ul`; without one, a generic plate is built from the numbers here
    labware: str | None = Field(None, min_length=1)

    @field_validator("slot", mode="before")
    @classmethod
    def _slot_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    def wells(self) -> list[Well]:
        return [
            Well(f"{self.slot}/{chr(ord('A') + r)}{c + 1}", self.well_capacity_ul, self.dead_volume_ul)
            for r in range(self.rows)
            for c in range(self.columns)
        ]


class DeckFile(_Model):
    """The whole file. `name` and `description` are for people; the rest becomes a `Deck`."""

    name: str = ""
    description: str = ""
    components: list[ComponentModel] = Field(min_length=1)
    pipettes: list[PipetteModel] = Field(default_factory=list)
    tip_racks: list[TipRackModel] = Field(default_factory=list)
    stocks: list[StockModel] = Field(default_factory=list)
    plates: list[PlateModel] = Field(default_factory=list)
    wells: list[WellModel] = Field(default_factory=list)

    def to_deck(self) -> Deck:
        """Build the deck; a bad value raises `DeckFileError` naming the entry it is in."""
        components = Components(
            _at(f"components[{i}]", partial(Component, c.name, c.formula, c.density_g_per_ml, c.role))
            for i, c in enumerate(self.components)
        )
        stocks = [
            _at(f"stocks[{i}] ({s.name})", partial(_stock, s, components)) for i, s in enumerate(self.stocks)
        ]
        wells = [w for p in self.plates for w in p.wells()]
        wells += [
            _at(f"wells[{i}]", partial(Well, w.slot, w.capacity_ul, w.dead_volume_ul))
            for i, w in enumerate(self.wells)
        ]
        racks = [
            _at(f"tip_racks[{i}]", partial(TipRack, r.slot, r.tip_type, r.n_tips, r.n_used))
            for i, r in enumerate(self.tip_racks)
        ]
        pipettes = [
            _at(f"pipettes[{i}]", partial(Pipette, **p.model_dump())) for i, p in enumerate(self.pipettes)
        ]
        labware = _labware(
            [
                *((f"tip_racks[{i}]", r.slot, r.labware) for i, r in enumerate(self.tip_racks)),
                *((f"stocks[{i}] ({s.name})", s.slot, s.labware) for i, s in enumerate(self.stocks)),
                *((f"plates[{i}]", p.slot, p.labware) for i, p in enumerate(self.plates)),
                *((f"wells[{i}]", w.slot, w.labware) for i, w in enumerate(self.wells)),
            ]
        )
        return _at(
            "deck",
            partial(Deck, components, tuple(stocks), tuple(wells), tuple(racks), tuple(pipettes), labware),
        )


def _labware(entries: list[tuple[str, str, str | None]]) -> tuple[tuple[str, str], ...]:
    """(slot, labware) for the entries that name one; two names for one slot is an error."""
    named: dict[str, tuple[str, str]] = {}
    for where, slot_name, labware in entries:
        if labware is None:
            continue
        slot = slot_name.partition("/")[0]  # a plate's well names its plate's slot
        if slot in named and named[slot][1] != labware:
            raise DeckFileError(
                f"{where}: labware {labware!r} for slot {slot!r}, "
                f"but {named[slot][0]} names {named[slot][1]!r}"
            )
        named.setdefault(slot, (where, labware))
    return tuple((slot, labware) for slot, (_, labware) in named.items())


def _stock(model: StockModel, components: Components) -> Stock:
    amounts: dict[str, Amount] = {}
    for name, text in model.composition.items():
        amounts[name] = _at(f"composition.{name}", partial(parse_amount, text))
    names = [*amounts, *([model.balance] if model.balance else [])]
    if not names:
        raise DeckFileError("composition is empty: give amounts and/or a balance component")
    comps = Components(components[n] for n in names)
    comp = Composition.from_amounts(comps, amounts, balance=model.balance)
    return Stock(model.name, model.slot, comp, model.volume_ul, model.capacity_ul, model.dead_volume_ul)


def _at(where: str, build: Callable[[], T]) -> T:
    """Run `build()`, prefixing any tandem error with where in the file it comes from."""
    try:
        return build()
    except (TandemError, ValueError, KeyError) as exc:
        if isinstance(exc, DeckFileError) and str(exc).startswith(where):
            raise
        raise DeckFileError(f"{where}: {exc}") from None


def load_deck_file(path: str | Path) -> Deck:
    """Read a deck file (YAML) into a `Deck`."""
    return read_deck_file(path).to_deck()


def read_deck_file(path: str | Path) -> DeckFile:
    """Read and validate a deck file without building the deck (for its name and description)."""
    path = Path(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise DeckFileError(f"cannot read deck file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeckFileError(f"{path}: not valid YAML: {exc}") from None
    return parse_deck_data(data, source=str(path))


def parse_deck_data(data: Any, *, source: str = "deck") -> DeckFile:
    if not isinstance(data, dict):
        raise DeckFileError(
            f"{source}: a deck file is a mapping with 'components', 'stocks', ...; got {data!r}"
        )
    try:
        return DeckFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise DeckFileError(f"{source}: {problems}") from None


__all__ = ["DeckFile", "DeckFileError", "load_deck_file", "parse_amount", "parse_deck_data", "read_deck_file"]
