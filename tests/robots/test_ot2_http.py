"""The OT-2 path without a robot: PyLabRobot's OT-2 backend against the local robot-server simulation.

PyLabRobot 0.2.2's `OpentronsOT2Backend` speaks HTTP through `ot_api` to `tandem.sim.ot2_http`;
the simulation's log is what an OT-2 would have received. The HTTP tests below pin the robot's
answers (envelopes, status codes, error bodies, the `Opentrons-Version` rule) that the backend and
any other client rely on.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fixtures_deck import EXAMPLE_DECKS
from pylabrobot.liquid_handling import LiquidHandler
from pylabrobot.liquid_handling.backends import OpentronsOT2Backend
from pylabrobot.resources import Coordinate, Plate, TipRack, TipSpot, cor_96_wellplate_360uL_Fb
from pylabrobot.resources.opentrons import OTDeck
from pylabrobot.resources.tip import Tip

from tandem import Amount, Basis, Components, Composition
from tandem.robots.deck import Deck
from tandem.robots.deck_file import load_deck_file
from tandem.robots.liquid_handler import BackendError
from tandem.robots.liquid_handler import LiquidHandler as TandemLiquidHandler
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.robots.recipe import Recipe, solve_recipe
from tandem.sim.ot2_http import LoggedRequest, OT2Simulator

pytestmark = pytest.mark.timeout(60)


def port_is_free(port: int) -> bool:
    """Nothing listens on the port, and a new server can bind it.

    The server closes each HTTP/1.0 connection, so its side of them lingers in TIME_WAIT: a server
    binds with SO_REUSEADDR (as `http.server` does), and so does this check.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def robot() -> Iterator[OT2Simulator]:
    with OT2Simulator(left="p300_single_gen2") as sim:
        yield sim
    assert port_is_free(sim.port)
    assert not any(t.name == "ot2-sim" for t in threading.enumerate())


# -- PyLabRobot against the simulation -------------------------------------------------------------


def tip_rack(name: str, tip_volume_ul: float = 300.0) -> TipRack:
    """A 96-tip rack built in code (PyLabRobot's OT-2 racks download their definitions)."""

    def make_tip(name: str) -> Tip:
        return Tip(
            has_filter=False,
            total_tip_length=59.3,
            maximal_volume=tip_volume_ul,
            fitting_depth=7.5,
            name=name,
        )

    spots = {}
    for column in range(12):
        for row in range(8):
            spot = TipSpot(f"{'ABCDEFGH'[row]}{column + 1}", size_x=9.0, size_y=9.0, make_tip=make_tip)
            spot.location = Coordinate(14.38 + column * 9.0 - 4.5, 74.24 - row * 9.0 - 4.5, 0.0)
            spots[spot.name] = spot
    return TipRack(name, size_x=127.76, size_y=85.48, size_z=64.49, ordered_items=spots)


class Bench:
    """PyLabRobot's LiquidHandler on an OT-2 deck (tips in slot 1, a plate in slot 2), over HTTP."""

    def __init__(self, sim: OT2Simulator) -> None:
        self.loop = asyncio.new_event_loop()
        self.backend = OpentronsOT2Backend(host=sim.host, port=sim.port)
        self.deck = OTDeck()
        self.lh = LiquidHandler(backend=self.backend, deck=self.deck)
        self.tips = tip_rack("tips")
        self.plate: Plate = cor_96_wellplate_360uL_Fb("plate")
        self.deck.assign_child_at_slot(self.tips, 1)
        self.deck.assign_child_at_slot(self.plate, 2)
        self.plate.get_item("A1").tracker.set_volume(300.0)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.loop.run_until_complete(self.lh.stop())
        self.loop.close()

    def xy_over(self, well: str) -> tuple[float, float]:
        """Where the backend aims for a well, in the OT-2's frame (slot 1's corner is the origin)."""
        centre = self.plate.get_item(well).get_location_wrt(self.deck, "c", "c", "cavity_bottom")
        origin = self.deck.slot_locations[0]
        return round(centre.x - origin.x, 6), round(centre.y - origin.y, 6)


@pytest.fixture
def bench(robot: OT2Simulator) -> Iterator[Bench]:
    bench = Bench(robot)
    bench.run(bench.lh.setup())
    yield bench
    bench.close()


