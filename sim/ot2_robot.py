"""The simulated OT-2's protocol engine: what the robot holds and how it answers a command.

`tandem.sim.ot2_http` serves this over HTTP; this module knows nothing of HTTP. Its state is the
robot's: the pipettes physically mounted, and per run the pipettes loaded, the labware
definitions added and the labware loaded, the tip on each pipette and the liquid in it. Its answers
are the robot's: a command that cannot run raises `CommandFailure` carrying the error type, message
and code that the Opentrons robot server (robot-server / protocol engine, 2024) puts in the failed
command's `error`, so a client sees the same text it would see on the bench.

What the real robot checks and this one does too: a pipette must be loaded before it moves; the
pipette requested must be the one on the mount; labware needs a definition, a free slot and a
known id; only a tip rack gives tips, from a well it has; a second tip is refused; an aspirate
needs a tip and fits in min(tip volume, pipette volume); a dispense cannot give more than was
drawn. What it does not model, because an OT-2 does not know it either: whether a tip spot still
holds a tip (no tip sensor), where liquid is (the OT-2 API moves to coordinates), collisions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Opentrons error codes (opentrons_shared_data/errors/definitions/1/errors.json)
GENERAL_ERROR = "4000"
UNEXPECTED_TIP_ATTACH = "3012"

# The robot accepts a few nL over the limit as floating point noise (protocol engine's tolerance)
_VOLUME_TOLERANCE_UL = 1e-9

# An OT-2 deck: twelve slots; its fixed trash is an addressable area of its own
OT2_SLOTS = tuple(str(n) for n in range(1, 13))
OT2_ADDRESSABLE_AREAS = (*OT2_SLOTS, "fixedTrash")


@dataclass(frozen=True)
class PipetteModel:
    """A pipette as `GET /pipettes` reports it: load name, model string, volume, default tip length."""

    name: str
    model: str
    max_volume_ul: float
    tip_length_mm: float


# The OT-2 pipettes PyLabRobot's backend knows (its `pipette_name2volume`), with the model
# string a current unit of each reports and its default tip length.
PIPETTE_MODELS = {
    p.name: p
    for p in (
        PipetteModel("p10_single", "p10_single_v1.5", 10.0, 33.0),
        PipetteModel("p50_single", "p50_single_v1.5", 50.0, 51.7),
        PipetteModel("p300_single", "p300_single_v1.5", 300.0, 51.7),
        PipetteModel("p1000_single", "p1000_single_v1.5", 1000.0, 76.7),
        PipetteModel("p20_single_gen2", "p20_single_v2.2", 20.0, 39.2),
        PipetteModel("p300_single_gen2", "p300_single_v2.1", 300.0, 51.0),
        PipetteModel("p1000_single_gen2", "p1000_single_v2.2", 1000.0, 76.7),
    )
}


class CommandFailure(Exception):  # noqa: N818 - the robot's word for it: the command failed
    """A command the robot could not execute: becomes the command's `error` occurrence."""

    def __init__(self, error_type: str, detail: str, error_code: str = GENERAL_ERROR) -> None:
        super().__init__(f"{error_type}: {detail}")
        self.error_type = error_type
        self.detail = detail
        self.error_code = error_code


def now_iso() -> str:
    """A timestamp as the robot writes it (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat()


@dataclass
class LoadedLabware:
    """A labware a `loadLabware` command put on the deck."""

    id: str
    load_name: str
    definition_uri: str
    slot: str
    display_name: str | None


@dataclass
class Tip:
    """The tip on a pipette: its capacity and geometry, from the tip rack's definition."""

    volume_ul: float
    length_mm: float
    diameter_mm: float


@dataclass
class LoadedPipette:
    """A pipette a `loadPipette` command loaded: what it holds now."""

    id: str
    model: PipetteModel
    mount: str
    tip: Tip | None = None
    # None when no tip is on (the engine's "not ready to aspirate"); µL drawn into the tip otherwise
    aspirated_ul: float | None = None
    position: dict[str, float] = field(default_factory=lambda: {"x": 0.0, "y": 0.0, "z": 0.0})


@dataclass
class InjectedFailure:
    """A failure the test asked for: a command of this type fails with this error, after `skip` succeed."""

    command_type: str
    error_type: str
    detail: str
    error_code: str = GENERAL_ERROR
    skip: int = 0


