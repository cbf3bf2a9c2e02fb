"""Preparation plans on a RunEngine with the simulated lab: liquid handler + cell loader IOC over CA."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Iterator
from typing import Any

import epics
import pytest
from bluesky import RunEngine
from fixtures_deck import closed_after_the_test

from tandem import Composition
from tandem.errors import InvalidCompositionError, TandemError, UnknownComponentError
from tandem.plans import preparation
from tandem.plans.device_check import WrongDeviceError
from tandem.plans.preparation import (
    PREPARATION_STREAM,
    load_sample,
    prepare_load_rinse,
    prepare_sample,
    rinse_cell,
)
from tandem.protocols import CellLoaderDevice, LiquidHandlerDevice
from tandem.robots.cell_loader import CellLoader, LiquidNotDetectedError
from tandem.robots.deck import Deck
from tandem.robots.liquid_handler import LiquidHandler
from tandem.robots.recipe_feasibility import InfeasibleRecipeError
from tandem.robots.recipe_solver import mix
from tandem.sim.clock import StationClock
from tandem.sim.ioc import RunningIOC
from tandem.sim.liquid_handler import SimulatedLiquidHandler

pytestmark = pytest.mark.timeout(120)

TARGET = {"sds": 0.02, "nacl": 0.005}


class Lab:
    def __init__(self, deck: Deck, loader: CellLoader | None = None, seed: int = 3) -> None:
        self.clock = StationClock("saxs")
        self.backend = SimulatedLiquidHandler(deck, self.clock, seed=seed)
        closed_after_the_test(self.backend)
        self.lh = LiquidHandler(self.backend, deck, name="liquid_handler")
        self.loader = loader
        self.docs: list[tuple[str, dict[str, Any]]] = []
        self.RE = RunEngine({}, call_returns_result=True)
        self.RE.subscribe(lambda name, doc: self.docs.append((name, doc)))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [doc for name, doc in self.docs if name == kind]

    def events(self, stream: str) -> list[dict[str, Any]]:
        descriptors = {d["uid"] for d in self.of("descriptor") if d["name"] == stream}
        return [e for e in self.of("event") if e["descriptor"] in descriptors]


@pytest.fixture
def loader(cell_loader_ioc: RunningIOC) -> Iterator[CellLoader]:
    for pv, value in (("Sim:SampleLineDry", 0), ("Sim:RinseLineDry", 0), ("Sim:TimeScale", 0.01)):
        epics.caput(cell_loader_ioc.pv(pv), value, wait=True, timeout=10)
    device = CellLoader(cell_loader_ioc.prefix, name="cell_loader")
    device.wait_for_connection(timeout=10)
    yield device
    device.destroy()


@pytest.fixture
def lab(saxs_deck: Deck, loader: CellLoader) -> Lab:
    return Lab(saxs_deck, loader)


def moved_composition(lab: Lab, deck: Deck) -> Composition:
    """What the simulated robot really put in the well, from its command log."""
    return mix(
        (deck.stock(c.location).composition, c.moved_ul)  # type: ignore[arg-type]
        for c in lab.backend.commands
        if c.name == "aspirate" and c.moved_ul
    )


def test_prepare_load_rinse_records_target_and_realized_that_differ_by_pipetting_error(
    lab: Lab, saxs_deck: Deck
) -> None:
    result = lab.RE(
        prepare_load_rinse(
            lab.lh, lab.loader, TARGET, 1000.0, 150.0, balance="water", campaign_id="c1", dry_s=5.0
        )
    )
    assert result.exit_status == "success"
    (start,) = lab.of("start")
    target = start["target"]["mass_fraction"]
    realized = start["realized"]["mass_fraction"]
    assert target == pytest.approx({"sds": 0.02, "nacl": 0.005, "water": 0.975})
    # the realized composition is what the simulated pipettes delivered, not the target
    truth = moved_composition(lab, saxs_deck)
    assert realized == pytest.approx(truth.mass_fractions, abs=1e-12)
    difference = max(abs(realized[n] - target[n]) for n in target)
    assert 0 < difference < 0.002
    assert start["sample_uid"] == start["sample"]["sample_uid"]
    assert start["campaign_id"] == "c1"
    assert [t["source"] for t in start["recipe"]["transfers"]] == [
        c.location for c in lab.backend.commands if c.name == "aspirate"
    ]
    # the realized composition is also an event, written before loading
    (prep,) = lab.events(PREPARATION_STREAM)
    assert json.loads(prep["data"]["liquid_handler_realized_json"])["mass_fraction"] == pytest.approx(
        realized
    )
    assert prep["data"]["liquid_handler_deviation"] == pytest.approx(difference)
    assert prep["seq_num"] == 1
    (load,) = lab.events("load")
    assert load["data"]["cell_loader_liquid"] == 1
    assert load["data"]["cell_loader_cell_volume"] == pytest.approx(150.0)
    (rinse,) = lab.events("rinse")
    assert rinse["data"]["cell_loader_liquid"] == 0
    (stop,) = lab.of("stop")
    assert stop["exit_status"] == "success"
    assert result.plan_result.realized.mass_fractions == pytest.approx(realized)


def test_prepare_sample_alone_returns_the_prepared_sample(saxs_deck: Deck) -> None:
    lab = Lab(saxs_deck)
    result = lab.RE(
        prepare_sample(lab.lh, {"sds": 0.01, "water": 0.99}, 500.0, sample_uid="s-1", campaign_id="c")
    )
    sample = result.plan_result
    assert sample.uid == "s-1"
    assert sample.state == "prepared"
    assert sample.location.startswith("liquid_handler/")
    (start,) = lab.of("start")
    assert start["sample_uid"] == "s-1"
    assert start["realized"] == sample.realized.to_dict()
    assert start["realized"]["total_volume_ul"] == pytest.approx(500.0, rel=0.05)
    assert len(lab.events(PREPARATION_STREAM)) == 1


def test_a_dry_line_fails_the_run_but_the_realized_composition_is_on_record(
    lab: Lab, loader: CellLoader
) -> None:
    epics.caput(f"{loader.prefix}Sim:SampleLineDry", 1, wait=True, timeout=10)
    with pytest.raises(LiquidNotDetectedError):
        lab.RE(prepare_load_rinse(lab.lh, lab.loader, TARGET, 1000.0, 150.0, balance="water", dry_s=1.0))
    (prep,) = lab.events(PREPARATION_STREAM)
    assert "mass_fraction" in json.loads(prep["data"]["liquid_handler_realized_json"])
    (stop,) = lab.of("stop")
    assert stop["exit_status"] == "fail"
    assert "liquid sensor did not trip" in stop["reason"]


def test_load_and_rinse_plans_run_on_their_own(lab: Lab) -> None:
    lab.RE(load_sample(lab.loader, 100.0, sample={"sample_uid": "s-9", "campaign_id": "c"}))
    lab.RE(rinse_cell(lab.loader, 1, dry_s=2.0))
    starts = lab.of("start")
    assert [s["plan_name"] for s in starts] == ["load_sample", "rinse_cell"]
    assert starts[0]["sample_uid"] == "s-9"
    assert [s["exit_status"] for s in lab.of("stop")] == ["success", "success"]


# -- bad input: typed errors and no robot command ----------------------------------------------


@pytest.mark.parametrize(
    ("target", "balance", "error"),
    [
        ({"sds": 0.02, "unobtainium": 0.01}, "water", UnknownComponentError),
        ({"sds": 1.5}, "water", InvalidCompositionError),
        ({"sds": -0.1}, "water", InvalidCompositionError),
        ({"sds": float("nan")}, "water", InvalidCompositionError),
        ({"sds": 0.02, "water": 0.5}, None, InvalidCompositionError),  # does not sum to one
        ({}, "water", InvalidCompositionError),
        ({"sds": 0.6}, "water", InfeasibleRecipeError),  # beyond the 100 mg/mL stock
    ],
)
def test_bad_targets_fail_typed_before_any_command(
    saxs_deck: Deck, target: dict[str, float], balance: str | None, error: type[Exception]
) -> None:
    lab = Lab(saxs_deck)
    with pytest.raises(error) as info:
        lab.RE(prepare_sample(lab.lh, target, 1000.0, balance=balance))
    assert isinstance(info.value, TandemError)
    assert lab.backend.commands == []
    assert lab.docs == []


def test_an_exhausted_deck_fails_before_any_command(saxs_deck: Deck) -> None:
    lab = Lab(saxs_deck.with_stock_volume("water", saxs_deck.stock("water").dead_volume_ul))
    with pytest.raises(InfeasibleRecipeError):
        lab.RE(prepare_sample(lab.lh, TARGET, 1000.0, balance="water"))
    assert lab.backend.commands == []


def test_a_robot_failure_mid_recipe_is_recorded_as_a_failed_run(saxs_deck: Deck) -> None:
    lab = Lab(saxs_deck)
    lab.backend.fail_on("dispense", 2)
    with pytest.raises(TandemError, match="dispense failed"):
        lab.RE(prepare_sample(lab.lh, TARGET, 1000.0, balance="water"))
    (start,) = lab.of("start")
    assert "dispense failed" in start["failure"]
    assert start["sample"]["state"] == "failed"
    (stop,) = lab.of("stop")
    assert stop["exit_status"] == "fail"


def test_wrong_devices_are_refused(saxs_deck: Deck) -> None:
    lab = Lab(saxs_deck)
    with pytest.raises(WrongDeviceError):
        lab.RE(prepare_sample("liquid_handler", TARGET, 1000.0, balance="water"))  # type: ignore[arg-type]
    assert lab.backend.commands == []


# -- the queue server's view --------------------------------------------------------------------


JSON_TYPES = {str, int, float, bool, type(None), dict, list}


@pytest.mark.parametrize("plan", [prepare_sample, load_sample, rinse_cell, prepare_load_rinse])
def test_plan_arguments_are_devices_or_json(plan: Any) -> None:
    hints = typing.get_type_hints(plan)
    for name, param in inspect.signature(plan).parameters.items():
        hint = hints[name]
        if (typing.get_origin(hint) or hint) in (LiquidHandlerDevice, CellLoaderDevice):
            continue
        leaves = {typing.get_origin(a) or a for a in (typing.get_args(hint) or (hint,))}
        assert leaves <= JSON_TYPES | {Any}, f"{plan.__name__}({name}: {hint})"
        if param.default is not inspect.Parameter.empty:
            json.dumps(param.default)


def test_queue_server_accepts_the_plans_with_devices_by_name(saxs_deck: Deck, loader: CellLoader) -> None:
    from bluesky_queueserver.manager.profile_ops import (
        existing_plans_and_devices_from_nspace,
        validate_plan,
    )

    lab = Lab(saxs_deck, loader)
    nspace = {
        "prepare_load_rinse": preparation.prepare_load_rinse,
        "prepare_sample": preparation.prepare_sample,
        "liquid_handler": lab.lh,
        "cell_loader": loader,
    }
    plans, devices, _, _ = existing_plans_and_devices_from_nspace(nspace=nspace)
    item = {
        "name": "prepare_load_rinse",
        "args": ["liquid_handler", "cell_loader", TARGET, 1000.0, 150.0],
        "kwargs": {"balance": "water", "campaign_id": "c1"},
        "item_type": "plan",
    }
    ok, message = validate_plan(item, allowed_plans=plans, allowed_devices=devices)
    assert ok, message
    bad = {**item, "args": ["liquid_handler", "cell_loader", "not a dict", 1000.0, 150.0]}
    ok, _ = validate_plan(bad, allowed_plans=plans, allowed_devices=devices)
    assert not ok