def test_setup_creates_a_run_loads_the_mounted_pipette_and_homes(robot: OT2Simulator, bench: Bench) -> None:
    requests = [(e.method, e.path.split("/")[1], e.command_type) for e in robot.log]
    assert requests[:2] == [("POST", "runs", None), ("GET", "pipettes", None)]
    assert requests[2] == ("POST", "runs", "loadPipette")
    assert requests[-2:] == [("GET", "health", None), ("POST", "robot", None)]
    load = robot.commands()[0]
    assert load.params == {"pipetteName": "p300_single_gen2", "mount": "left"}
    assert load.outcome == "succeeded"
    assert bench.backend.left_pipette is not None
    assert bench.backend.right_pipette is None
    assert bench.backend.left_pipette["name"] == "p300_single_gen2"
    assert all(e.status < 400 for e in robot.log)


def test_a_transfer_sends_the_commands_an_ot2_expects(robot: OT2Simulator, bench: Bench) -> None:
    start = len(robot.commands())
    bench.run(bench.lh.pick_up_tips(bench.tips["A1"]))
    bench.run(bench.lh.aspirate(bench.plate["A1"], vols=[120.0]))
    pipette = robot.pipette("left")
    assert pipette is not None
    assert pipette.aspirated_ul == pytest.approx(120.0)
    bench.run(bench.lh.dispense(bench.plate["B2"], vols=[120.0]))
    bench.run(bench.lh.drop_tips(bench.tips["A1"]))
    commands = robot.commands()[start:]

    assert [c.command_type for c in commands] == [
        "loadLabware",  # the tip rack, defined just in time on its first use
        "pickUpTip",
        "moveToCoordinates",
        "aspirateInPlace",
        "moveToCoordinates",
        "moveToCoordinates",
        "dispenseInPlace",
        "moveToCoordinates",
        "dropTip",
    ]
    assert all(c.outcome == "succeeded" and c.status == 201 for c in commands)
    params = [c.params or {} for c in commands]
    pipette_id = params[1]["pipetteId"]
    assert pipette_id == robot.pipette("left").id  # type: ignore[union-attr]
    rack_id = params[0]["labwareId"]
    assert params[0]["location"] == {"slotName": "1"}
    assert params[0]["namespace"] == "pylabrobot"
    assert params[1]["labwareId"] == rack_id
    assert params[8]["labwareId"] == rack_id
    assert params[3] == {"flowRate": 46.43, "volume": 120.0, "pipetteId": pipette_id}  # p300 gen2's default
    assert params[6] == {"flowRate": 92.86, "volume": 120.0, "pipetteId": pipette_id, "pushOut": False}
    over_a1 = params[2]["coordinates"]
    assert (over_a1["x"], over_a1["y"]) == pytest.approx(bench.xy_over("A1"))
    assert params[4]["coordinates"]["z"] == 120  # back up to the traversal height
    over_b2 = params[5]["coordinates"]
    assert (over_b2["x"], over_b2["y"]) == pytest.approx(bench.xy_over("B2"))

    pipette = robot.pipette("left")
    assert pipette is not None
    assert pipette.tip is None
    assert pipette.aspirated_ul is None


def test_discarding_a_tip_goes_to_the_fixed_trash(robot: OT2Simulator, bench: Bench) -> None:
    bench.run(bench.lh.pick_up_tips(bench.tips["C3"]))
    start = len(robot.commands())
    bench.run(bench.lh.discard_tips())
    commands = robot.commands()[start:]
    assert [c.command_type for c in commands] == ["moveToAddressableAreaForDropTip", "dropTipInPlace"]
    assert (commands[0].params or {})["addressableAreaName"] == "fixedTrash"
    assert robot.pipette("left").tip is None  # type: ignore[union-attr]


def test_a_tip_lost_on_the_robot_fails_the_aspirate_with_the_robots_message(
    robot: OT2Simulator, bench: Bench
) -> None:
    bench.run(bench.lh.pick_up_tips(bench.tips["A1"]))
    robot.knock_off_tip("left")  # PyLabRobot still believes it holds one
    with pytest.raises(Exception, match="PipetteNotReadyToAspirateError: Pipette cannot aspirate in place"):
        bench.run(bench.lh.aspirate(bench.plate["A1"], vols=[50.0]))
    failed = robot.commands()[-1]
    assert (failed.command_type, failed.outcome, failed.status) == ("aspirateInPlace", "failed", 201)