class RunEngine:
    """One run's protocol engine: executes commands against the robot's state of that run."""

    def __init__(self, mounted: dict[str, PipetteModel | None]) -> None:
        self.mounted = mounted
        self.pipettes: dict[str, LoadedPipette] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.labware: dict[str, LoadedLabware] = {}
        self.failures: list[InjectedFailure] = []

    # -- definitions (POST /runs/{id}/labware_definitions) ------------------------------------

    def add_definition(self, definition: dict[str, Any]) -> str:
        """Store a labware definition for this run and return its URI, namespace/loadName/version."""
        uri = f"{definition['namespace']}/{definition['parameters']['loadName']}/{definition['version']}"
        self.definitions[uri] = definition
        return uri

    # -- commands -------------------------------------------------------------------------------

    def execute(self, command_type: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one command; return its `result` or raise `CommandFailure` with the robot's error."""
        failure = next((f for f in self.failures if f.command_type == command_type), None)
        if failure is not None:
            if failure.skip > 0:
                failure.skip -= 1
            else:
                self.failures.remove(failure)
                raise CommandFailure(failure.error_type, failure.detail, failure.error_code)
        handler = getattr(self, "_" + command_type, None)
        if handler is None:  # the HTTP layer refuses unknown types before they get here
            raise CommandFailure("UnexpectedProtocolError", f"Unknown command type {command_type}.")
        result: dict[str, Any] = handler(params)
        return result

    def _loadPipette(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - command name
        mount = params["mount"]
        name = params["pipetteName"]
        present = self.mounted.get(mount)
        # the hardware controller's words (backends/controller.py), wrapped by the engine
        if present is None:
            detail = (
                f"mount Mount.{mount.upper()}: instrument {name} was requested, but no instrument is present"
            )
            raise CommandFailure("FailedToLoadPipetteError", detail)
        if present.name != name:
            detail = (
                f"mount Mount.{mount.upper()}: instrument {name} was requested but {present.model} is present"
            )
            raise CommandFailure("FailedToLoadPipetteError", detail)
        pipette_id = params.get("pipetteId") or str(uuid.uuid4())
        self.pipettes = {k: p for k, p in self.pipettes.items() if p.mount != mount}
        self.pipettes[pipette_id] = LoadedPipette(pipette_id, present, mount)
        return {"pipetteId": pipette_id}

    def _loadLabware(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        uri = f"{params['namespace']}/{params['loadName']}/{params['version']}"
        definition = self.definitions.get(uri)
        if definition is None:
            raise CommandFailure(
                "LabwareDefinitionDoesNotExistError", f"Labware definition for matching {uri} not found."
            )
        location = params["location"]
        slot = str(location.get("slotName")) if isinstance(location, dict) else None
        if slot is None or slot not in OT2_SLOTS:
            raise CommandFailure(
                "LabwareIsNotAllowedInLocationError", f"{params['loadName']} is not allowed in slot {slot}"
            )
        for other in self.labware.values():
            if other.slot == slot:
                raise CommandFailure(
                    "LocationIsOccupiedError",
                    f"Labware {other.load_name} is already present at"
                    f" slotName=<DeckSlotName.SLOT_{slot}: '{slot}'>.",
                )
        labware_id = params.get("labwareId") or str(uuid.uuid4())
        self.labware[labware_id] = LoadedLabware(
            labware_id, params["loadName"], uri, slot, params.get("displayName")
        )
        return {"labwareId": labware_id, "definition": definition, "offsetId": None}

    def _pipette(self, pipette_id: str) -> LoadedPipette:
        try:
            return self.pipettes[pipette_id]
        except KeyError:
            raise CommandFailure("PipetteNotLoadedError", f"Pipette {pipette_id} not found.") from None

    def _well(self, labware_id: str, well_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The definition of a loaded labware and of one of its wells."""
        labware = self.labware.get(labware_id)
        if labware is None:
            raise CommandFailure("LabwareNotLoadedError", f"Labware {labware_id} not found.")
        definition = self.definitions[labware.definition_uri]
        well = definition["wells"].get(well_name)
        if well is None:
            raise CommandFailure("WellDoesNotExistError", f"{well_name} does not exist in {labware_id}.")
        return definition, well

    def _move_to_well(self, pipette: LoadedPipette, params: dict[str, Any]) -> dict[str, Any]:
        """Where the pipette ends up over a well: its slot's corner + the well + the offset (a model)."""
        _, well = self._well(params["labwareId"], params["wellName"])
        offset = params.get("wellLocation", {}).get("offset", {})
        slot = int(self.labware[params["labwareId"]].slot) - 1
        # slot pitch on an OT-2 deck: 132.5 mm in x, 90.5 mm in y, three slots a row
        corner = {"x": 132.5 * (slot % 3), "y": 90.5 * (slot // 3), "z": 0.0}
        pipette.position = {k: corner[k] + float(well[k]) + float(offset.get(k, 0.0)) for k in "xyz"}
        return dict(pipette.position)

    def _pickUpTip(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        definition, well = self._well(params["labwareId"], params["wellName"])
        if not definition["parameters"].get("isTiprack"):
            raise CommandFailure(
                "LabwareIsNotTipRackError", f"Labware {params['labwareId']} has no tip length defined."
            )
        if pipette.tip is not None:
            # the hardware controller refuses a second tip (UnexpectedTipAttachError)
            raise CommandFailure(
                "UnexpectedTipAttachError",
                "Cannot perform pick_up_tip with a tip already attached.",
                UNEXPECTED_TIP_ATTACH,
            )
        position = self._move_to_well(pipette, params)
        tip_length = float(definition["parameters"]["tipLength"]) - float(
            definition["parameters"].get("tipOverlap", 0.0)
        )
        pipette.tip = Tip(float(well["totalLiquidVolume"]), tip_length, float(well.get("diameter", 0.0)))
        pipette.aspirated_ul = 0.0
        return {
            "tipVolume": pipette.tip.volume_ul,
            "tipLength": pipette.tip.length_mm,
            "tipDiameter": pipette.tip.diameter_mm,
            "position": position,
        }

    def _aspirateInPlace(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        if pipette.aspirated_ul is None or pipette.tip is None:
            # the engine's message is about blow-outs even when the cause is a missing tip
            raise CommandFailure(
                "PipetteNotReadyToAspirateError",
                "Pipette cannot aspirate in place because of a previous blow out."
                " The first aspirate following a blow-out must be from a specific well"
                " so the plunger can be reset in a known safe position.",
            )
        volume = float(params["volume"])
        available = min(pipette.tip.volume_ul, pipette.model.max_volume_ul) - pipette.aspirated_ul
        if volume > available + _VOLUME_TOLERANCE_UL:
            raise CommandFailure(
                "InvalidAspirateVolumeError",
                f"Cannot aspirate {_num(volume)} µL when only {_num(available)} is available in the tip.",
            )
        volume = min(volume, available)
        pipette.aspirated_ul += volume
        return {"volume": volume}

    def _dispenseInPlace(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        push_out = params.get("pushOut")
        if push_out is not None and float(push_out) < 0:
            raise CommandFailure("InvalidPushOutVolumeError", "push out value cannot have a negative value.")
        volume = float(params["volume"])
        if pipette.aspirated_ul is None:
            raise CommandFailure(
                "InvalidDispenseVolumeError",
                "Cannot perform a dispense if there is no volume in attached tip.",
            )
        if pipette.aspirated_ul - volume < -_VOLUME_TOLERANCE_UL:
            raise CommandFailure(
                "InvalidDispenseVolumeError",
                f"Cannot dispense {_num(volume)} µL when only {_num(pipette.aspirated_ul)} µL"
                " has been aspirated.",
            )
        volume = min(volume, pipette.aspirated_ul)
        pipette.aspirated_ul -= volume
        return {"volume": volume}

    def _moveToCoordinates(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        pipette.position = {k: float(params["coordinates"][k]) for k in "xyz"}
        return {"position": dict(pipette.position)}

    def _dropTip(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        position = self._move_to_well(pipette, params)
        # an OT-2 has no tip sensor: dropping without a tip just runs the plunger
        pipette.tip, pipette.aspirated_ul = None, None
        return {"position": position}

    def _moveToAddressableAreaForDropTip(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        area = params["addressableAreaName"]
        if area not in OT2_ADDRESSABLE_AREAS:
            raise CommandFailure(
                "AreaNotInDeckConfigurationError", f"{area} is not provided by the deck configuration."
            )
        # the fixed trash's drop point on an OT-2 deck (slot 12, its centre, well top)
        offset = params.get("wellLocation", {}).get("offset", {})
        base = {"x": 347.84, "y": 351.5, "z": 82.0}
        pipette.position = {k: base[k] + float(offset.get(k, 0.0)) for k in "xyz"}
        return {"position": dict(pipette.position)}

    def _dropTipInPlace(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        pipette.tip, pipette.aspirated_ul = None, None
        return {}

    def _savePosition(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        pipette = self._pipette(params["pipetteId"])
        position_id = params.get("positionId") or str(uuid.uuid4())
        return {"positionId": position_id, "position": dict(pipette.position)}

    def _home(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}


def _num(value: float) -> str:
    """A volume as Python prints a float in the robot's f-strings (`20.0`, `12.5`)."""
    return repr(float(value))
