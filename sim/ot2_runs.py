"""robot-server's runs API as the simulated OT-2 serves it: runs, labware definitions, commands.

What a client sees of a run (`POST /runs`, `/runs/{id}/...`): JSON bodies in a `data` envelope
(`links` and `meta` on collections), 201 on creation, and a refused request as an `ApiError`, the
`{"errors": [{id, title, detail, errorCode}]}` body robot-server sends with its status. A command is
validated against its model first (`check_params`: a bad one is a 422 pointing at the field, and
never reaches the robot), answered `queued`, executed by the run's `RunEngine`
(`tandem.sim.ot2_robot`), and read back `succeeded` with its `result` or `failed` with the
robot's `error` (`errorType`, `detail`, `errorCode`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tandem.sim.ot2_robot import CommandFailure, InjectedFailure, PipetteModel, RunEngine, now_iso

GENERAL_ERROR = "4000"
ROBOT_IN_USE = "4001"
_NOT_IDLE = (
    "Run is currently active. Allow the run to finish or"
    " stop it with a `stop` action before attempting to modify it."
)


class ApiError(Exception):
    """A request robot-server refuses: HTTP status and one JSON:API error."""

    def __init__(
        self,
        status: int,
        id: str,
        title: str,
        detail: str,
        error_code: str = GENERAL_ERROR,
        *,
        pointer: str | None = None,
        header: str | None = None,
    ) -> None:
        super().__init__(f"{status} {id}: {detail}")
        self.status = status
        self.error: dict[str, Any] = {"id": id, "title": title, "detail": detail, "errorCode": error_code}
        if pointer is not None:
            self.error["source"] = {"pointer": pointer}
        if header is not None:
            self.error["source"] = {"header": header}

    def body(self) -> dict[str, Any]:
        """The response body of the current routes: `{"errors": [...]}`."""
        return {"errors": [self.error]}


# Each command's params as the protocol engine's models declare them: name -> kind, with "?" for
# optional. Only the commands the simulation executes (tandem.sim.ot2_robot.RunEngine).
_WELL = {"pipetteId": "str", "labwareId": "str", "wellName": "str", "wellLocation": "object?"}
COMMAND_PARAMS: dict[str, dict[str, str]] = {
    "loadPipette": {"pipetteName": "str", "mount": "str", "pipetteId": "str?"},
    "loadLabware": {
        "location": "any",
        "loadName": "str",
        "namespace": "str",
        "version": "number",
        "labwareId": "str?",
        "displayName": "str?",
    },
    "pickUpTip": _WELL,
    "dropTip": {**_WELL, "homeAfter": "bool?", "alternateDropLocation": "bool?"},
    "aspirateInPlace": {"pipetteId": "str", "volume": "number", "flowRate": "number"},
    "dispenseInPlace": {"pipetteId": "str", "volume": "number", "flowRate": "number", "pushOut": "number?"},
    "moveToCoordinates": {
        "pipetteId": "str",
        "coordinates": "object",
        "minimumZHeight": "number?",
        "forceDirect": "bool?",
        "speed": "number?",
    },
    "moveToAddressableAreaForDropTip": {
        "pipetteId": "str",
        "addressableAreaName": "str",
        "wellName": "str?",
        "offset": "object?",
        "wellLocation": "object?",
        "alternateDropLocation": "bool?",
        "forceDirect": "bool?",
        "minimumZHeight": "number?",
        "speed": "number?",
    },
    "dropTipInPlace": {"pipetteId": "str", "homeAfter": "bool?"},
    "savePosition": {"pipetteId": "str", "positionId": "str?", "failOnNotHomed": "bool?"},
    "home": {"axes": "any?", "skipIfMountPositionOk": "str?"},
}

_KIND_ERRORS = {
    "str": "str type expected",
    "number": "value is not a valid float",
    "bool": "value could not be parsed to a boolean",
    "object": "value is not a valid dict",
}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "number":  # pydantic v1 coerces booleans and numeric strings to float
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    if kind == "bool":
        return isinstance(value, bool) or value in (0, 1)
    if kind == "object":
        return isinstance(value, dict)
    return True


def check_params(command_type: str, params: Any) -> None:
    """Refuse (422) params the command's model would reject: missing, mistyped or out of range."""
    if not isinstance(params, dict):
        raise ApiError(
            422, "InvalidRequest", "Invalid Request", "value is not a valid dict", pointer="/data/params"
        )
    for name, declared in COMMAND_PARAMS[command_type].items():
        pointer = f"/data/params/{name}"
        optional = declared.endswith("?")
        kind = declared.rstrip("?")
        value = params.get(name)
        if value is None:
            if optional:
                continue
            raise ApiError(422, "InvalidRequest", "Invalid Request", "field required", pointer=pointer)
        if not _is_kind(value, kind):
            raise ApiError(422, "InvalidRequest", "Invalid Request", _KIND_ERRORS[kind], pointer=pointer)
    # the volume and flow-rate mixins' limits (pipetting_common.py)
    if "volume" in params and float(params["volume"]) < 0:
        raise ApiError(
            422,
            "InvalidRequest",
            "Invalid Request",
            "ensure this value is greater than or equal to 0",
            pointer="/data/params/volume",
        )
    if "flowRate" in params and float(params["flowRate"]) <= 0:
        raise ApiError(
            422,
            "InvalidRequest",
            "Invalid Request",
            "ensure this value is greater than 0",
            pointer="/data/params/flowRate",
        )


