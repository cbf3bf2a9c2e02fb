"""A local stand-in for an Opentrons OT-2's HTTP API (robot-server), as PyLabRobot's backend uses it.

PyLabRobot 0.2.2's `OpentronsOT2Backend` drives the robot through `ot_api`
(opentrons-http-api-client 0.2.1), which speaks plain HTTP to port 31950. `OT2Simulator` serves
that protocol on 127.0.0.1 and a free port, so tandem's OT-2 path runs end to end without a
robot::

    with OT2Simulator(left="p300_single_gen2") as robot:
        backend = OpentronsOT2Backend(host=robot.host, port=robot.port)
        ...
        assert [e.command_type for e in robot.commands()] == ["loadPipette", ...]

Endpoints (the ones the backend calls, and the few a client needs around them): `GET /health`,
`GET /pipettes`, `POST /robot/home`, `GET /modules`, `POST|GET /runs`,
`GET|PATCH|DELETE /runs/{id}`, `POST /runs/{id}/actions`, `POST /runs/{id}/labware_definitions`,
`POST|GET /runs/{id}/commands` (with `?waitUntilComplete=true`),
`GET /runs/{id}/commands/{commandId}`. The answers follow robot-server: bodies in a `data` envelope
(`links`, `meta` on collections), 201 on creation, errors as `{"errors": [{id, title, detail,
errorCode}]}` (the legacy v1 routes `/health`, `/pipettes`, `/robot/home` answer
`{"message", "errorCode"}`), the `Opentrons-Version` request header required everywhere (422 when
missing, 400 below version 2) and echoed with `Opentrons-Min-Version` in every response. A command
is answered `queued` on creation and `succeeded` or `failed` when read back, a failed one carrying
the robot's `error` (`errorType`, `detail`, `errorCode`); runs and commands are
`tandem.sim.ot2_runs`, the robot's state and its answer to each command `tandem.sim.ot2_robot`.

Every request is logged (`log`: method, path, status, command type, params and the command's
outcome; `commands()` the commands alone), and tests can make the robot misbehave: `fail_next`
fails the next command of a type (or the one after `skip` more) with a given error, and
`knock_off_tip` loses a pipette's tip as a real one can, so the next aspirate fails on the robot.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tandem.child_processes import LOOPBACK, free_port
from tandem.sim.ot2_robot import PIPETTE_MODELS, InjectedFailure, LoadedPipette, PipetteModel
from tandem.sim.ot2_runs import GENERAL_ERROR, ApiError, Runs

# robot-server's HTTP API version (robot software 7 and 8); a request may ask for any version >= 2
API_VERSION = 4
MIN_API_VERSION = 2

# v1 routes answer errors as {"message", "errorCode"} rather than the JSON:API `errors` list
_LEGACY = {("GET", "health"), ("GET", "pipettes"), ("POST", "robot/home")}


@dataclass(frozen=True)
class LoggedRequest:
    """One request the robot received: what was asked and how it answered."""

    method: str
    path: str
    status: int
    command_type: str | None = None
    params: dict[str, Any] | None = None
    # for a command: "succeeded" or "failed" once executed, "queued" if still waiting for `play`
    outcome: str | None = None


class OT2Simulator:
    """An OT-2's robot-server on loopback; a context manager that starts and stops it.

    `left` and `right` are the pipettes physically on the mounts (load names as `GET /pipettes`
    reports them, e.g. "p300_single_gen2"; None for an empty mount). `api_version` is the robot
    software version `/health` reports: PyLabRobot drops tips through the fixed trash's addressable
    area from 7.1.0 on, by a tip rack before.
    """

    def __init__(
        self,
        *,
        left: str | None = "p300_single_gen2",
        right: str | None = None,
        api_version: str = "8.2.0",
        host: str = LOOPBACK,
        port: int | None = None,
    ) -> None:
        unknown = {name for name in (left, right) if name is not None and name not in PIPETTE_MODELS}
        if unknown:
            raise ValueError(f"no OT-2 pipette named {sorted(unknown)}; known: {', '.join(PIPETTE_MODELS)}")
        self.mounted: dict[str, PipetteModel | None] = {
            mount: PIPETTE_MODELS[name] if name is not None else None
            for mount, name in (("left", left), ("right", right))
        }
        self.api_version = api_version
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._lock = threading.Lock()
        self._failures: list[InjectedFailure] = []
        self._runs = Runs(self.mounted, self._failures)
        self._log: list[LoggedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> OT2Simulator:
        self._server = _Server((self.host, self.port), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ot2-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> OT2Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests read and do -----------------------------------------------------------------

    @property
    def log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def commands(self) -> list[LoggedRequest]:
        """The commands posted to runs, in order, accepted or not."""
        return [entry for entry in self.log if entry.command_type is not None]

    def fail_next(
        self, command_type: str, detail: str, *, error_type: str = "UnexpectedProtocolError", skip: int = 0
    ) -> None:
        """Make a `command_type` command fail on the robot with this error: the next one, or after `skip`."""
        with self._lock:
            self._failures.append(InjectedFailure(command_type, error_type, detail, skip=skip))

    def pipette(self, mount: str) -> LoadedPipette | None:
        """The pipette loaded on `mount` in the current run (its tip, volume, position), if any."""
        with self._lock:
            run = self._runs.current_run()
            if run is None:
                return None
            return next((p for p in run.engine.pipettes.values() if p.mount == mount), None)

    def knock_off_tip(self, mount: str) -> None:
        """The tip on `mount` falls off: the robot no longer has it, whatever the client believes."""
        with self._lock:
            run = self._runs.current_run()
            for pipette in run.engine.pipettes.values() if run is not None else ():
                if pipette.mount == mount:
                    pipette.tip, pipette.aspirated_ul = None, None

    # -- requests (called by the handler threads) -----------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        """Answer one request: (status, JSON body). Holds the lock: the robot does one thing at a time."""
        parts = tuple(p for p in urlsplit(path).path.split("/") if p)
        route = "/".join(parts)
        command_type, params = None, None
        is_command = method == "POST" and len(parts) == 3 and parts[0] == "runs" and parts[2] == "commands"
        if is_command and isinstance(body, dict) and isinstance(body.get("data"), dict):
            command_type, params = body["data"].get("commandType"), body["data"].get("params")
        with self._lock:
            try:
                handler, args = self._resolve(method, parts)
                check_version(headers.get("opentrons-version"))
                status, answer = handler(*args, body=body)
            except ApiError as error:
                legacy = (method, route) in _LEGACY
                status, answer = error.status, legacy_error(error) if legacy else error.body()
            except Exception as error:  # robot-server's catch-all: a bug shows as a 500, not a hang-up
                unexpected = ApiError(500, "UnexpectedError", "Unexpected Internal Error", repr(error))
                status, answer = 500, unexpected.body()
            outcome = None
            if is_command and status == 201:  # what the robot made of it, not the "queued" of the answer
                record = self._runs.runs[parts[1]].commands[-1]
                outcome = record["status"]
                # `?waitUntilComplete=true`: the answer waits for the outcome (no timeout needed here)
                if (
                    parse_qs(urlsplit(path).query).get("waitUntilComplete") == ["true"]
                    and outcome != "queued"
                ):
                    answer = {"data": dict(record)}
            self._log.append(LoggedRequest(method, "/" + route, status, command_type, params, outcome))
            # a copy: the records live on and change, and the answer is serialised after the lock
            return status, copy.deepcopy(answer)

    def _resolve(
        self, method: str, parts: tuple[str, ...]
    ) -> tuple[Callable[..., tuple[int, Any]], tuple[str, ...]]:
        """Find the route as robot-server's router would: 404 for an unknown path, 405 for a wrong method."""
        n = len(parts)
        routes: dict[str, Callable[..., tuple[int, Any]]] = {}
        if parts == ("health",):
            routes = {"GET": self._health}
        elif parts == ("pipettes",):
            routes = {"GET": self._pipettes}
        elif parts == ("robot", "home"):
            routes = {"POST": self._home}
        elif parts == ("modules",):
            routes = {"GET": self._modules}
        elif parts == ("runs",):
            routes = {"POST": self._runs.create_run, "GET": self._runs.list_runs}
        elif n == 2 and parts[0] == "runs":
            routes = {
                "GET": self._runs.get_run,
                "DELETE": self._runs.delete_run,
                "PATCH": self._runs.update_run,
            }
        elif n == 3 and parts[0] == "runs" and parts[2] == "actions":
            routes = {"POST": self._runs.action}
        elif n == 3 and parts[0] == "runs" and parts[2] == "labware_definitions":
            routes = {"POST": self._runs.add_definition}
        elif n == 3 and parts[0] == "runs" and parts[2] == "commands":
            routes = {"POST": self._runs.enqueue, "GET": self._runs.list_commands}
        elif n == 4 and parts[0] == "runs" and parts[2] == "commands":
            routes = {"GET": self._runs.get_command}
        if not routes:
            raise not_found("Not Found", 404)
        if method not in routes:
            raise not_found("Method Not Allowed", 405)
        # the path's ids: a run's, and a command's
        return routes[method], tuple(parts[i] for i in (1, 3) if i < n and parts[0] == "runs")

    # -- v1 and system routes -------------------------------------------------------------------

    def _health(self, *, body: Any) -> tuple[int, Any]:
        return 200, {
            "name": "tandem-ot2-sim",
            "api_version": self.api_version,
            "fw_version": "v2.15.0",
            "board_revision": "2.1",
            "logs": ["/logs/serial.log", "/logs/api.log", "/logs/server.log", "/logs/update_server.log"],
            "system_version": "1.17.0",
            "maximum_protocol_api_version": [2, 20],
            "minimum_protocol_api_version": [2, 0],
            "robot_model": "OT-2 Standard",
            "robot_serial": "OT2CEP20190604A02",
            "links": {
                "apiLog": "/logs/api.log",
                "serialLog": "/logs/serial.log",
                "serverLog": "/logs/server.log",
                "apiSpec": "/openapi.json",
                "systemTime": "/system/time",
            },
        }

    def _pipettes(self, *, body: Any) -> tuple[int, Any]:
        axes = {"left": ("z", "b"), "right": ("a", "c")}
        answer = {}
        for mount, model in self.mounted.items():
            answer[mount] = {
                "model": model.model if model else None,
                "name": model.name if model else None,
                "tip_length": model.tip_length_mm if model else None,
                "mount_axis": axes[mount][0],
                "plunger_axis": axes[mount][1],
                "id": f"P{mount[0].upper()}SIM{model.name.upper()}" if model else None,
            }
        return 200, answer

    def _home(self, *, body: Any) -> tuple[int, Any]:
        target = body.get("target") if isinstance(body, dict) else None
        mount = body.get("mount") if isinstance(body, dict) else None
        if target not in ("robot", "pipette"):  # the body's model refuses it
            detail = "value is not a valid enumeration member; permitted: 'pipette', 'robot'"
            raise ApiError(422, "InvalidRequest", "Invalid Request", detail, pointer="/target")
        if target == "robot":
            return 200, {"message": "Homing robot."}
        if mount in ("left", "right"):
            return 200, {"message": f"Pipette on {mount} homed successfully"}
        raise ApiError(400, "InvalidActuator", "Invalid Actuator", f"{target} is invalid", "3014")

    def _modules(self, *, body: Any) -> tuple[int, Any]:
        return 200, {"data": [], "meta": {"cursor": 0, "totalLength": 0}}