def test_a_command_the_robot_is_told_to_fail_raises_its_error(robot: OT2Simulator, bench: Bench) -> None:
    robot.fail_next("pickUpTip", "No tip detected at A1.", error_type="TipPhysicallyMissingError")
    with pytest.raises(Exception, match=r"TipPhysicallyMissingError: No tip detected at A1\.") as raised:
        bench.run(bench.lh.pick_up_tips(bench.tips["A1"]))
    assert type(raised.value).__name__ == "OTError"
    assert robot.pipette("left").tip is None  # type: ignore[union-attr]
    # the failure was used once: the next pick-up works
    bench.run(bench.lh.pick_up_tips(bench.tips["B1"]))
    assert robot.commands()[-1].outcome == "succeeded"


@pytest.mark.xfail(
    strict=True,
    reason="ot_api keeps host, port and run id in module globals: the last OT-2 set up gets every command",
)
def test_two_ot2s_in_one_process_each_get_their_own_commands() -> None:
    with OT2Simulator() as first, OT2Simulator() as second:
        loop = asyncio.new_event_loop()
        try:
            to_first = OpentronsOT2Backend(host=first.host, port=first.port)
            loop.run_until_complete(to_first.setup())
            loop.run_until_complete(OpentronsOT2Backend(host=second.host, port=second.port).setup())
            before = len(first.log)
            loop.run_until_complete(to_first.home())
        finally:
            loop.close()
        assert len(first.log) == before + 1


def test_the_server_stops_and_frees_its_port_when_the_block_fails() -> None:
    sim = OT2Simulator()

    def fail_inside() -> None:
        with sim:
            assert not port_is_free(sim.port)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert port_is_free(sim.port)
    assert not any(t.name == "ot2-sim" for t in threading.enumerate())


# -- a tandem recipe on the OT-2 (issue 15's acceptance) ----------------------------------------------

# one transfer as PyLabRobot's OT-2 backend sends it (tips go to the fixed trash, robot software >= 7.1)
TRANSFER = [
    "pickUpTip",
    "moveToCoordinates",
    "aspirateInPlace",
    "moveToCoordinates",
    "moveToCoordinates",
    "dispenseInPlace",
    "moveToCoordinates",
    "moveToAddressableAreaForDropTip",
    "dropTipInPlace",
]


def saxs_recipe() -> tuple[Deck, Recipe]:
    """The SAXS example deck (OT-2 slots, a p300 and a p1000) and a 1 mL SDS/NaCl sample on it."""
    deck = load_deck_file(EXAMPLE_DECKS / "saxs_lab.yaml")
    names = ("sds", "nacl", "water")
    target = Composition.from_amounts(
        Components(deck.components[n] for n in names),
        {"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML), "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L)},
        balance="water",
    )
    return deck, solve_recipe(deck, target, total_volume_ul=1000.0)


@pytest.fixture
def two_pipette_robot() -> Iterator[OT2Simulator]:
    with OT2Simulator(left="p300_single_gen2", right="p1000_single_gen2") as sim:
        yield sim
    assert port_is_free(sim.port)


def ot2_backend(deck: Deck, sim: OT2Simulator) -> PyLabRobotBackend:
    """tandem's PyLabRobot backend configured for the OT-2, as a station profile names it."""
    return PyLabRobotBackend(
        deck, "opentrons_ot2", backend_options={"host": sim.host, "port": sim.port}, timeout_s=30
    )


def aim(robot: PyLabRobotBackend, location: str) -> tuple[float, float]:
    """Where the OT-2 should go for a stock or well: its centre, in the robot's frame (slot 1's corner)."""
    deck = robot.plr_deck.deck
    centre = robot.plr_deck.containers[location].get_location_wrt(deck, "c", "c", "cavity_bottom")
    origin = deck.slot_locations[0]
    return centre.x - origin.x, centre.y - origin.y


