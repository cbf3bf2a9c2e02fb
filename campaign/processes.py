"""The processes of a queue-server station: one RE Manager per station, beside a shared Redis.

At a facility a station's RunEngine runs inside bluesky-queueserver's RE Manager,
which keeps its queue and history in Redis. `start_station` starts what a
station needs (Redis too, if none is configured: `tandem.campaign.redis_service`) and
returns once its RunEngine environment is open (the startup script
`profiles/queueserver/startup.py` has built the station), recording every process in
the state file (`tandem.campaign.station_state`), so that `tandem station status` and
`stop`, run later from any shell, find them again. Processes run in their own session,
so they outlive the command that started them and a Ctrl-C in that terminal does not
reach them; `stop_station` stops the whole process group (the manager and its worker;
`tandem.campaign.process_groups`).

The state file, Redis and process groups have modules of their own (`station_state`,
`redis_service`, `process_groups`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.bundled_profiles import QUEUESERVER_PROFILE
from tandem.campaign.process_groups import ProcessError, spawn_detached, stop_process_group, wait_for
from tandem.campaign.redis_service import ensure_redis, stop_redis
from tandem.campaign.station_state import (
    InvalidStationRequestError,
    RedisService,
    StationProcess,
    check_station_id,
    default_state_dir,
    locked_state,
    read_state,
)
from tandem.child_processes import ALL_INTERFACES, LOOPBACK, free_port, log_tail, pid_alive, port_is_free
from tandem.errors import TandemError

PROFILE_ENV = "TANDEM_QUEUESERVER_PROFILE"


@dataclass(frozen=True)
class Listen:
    """Where a station's RE Manager takes requests (0MQ): on loopback, for one host, or on an interface
    other hosts reach (`0.0.0.0`: all of them), at given ports or free ones (0).

    Off loopback, anyone who reaches the port can drive the station: encrypt the control channel
    with a 0MQ key pair (`qserver-zmq-keys`; the station host sets
    QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER, its clients QSERVER_ZMQ_PUBLIC_KEY).
    """

    host: str = LOOPBACK
    control_port: int = 0
    info_port: int = 0

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise InvalidStationRequestError(
                f"a station listens on an IP address of this host ({LOOPBACK} for this host only, "
                f"{ALL_INTERFACES} for every interface), got {self.host!r}"
            ) from None
        for name, port in (("control", self.control_port), ("info", self.info_port)):
            if not 0 <= port <= 65535:
                raise InvalidStationRequestError(
                    f"the {name} port must be 0 (any free one) to 65535, got {port}"
                )
        if self.control_port and self.control_port == self.info_port:
            raise InvalidStationRequestError(
                f"the control and info ports must differ, both are {self.control_port}"
            )

    def addresses(self) -> tuple[str, str, str, str]:
        """The control and info addresses to bind, then the ones clients connect to."""
        ports = [port or free_port(self.host) for port in (self.control_port, self.info_port)]
        for port, asked in zip(ports, (self.control_port, self.info_port), strict=True):
            if asked and not port_is_free(self.host, port):
                raise InvalidStationRequestError(f"port {port} on {self.host} is in use; choose another or 0")
        reach = socket.gethostname() if self.host == ALL_INTERFACES else self.host
        bind = [f"tcp://{self.host}:{p}" for p in ports]
        return bind[0], bind[1], f"tcp://{reach}:{ports[0]}", f"tcp://{reach}:{ports[1]}"


def profile_directory() -> Path:
    """The queue-server startup and permissions folder: `TANDEM_QUEUESERVER_PROFILE` or the bundled one."""
    if os.environ.get(PROFILE_ENV):
        return Path(os.environ[PROFILE_ENV])
    directory = QUEUESERVER_PROFILE
    if not (directory / "startup.py").exists():
        raise ProcessError(
            f"cannot find the queue-server profile (looked in {directory}); set {PROFILE_ENV} to the "
            "folder holding startup.py and user_group_permissions.yaml"
        )
    return directory


def _manager_executable() -> str:
    beside = Path(sys.executable).parent / "start-re-manager"
    if beside.exists():
        return str(beside)
    found = shutil.which("start-re-manager")
    if found is None:
        raise ProcessError("start-re-manager is not installed (pip install bluesky-queueserver)")
    return found


def start_station(
    station: str,
    *,
    state_dir: Path | None = None,
    sim: bool = True,
    campaign: Path | None = None,
    redis: str | None = None,
    env: Mapping[str, str] | None = None,
    listen: Listen | None = None,
    open_environment: bool = True,
    autostart: bool = True,
    timeout_s: float = 120.0,
) -> StationProcess:
    """Start (Redis if needed and) the RE Manager of `station`; return once it answers.

    With `open_environment` the worker's environment is opened (the startup script
    builds the station, simulated or EPICS) and `timeout_s` covers that too; with
    `autostart` the queue runs whatever is added to it. `env` adds variables for the
    startup script (Tiled: `TANDEM_TILED_URI`, `TANDEM_TILED_API_KEY`; EPICS prefixes).
    `listen` says where the RE Manager takes requests (default: free loopback ports).
    """
    check_station_id(station)
    addresses = (listen or Listen()).addresses()  # a port in use is refused before anything starts
    # absolute: the RE Manager runs in a folder of its own, where a relative path would mean another place
    state_dir = (state_dir or default_state_dir()).absolute()
    with locked_state(state_dir) as state:
        running = state.stations.get(station)
        if running is not None and pid_alive(running.pid):
            raise InvalidStationRequestError(
                f"station {station!r} is already running (pid {running.pid}, {running.control_addr}); "
                "stop it first with `tandem station stop " + station + "`"
            )
        redis_service = ensure_redis(state, state_dir, redis)
        process = _launch_manager(
            station,
            state_dir / station,
            redis_service,
            sim=sim,
            campaign=campaign,
            env=env or {},
            addresses=addresses,
        )
        state.stations[station] = process
    try:
        _wait_until_answering(process, timeout_s)
        if open_environment:
            open_station_environment(process, timeout_s=timeout_s)
            configure_queue(process, autostart=autostart)
    except BaseException:
        stop_station(station, state_dir=state_dir)
        raise
    return process


def _launch_manager(
    station: str,
    directory: Path,
    redis: RedisService,
    *,
    sim: bool,
    campaign: Path | None,
    env: Mapping[str, str],
    addresses: tuple[str, str, str, str],
) -> StationProcess:
    profile = profile_directory()
    directory.mkdir(parents=True, exist_ok=True)
    bind_control, bind_info, control, info = addresses
    prefix = f"tandem_{station}"
    argv = [
        _manager_executable(),
        "--startup-script", str(profile / "startup.py"),
        "--user-group-permissions", str(profile / "user_group_permissions.yaml"),
        "--existing-plans-devices", str(directory / "existing_plans_and_devices.yaml"),
        "--update-existing-plans-devices", "ENVIRONMENT_OPEN",
        "--zmq-control-addr", bind_control,
        "--zmq-info-addr", bind_info,
        "--zmq-publish-console", "ON",
        "--redis-addr", redis.address,
        "--redis-name-prefix", prefix,
        "--use-ipython-kernel", "OFF",
    ]  # fmt: skip
    child_env = {
        **os.environ,
        **dict(env),
        "TANDEM_STATION": station,
        "TANDEM_SIM": "1" if sim else "0",
    }
    if campaign is not None:
        child_env["TANDEM_CAMPAIGN"] = str(Path(campaign).resolve())
    pid = spawn_detached(argv, log_path=directory / "re-manager.log", env=child_env, cwd=directory)
    return StationProcess(
        station=station,
        pid=pid,
        control_addr=control,
        info_addr=info,
        redis_addr=redis.address,
        redis_prefix=prefix,
        backend="sim" if sim else "epics",
        directory=str(directory),
        campaign=None if campaign is None else str(Path(campaign).resolve()),
    )


def _wait_until_answering(process: StationProcess, timeout_s: float) -> None:
    api = process.api(timeout_s=1.0)
    try:

        def answers() -> bool:
            if not pid_alive(process.pid):
                raise ProcessError(
                    f"the RE Manager of {process.station!r} exited while starting:\n"
                    + log_tail(process.log_path)
                )
            try:
                api.status()
            except Exception:
                return False
            return True

        if not wait_for(answers, timeout_s, 0.25):
            raise ProcessError(
                f"the RE Manager of {process.station!r} did not answer on {process.control_addr} within "
                f"{timeout_s:g} s (is Redis at {process.redis_addr} reachable?):\n"
                + log_tail(process.log_path)
            )
    finally:
        api.close()


def configure_queue(process: StationProcess, *, autostart: bool = True) -> None:
    """A failed plan goes to the history and the queue goes on (the RE Manager's default stops the
    queue and puts the item back at its front: a campaign would stall on one bad sample); with
    `autostart` the queue runs whatever is added to it."""
    api = process.api()
    try:
        api.queue_mode_set(ignore_failures=True)
        if autostart:
            api.queue_autostart(True)
    finally:
        api.close()


def open_station_environment(process: StationProcess, *, timeout_s: float = 120.0) -> None:
    """Open the RunEngine environment (run the startup script) and wait until it exists."""
    api = process.api(timeout_s=5.0)
    try:
        status = api.status()
        if not status.get("worker_environment_exists"):
            api.environment_open()
            api.wait_for_idle(timeout=timeout_s)
            status = api.status(reload=True)
        if not status.get("worker_environment_exists"):
            raise ProcessError(
                f"the startup script of {process.station!r} failed; the RE Manager says:\n"
                f"{log_tail(process.log_path, 40)}"
            )
    except TandemError:
        raise
    except Exception as exc:
        raise ProcessError(
            f"could not open the environment of {process.station!r}: {exc}\n{log_tail(process.log_path, 40)}"
        ) from exc
    finally:
        api.close()


def stop_station(
    station: str, *, state_dir: Path | None = None, timeout_s: float = 20.0, stop_redis_if_unused: bool = True
) -> StationProcess | None:
    """Stop the station's RE Manager (and Redis, if tandem started it and no station uses it).

    The environment is closed first so the worker ends its RunEngine cleanly; a
    manager that does not answer is stopped by signal. Returns what was stopped.
    """
    state_dir = state_dir or default_state_dir()
    with locked_state(state_dir) as state:
        process = state.stations.pop(station, None)
        if process is not None and pid_alive(process.pid):
            _close_environment(process, timeout_s)
            stop_process_group(process.pid, timeout_s=timeout_s)
        if stop_redis_if_unused and not state.stations and state.redis is not None:
            stop_redis(state.redis)
            state.redis = None
    return process


def _close_environment(process: StationProcess, timeout_s: float) -> None:
    with contextlib.suppress(Exception):
        api = process.api(timeout_s=2.0)
        try:
            status = api.status()
            if status.get("worker_environment_exists") and status.get("manager_state") == "idle":
                api.environment_close()
                api.wait_for_idle(timeout=timeout_s)
        finally:
            api.close()


@dataclass(frozen=True)
class StationProcessStatus:
    """A station's process as `tandem station status` shows it."""

    process: StationProcess
    alive: bool
    status: Mapping[str, Any] | None  # the RE Manager's `status`, None if it did not answer

    @property
    def summary(self) -> str:
        if not self.alive:
            return "dead"
        if self.status is None:
            return "not answering"
        s = self.status
        env = "environment open" if s.get("worker_environment_exists") else "no environment"
        return (
            f"{s.get('manager_state')}, {env}, {s.get('items_in_queue')} queued, "
            f"{s.get('items_in_history')} in history"
        )


def station_status(state_dir: Path | None = None, *, timeout_s: float = 2.0) -> list[StationProcessStatus]:
    """The status of every station in the state file (asked of each RE Manager)."""
    out = []
    for process in read_state(state_dir).stations.values():
        alive = pid_alive(process.pid)
        answer = None
        if alive:
            with contextlib.suppress(Exception):
                api = process.api(timeout_s=timeout_s)
                try:
                    answer = dict(api.status())
                finally:
                    api.close()
        out.append(StationProcessStatus(process, alive, answer))
    return out


__all__ = [
    "Listen",
    "StationProcessStatus",
    "configure_queue",
    "open_station_environment",
    "profile_directory",
    "start_station",
    "station_status",
    "stop_station",
]