def legacy_error(error: ApiError) -> dict[str, Any]:
    """The same error as the v1 routes (`/health`, `/pipettes`, `/robot/home`) word it."""
    source = error.error.get("source", {})
    if error.error["id"] == "InvalidRequest" and "header" in source:
        return {"message": f"header.{source['header']}: {error.error['detail']}", "errorCode": GENERAL_ERROR}
    return {"message": error.error["detail"], "errorCode": error.error["errorCode"]}


def not_found(detail: str, status: int) -> ApiError:
    """The framework's answer to an unknown path (404) or method (405)."""
    return ApiError(status, "BadRequest", "Bad Request", detail)


def check_version(value: str | None) -> None:
    """Refuse a request as robot-server does when its `Opentrons-Version` header is missing or too old."""
    if value is None:
        raise ApiError(422, "InvalidRequest", "Invalid Request", "field required", header="opentrons-version")
    if value == "*":
        return
    if not value.strip().lstrip("-").isdigit():
        raise ApiError(
            422,
            "InvalidRequest",
            "Invalid Request",
            "value is not a valid integer",
            header="opentrons-version",
        )
    if int(value) < MIN_API_VERSION:
        raise ApiError(
            400,
            "OutdatedAPIVersion",
            "Requested HTTP API version no longer supported",
            f"The requested API version '{int(value)}' is not supported."
            f" 'Opentrons-Version' must be at least '{MIN_API_VERSION}'."
            " Please upgrade your Opentrons App or other HTTP API client.",
        )


class _Server(ThreadingHTTPServer):
    # request threads are not daemons, so `server_close` joins them: stopping leaves no thread behind
    daemon_threads = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sim: OT2Simulator):
        self.sim = sim
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError as error:
            status, answer = 422, ApiError(422, "InvalidRequest", "Invalid Request", str(error)).body()
        else:
            status, answer = self.server.sim.handle(self.command, self.path, headers, body)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        requested = headers.get("opentrons-version", "")
        version = API_VERSION if not requested.isdigit() else max(min(API_VERSION, int(requested)), 0)
        self.send_header("Opentrons-Version", str(version))
        self.send_header("Opentrons-Min-Version", str(MIN_API_VERSION))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator keeps its own log (`OT2Simulator.log`)."""