def transfers_in(commands: list[LoggedRequest]) -> list[list[LoggedRequest]]:
    """The commands after setup, split at each tip pick-up; tip racks' loadLabware set aside."""
    first = next(i for i, c in enumerate(commands) if c.command_type == "pickUpTip")
    groups: list[list[LoggedRequest]] = []
    for c in commands[first:]:
        if c.command_type == "loadLabware":
            continue
        if c.command_type == "pickUpTip":
            groups.append([])
        groups[-1].append(c)
    return groups


def test_a_tandem_recipe_through_the_ot2_backend_against_the_simulated_robot(
    two_pipette_robot: OT2Simulator,
) -> None:
    sim = two_pipette_robot
    deck, recipe = saxs_recipe()
    with ot2_backend(deck, sim) as robot:
        lh = TandemLiquidHandler(robot, deck, name="lh")
        lh.set(recipe).wait(60)
        assert lh.deck.well(recipe.destination).volume_ul == pytest.approx(1000.0)
        left, right = sim.pipette("left"), sim.pipette("right")
        assert left is not None
        assert right is not None
        assert left.tip is None  # the last tip went to the trash
        pipette_ids = {"p300": left.id, "p1000": right.id}
    commands = sim.commands()
    assert all(c.outcome == "succeeded" for c in commands)

    # setup: the run gets both mounted pipettes
    loads = [c.params for c in commands if c.command_type == "loadPipette"]
    assert loads == [
        {"pipetteName": "p300_single_gen2", "mount": "left"},
        {"pipetteName": "p1000_single_gen2", "mount": "right"},
    ]
    # each tip rack is loaded once, in its deck slot, before its first tip
    racks = [(c.params or {})["location"] for c in commands if c.command_type == "loadLabware"]
    used = {t.pipette for t in recipe.transfers}
    assert sorted(r["slotName"] for r in racks) == sorted({"p300": "10", "p1000": "11"}[p] for p in used)

    # then one tip, one aspirate, one dispense and one drop per transfer, with the recipe's volumes
    groups = transfers_in(commands)
    assert len(groups) == len(recipe.transfers)
    for transfer, group in zip(recipe.transfers, groups, strict=True):
        assert [c.command_type for c in group] == TRANSFER
        assert {(c.params or {})["pipetteId"] for c in group} == {pipette_ids[transfer.pipette]}
        params = {c.command_type: c.params or {} for c in group}
        assert params["aspirateInPlace"]["volume"] == pytest.approx(transfer.volume_ul)
        assert params["dispenseInPlace"]["volume"] == pytest.approx(transfer.volume_ul)
        # over the stock's vial to aspirate, over the sample's well to dispense
        over_source, over_destination = ((group[i].params or {})["coordinates"] for i in (1, 4))
        assert (over_source["x"], over_source["y"]) == pytest.approx(aim(robot, transfer.source))
        assert (over_destination["x"], over_destination["y"]) == pytest.approx(aim(robot, recipe.destination))
    # stopping cancels the run the way PyLabRobot does: two guesses at a cancel route, then DELETE
    ending = [(e.method, e.path.rsplit("/", 1)[-1], e.status) for e in sim.log[-3:]]
    assert ending == [("POST", "cancel", 404), ("POST", "cancel", 404), ("DELETE", ending[2][1], 200)]


def test_a_robot_error_mid_recipe_leaves_the_inventory_as_it_really_is(
    two_pipette_robot: OT2Simulator,
) -> None:
    sim = two_pipette_robot
    deck, recipe = saxs_recipe()
    sim.fail_next(
        "aspirateInPlace", "Overpressure detected on the plunger.", error_type="OverpressureError", skip=1
    )
    with ot2_backend(deck, sim) as robot:
        lh = TandemLiquidHandler(robot, deck, name="lh")
        status = lh.set(recipe)
        with pytest.raises(BackendError, match="OverpressureError: Overpressure detected on the plunger"):
            status.wait(60)
        first, second = recipe.transfers[0], recipe.transfers[1]
        # the first transfer happened; the second took a tip but moved no liquid
        assert lh.deck.well(recipe.destination).volume_ul == pytest.approx(first.volume_ul)
        assert lh.deck.stock(first.source).volume_ul == pytest.approx(
            deck.stock(first.source).volume_ul - first.volume_ul
        )
        if second.source != first.source:
            assert lh.deck.stock(second.source) == deck.stock(second.source)
    failed = [c for c in sim.commands() if c.outcome == "failed"]
    assert [c.command_type for c in failed] == ["aspirateInPlace"]
    assert (failed[0].params or {})["volume"] == pytest.approx(second.volume_ul)
    assert [c.command_type for c in sim.commands()].count("dispenseInPlace") == 1