@dataclass
class Run:
    """A run: its engine (the robot's state in it), status, and the commands it received."""

    id: str
    created_at: str
    engine: RunEngine
    status: str = "idle"
    current: bool = True
    commands: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


class Runs:
    """robot-server's runs: create, read, delete, act on them, and add definitions and commands.

    One run is current at a time; a new run replaces an idle one (robot-server refuses only while
    a run is running). Setup commands run at once on an idle run; protocol commands wait for `play`.
    Each handler returns (HTTP status, body) or raises `ApiError`; the caller holds the lock.
    """

    def __init__(self, mounted: dict[str, PipetteModel | None], failures: list[InjectedFailure]) -> None:
        self.mounted = mounted
        self.failures = failures
        self.runs: dict[str, Run] = {}

    def current_run(self) -> Run | None:
        return next((r for r in self.runs.values() if r.current), None)

    # -- runs -----------------------------------------------------------------------------------

    def _run_data(self, run: Run) -> dict[str, Any]:
        engine = run.engine
        return {
            "id": run.id,
            "ok": True,
            "createdAt": run.created_at,
            "status": run.status,
            "current": run.current,
            "actions": run.actions,
            "errors": [],
            "hasEverEnteredErrorRecovery": False,
            "pipettes": [
                {"id": p.id, "pipetteName": p.model.name, "mount": p.mount} for p in engine.pipettes.values()
            ],
            "modules": [],
            "labware": [
                {
                    "id": lw.id,
                    "loadName": lw.load_name,
                    "definitionUri": lw.definition_uri,
                    "location": {"slotName": lw.slot},
                    "displayName": lw.display_name,
                }
                for lw in engine.labware.values()
            ],
            "liquids": [],
            "labwareOffsets": [],
            "runTimeParameters": [],
            "outputFileIds": [],
        }

    def _run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise ApiError(404, "RunNotFound", "Run Not Found", f"Run {run_id} was not found.")
        return run

    def _current(self, run_id: str) -> Run:
        run = self._run(run_id)
        if not run.current:
            raise ApiError(409, "RunStopped", "Run Stopped", f"Run {run_id} is not the current run")
        return run

    def create_run(self, *, body: Any) -> tuple[int, Any]:
        previous = self.current_run()
        if previous is not None:
            if previous.status in ("running", "paused"):
                raise ApiError(
                    409,
                    "RunAlreadyActive",
                    "Run Already Active",
                    "Current run is not idle or stopped.",
                    ROBOT_IN_USE,
                )
            previous.current = False  # a new run replaces an idle or finished one
        run = Run(str(uuid.uuid4()), now_iso(), RunEngine(self.mounted))
        run.engine.failures = self.failures
        self.runs[run.id] = run
        return 201, {"data": self._run_data(run)}

    def list_runs(self, *, body: Any) -> tuple[int, Any]:
        current = self.current_run()
        return 200, {
            "data": [self._run_data(r) for r in self.runs.values()],
            "links": {"current": {"href": f"/runs/{current.id}"}} if current else {},
            "meta": {"cursor": 0, "totalLength": len(self.runs)},
        }

    def get_run(self, run_id: str, *, body: Any) -> tuple[int, Any]:
        return 200, {"data": self._run_data(self._run(run_id))}

    def delete_run(self, run_id: str, *, body: Any) -> tuple[int, Any]:
        run = self._run(run_id)
        if run.status in ("running", "paused"):
            raise ApiError(409, "RunNotIdle", "Run is not idle.", _NOT_IDLE, ROBOT_IN_USE)
        del self.runs[run_id]
        return 200, {}

    def update_run(self, run_id: str, *, body: Any) -> tuple[int, Any]:
        """`PATCH /runs/{id}` with `{"current": false}`: the run stops being current (the app's dismiss)."""
        run = self._run(run_id)
        if _data(body).get("current") is False:
            if run.status in ("running", "paused"):
                raise ApiError(409, "RunNotIdle", "Run is not idle.", _NOT_IDLE, ROBOT_IN_USE)
            run.current = False
        return 200, {"data": self._run_data(run)}

    def action(self, run_id: str, *, body: Any) -> tuple[int, Any]:
        run = self._current(run_id)
        action_type = _data(body).get("actionType")
        if action_type not in ("play", "pause", "stop"):
            raise ApiError(
                422, "InvalidRequest", "Invalid Request", "value is not a valid enumeration member"
            )
        if run.status in ("stopped", "failed", "succeeded"):
            raise ApiError(409, "RunStopped", "Run Stopped", f"Run {run_id} has already stopped.")
        run.status = {"play": "running", "pause": "paused", "stop": "stopped"}[action_type]
        action = {"id": str(uuid.uuid4()), "createdAt": now_iso(), "actionType": action_type}
        run.actions.append(action)
        if run.status == "running":  # protocol commands waited for `play`
            for command in run.commands:
                if command["status"] == "queued":
                    self._execute(run, command)
        return 201, {"data": action}

    def add_definition(self, run_id: str, *, body: Any) -> tuple[int, Any]:
        run = self._current(run_id)
        definition = _data(body)
        for pointer in ("namespace", "version", "parameters/loadName", "wells", "ordering", "dimensions"):
            node: Any = definition
            for key in pointer.split("/"):
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                raise ApiError(
                    422, "InvalidRequest", "Invalid Request", "field required", pointer=f"/data/{pointer}"
                )
        return 201, {"data": {"definitionUri": run.engine.add_definition(definition)}}

    # -- commands -------------------------------------------------------------------------------

    def enqueue(self, run_id: str, *, body: Any) -> tuple[int, Any]:
        # robot-server finds the run (a dependency) before it validates the body
        run = self._current(run_id)
        data = _data(body)
        command_type = data.get("commandType")
        if command_type not in COMMAND_PARAMS:
            raise ApiError(
                422,
                "InvalidRequest",
                "Invalid Request",
                f"No match for discriminator 'commandType' and value {command_type!r}",
                pointer="/data/commandType",
            )
        params = data.get("params", {})
        check_params(command_type, params)
        intent = data.get("intent") or "setup"
        if run.status in ("stopped", "failed", "succeeded"):
            raise ApiError(409, "RunStopped", "Run Stopped", "The run has already stopped.")
        if intent == "setup" and run.status != "idle":
            raise ApiError(
                409,
                "SetupCommandNotAllowed",
                "Setup Command Not Allowed",
                "Setup commands are not allowed after run has started.",
            )
        command: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "key": data.get("key") or str(uuid.uuid4()),
            "commandType": command_type,
            "createdAt": now_iso(),
            "startedAt": None,
            "completedAt": None,
            "status": "queued",
            "params": params,
            "result": None,
            "error": None,
            "intent": intent,
            "notes": [],
        }
        run.commands.append(command)
        # the robot answers before it executes: the client reads the outcome back with GET
        answer = {"data": dict(command)}
        if intent == "setup" or run.status == "running":
            self._execute(run, command)
        return 201, answer

    def _execute(self, run: Run, command: dict[str, Any]) -> None:
        command["startedAt"] = now_iso()
        try:
            command["result"] = run.engine.execute(command["commandType"], command["params"])
            command["status"] = "succeeded"
        except CommandFailure as failure:
            command["status"] = "failed"
            command["error"] = {
                "id": str(uuid.uuid4()),
                "createdAt": now_iso(),
                "isDefined": False,
                "errorType": failure.error_type,
                "errorCode": failure.error_code,
                "detail": failure.detail,
                "errorInfo": {},
                "wrappedErrors": [],
            }
            if command["intent"] == "protocol":  # a failed protocol command ends the run
                run.status = "failed"
        command["completedAt"] = now_iso()

    def list_commands(self, run_id: str, *, body: Any) -> tuple[int, Any]:
        run = self._run(run_id)
        return 200, {
            "data": run.commands,
            "links": {},
            "meta": {"cursor": 0, "totalLength": len(run.commands)},
        }

    def get_command(self, run_id: str, command_id: str, *, body: Any) -> tuple[int, Any]:
        run = self._run(run_id)
        command = next((c for c in run.commands if c["id"] == command_id), None)
        if command is None:
            raise ApiError(
                404, "CommandNotFound", "Run Command Not Found", f"Command {command_id} was not found."
            )
        return 200, {"data": command}


def _data(body: Any) -> dict[str, Any]:
    """The `data` member of a request body, or the 422 robot-server gives when it is missing."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ApiError(422, "InvalidRequest", "Invalid Request", "field required", pointer="/data")
    return body["data"]