# -- the robot's answers over HTTP ------------------------------------------------------------------


@pytest.fixture
def http(robot: OT2Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=robot.url, headers={"Opentrons-Version": "3"}) as client:
        yield client


def new_run(http: httpx.Client) -> str:
    answer = http.post("/runs")
    assert answer.status_code == 201
    run_id: str = answer.json()["data"]["id"]
    return run_id


def command(http: httpx.Client, run_id: str, command_type: str, **params: Any) -> dict[str, Any]:
    """Post a setup command and read it back, as ot_api does: the final record."""
    posted = http.post(
        f"/runs/{run_id}/commands", json={"data": {"commandType": command_type, "params": params}}
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["data"]["status"] == "queued"
    read = http.get(f"/runs/{run_id}/commands/{posted.json()['data']['id']}")
    assert read.status_code == 200
    record: dict[str, Any] = read.json()["data"]
    return record


def rack_definition(load_name: str = "rack", tip_volume_ul: float = 300.0) -> dict[str, Any]:
    well = {"depth": 59.3, "x": 14.38, "y": 74.24, "z": 5.0, "shape": "circular", "diameter": 5.2}
    return {
        "schemaVersion": 2,
        "version": 1,
        "namespace": "custom",
        "metadata": {"displayName": load_name, "displayCategory": "tipRack", "displayVolumeUnits": "µL"},
        "parameters": {"format": "96Standard", "isTiprack": True, "tipLength": 59.3, "loadName": load_name},
        "ordering": [["A1", "B1"]],
        "dimensions": {"xDimension": 127.76, "yDimension": 85.48, "zDimension": 64.49},
        "wells": {
            "A1": {**well, "totalLiquidVolume": tip_volume_ul},
            "B1": {**well, "totalLiquidVolume": tip_volume_ul},
        },
        "groups": [],
    }


@pytest.fixture
def loaded(http: httpx.Client) -> dict[str, str]:
    """A run with the left p300 and a tip rack in slot 1: the ids the commands need."""
    run_id = new_run(http)
    pipette = command(http, run_id, "loadPipette", pipetteName="p300_single_gen2", mount="left")
    defined = http.post(f"/runs/{run_id}/labware_definitions", json={"data": rack_definition()})
    assert defined.status_code == 201
    assert defined.json() == {"data": {"definitionUri": "custom/rack/1"}}
    command(
        http, run_id, "loadLabware", location={"slotName": "1"}, loadName="rack", namespace="custom",
        version=1, labwareId="rack-1",
    )  # fmt: skip
    return {"run": run_id, "pipette": pipette["result"]["pipetteId"], "rack": "rack-1"}


def test_the_version_header_is_required_as_on_the_robot(robot: OT2Simulator) -> None:
    with httpx.Client(base_url=robot.url) as bare:
        missing = bare.post("/runs")
        assert missing.status_code == 422
        assert missing.json() == {
            "errors": [
                {
                    "id": "InvalidRequest",
                    "title": "Invalid Request",
                    "detail": "field required",
                    "errorCode": "4000",
                    "source": {"header": "opentrons-version"},
                }
            ]
        }
        # the v1 routes word it their way
        health = bare.get("/health")
        assert health.status_code == 422
        assert health.json() == {"message": "header.opentrons-version: field required", "errorCode": "4000"}
        too_old = bare.get("/runs", headers={"Opentrons-Version": "1"})
        assert too_old.status_code == 400
        assert too_old.json()["errors"][0]["id"] == "OutdatedAPIVersion"
        latest = bare.get("/runs", headers={"Opentrons-Version": "*"})
        assert latest.status_code == 200
        assert latest.headers["Opentrons-Version"] == "4"
        assert latest.headers["Opentrons-Min-Version"] == "2"
    assert robot.log[0].status == 422  # refused requests are logged too


def test_the_v1_routes(robot: OT2Simulator, http: httpx.Client) -> None:
    pipettes = http.get("/pipettes").json()
    assert pipettes["left"] | {"id": None} == {
        "model": "p300_single_v2.1",
        "name": "p300_single_gen2",
        "tip_length": 51.0,
        "mount_axis": "z",
        "plunger_axis": "b",
        "id": None,
    }
    assert pipettes["right"] == {
        "model": None,
        "name": None,
        "tip_length": None,
        "mount_axis": "a",
        "plunger_axis": "c",
        "id": None,
    }
    assert http.post("/robot/home", json={"target": "robot"}).json() == {"message": "Homing robot."}
    bad = http.post("/robot/home", json={"target": "gantry"})
    assert bad.status_code == 422
    assert set(bad.json()) == {"message", "errorCode"}
    assert http.get("/health").json()["api_version"] == robot.api_version
    with pytest.raises(ValueError, match="no OT-2 pipette named"):
        OT2Simulator(left="p300_single_gen9")


def test_envelopes_and_not_found(http: httpx.Client) -> None:
    run_id = new_run(http)
    run = http.get(f"/runs/{run_id}").json()["data"]
    assert (run["id"], run["status"], run["current"]) == (run_id, "idle", True)
    runs = http.get("/runs").json()
    assert runs["links"]["current"]["href"] == f"/runs/{run_id}"
    assert runs["meta"] == {"cursor": 0, "totalLength": 1}
    missing = http.get("/runs/nope")
    assert missing.status_code == 404
    assert missing.json()["errors"][0] | {"detail": ""} == {
        "id": "RunNotFound",
        "title": "Run Not Found",
        "detail": "",
        "errorCode": "4000",
    }
    no_command = http.get(f"/runs/{run_id}/commands/nope")
    assert (no_command.status_code, no_command.json()["errors"][0]["id"]) == (404, "CommandNotFound")
    assert http.post(f"/runs/{run_id}/cancel").status_code == 404
    assert http.put(f"/runs/{run_id}").status_code == 405
    dismissed = http.patch(f"/runs/{run_id}", json={"data": {"current": False}})
    assert dismissed.status_code == 200
    assert dismissed.json()["data"]["current"] is False
    # a run no longer current takes no more commands
    stale = http.post(f"/runs/{run_id}/commands", json={"data": {"commandType": "home", "params": {}}})
    assert (stale.status_code, stale.json()["errors"][0]["id"]) == (409, "RunStopped")
    assert http.delete(f"/runs/{run_id}").status_code == 200
    assert http.get(f"/runs/{run_id}").status_code == 404


def test_bad_params_are_refused_before_the_robot_moves(robot: OT2Simulator, http: httpx.Client) -> None:
    run_id = new_run(http)
    bad = http.post(
        f"/runs/{run_id}/commands",
        json={
            "data": {
                "commandType": "aspirateInPlace",
                "params": {"pipetteId": "p", "volume": -1, "flowRate": 5},
            }
        },
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["source"] == {"pointer": "/data/params/volume"}
    missing = http.post(
        f"/runs/{run_id}/commands", json={"data": {"commandType": "pickUpTip", "params": {"pipetteId": "p"}}}
    )
    assert (missing.status_code, missing.json()["errors"][0]["detail"]) == (422, "field required")
    unknown = http.post(f"/runs/{run_id}/commands", json={"data": {"commandType": "teleport", "params": {}}})
    assert unknown.status_code == 422
    assert [c.outcome for c in robot.commands()] == [None, None, None]
    assert http.get(f"/runs/{run_id}/commands").json()["data"] == []


def test_impossible_commands_fail_with_the_robots_errors(http: httpx.Client, loaded: dict[str, str]) -> None:
    run, pipette, rack = loaded["run"], loaded["pipette"], loaded["rack"]

    def error_of(record: dict[str, Any]) -> tuple[str, str]:
        assert record["status"] == "failed"
        assert record["result"] is None
        return record["error"]["errorType"], record["error"]["detail"]

    aspirate = {"pipetteId": pipette, "flowRate": 46.43}
    assert error_of(command(http, run, "aspirateInPlace", volume=10.0, **aspirate))[0] == (
        "PipetteNotReadyToAspirateError"
    )
    assert error_of(command(http, run, "pickUpTip", pipetteId=pipette, labwareId="nope", wellName="A1")) == (
        "LabwareNotLoadedError",
        "Labware nope not found.",
    )
    assert error_of(command(http, run, "pickUpTip", pipetteId="ghost", labwareId=rack, wellName="A1")) == (
        "PipetteNotLoadedError",
        "Pipette ghost not found.",
    )
    assert error_of(command(http, run, "pickUpTip", pipetteId=pipette, labwareId=rack, wellName="Z9")) == (
        "WellDoesNotExistError",
        f"Z9 does not exist in {rack}.",
    )
    picked = command(http, run, "pickUpTip", pipetteId=pipette, labwareId=rack, wellName="A1")
    assert picked["status"] == "succeeded"
    assert picked["result"]["tipVolume"] == 300.0
    second = command(http, run, "pickUpTip", pipetteId=pipette, labwareId=rack, wellName="B1")
    assert error_of(second) == (
        "UnexpectedTipAttachError",
        "Cannot perform pick_up_tip with a tip already attached.",
    )
    assert second["error"]["errorCode"] == "3012"
    assert command(http, run, "aspirateInPlace", volume=250.0, **aspirate)["result"] == {"volume": 250.0}
    assert error_of(command(http, run, "aspirateInPlace", volume=60.0, **aspirate)) == (
        "InvalidAspirateVolumeError",
        "Cannot aspirate 60.0 µL when only 50.0 is available in the tip.",
    )
    dispense = {"pipetteId": pipette, "flowRate": 92.86}
    assert error_of(command(http, run, "dispenseInPlace", volume=300.0, **dispense)) == (
        "InvalidDispenseVolumeError",
        "Cannot dispense 300.0 µL when only 250.0 µL has been aspirated.",
    )
    occupied = command(
        http, run, "loadLabware", location={"slotName": "1"}, loadName="rack", namespace="custom", version=1
    )
    assert error_of(occupied)[0] == "LocationIsOccupiedError"
    wrong = command(http, run, "loadPipette", pipetteName="p20_single_gen2", mount="left")
    assert error_of(wrong) == (
        "FailedToLoadPipetteError",
        "mount Mount.LEFT: instrument p20_single_gen2 was requested but p300_single_v2.1 is present",
    )
    # a failed setup command leaves the run idle: the robot takes the next one
    assert http.get(f"/runs/{run}").json()["data"]["status"] == "idle"
    assert command(http, run, "dispenseInPlace", volume=250.0, **dispense)["status"] == "succeeded"


def test_wait_until_complete_answers_with_the_outcome(http: httpx.Client, loaded: dict[str, str]) -> None:
    body = {"data": {"commandType": "home", "params": {}}}
    answer = http.post(f"/runs/{loaded['run']}/commands", params={"waitUntilComplete": "true"}, json=body)
    assert answer.status_code == 201
    assert answer.json()["data"]["status"] == "succeeded"


def test_protocol_commands_wait_for_play_and_setup_commands_stop_at_it(
    http: httpx.Client, loaded: dict[str, str]
) -> None:
    run = loaded["run"]
    home = {"data": {"commandType": "home", "params": {}, "intent": "protocol"}}
    queued = http.post(f"/runs/{run}/commands", json=home).json()["data"]
    assert http.get(f"/runs/{run}/commands/{queued['id']}").json()["data"]["status"] == "queued"
    play = http.post(f"/runs/{run}/actions", json={"data": {"actionType": "play"}})
    assert play.status_code == 201
    assert play.json()["data"]["actionType"] == "play"
    assert http.get(f"/runs/{run}/commands/{queued['id']}").json()["data"]["status"] == "succeeded"
    setup = http.post(f"/runs/{run}/commands", json={"data": {"commandType": "home", "params": {}}})
    assert (setup.status_code, setup.json()["errors"][0]["id"]) == (409, "SetupCommandNotAllowed")
    assert http.delete(f"/runs/{run}").status_code == 409  # a running run is not deleted
    assert http.post(f"/runs/{run}/actions", json={"data": {"actionType": "stop"}}).status_code == 201
    assert http.delete(f"/runs/{run}").status_code == 200
