"""The processes of a queue-server station: Redis and one RE Manager per station, on loopback ports.

At a facility a station's RunEngine runs inside bluesky-queueserver's RE Manager,
which keeps its queue and history in Redis. `start_station` starts what a
station needs and returns once its RunEngine environment is open (the startup
script `profiles/queueserver/startup.py` has built the station), recording every
process in a state file, so that `tandem station status` and `stop`, run later
from any shell, find them again::

    <state dir>/stations.json   {"redis": {...}, "stations": {"saxs": {...}, "sans": {...}}}
    <state dir>/redis/          Redis' working directory and log (when tandem started it)
    <state dir>/<station>/      the RE Manager's log and its list of plans and devices

Redis is started only where none is configured (`--redis HOST:PORT`); one Redis
serves every station, each under its own key prefix. Processes run in their own
session, so they outlive the command that started them and a Ctrl-C in that
terminal does not reach them; `stop_station` stops the whole process group (the
manager and its worker).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tandem.bundled_profiles import QUEUESERVER_PROFILE
from tandem.child_processes import LOOPBACK, free_port, pid_alive
from tandem.errors import TandemError

STATE_FILE = "stations.json"
STATE_DIR_ENV = "TANDEM_STATE_DIR"
PROFILE_ENV = "TANDEM_QUEUESERVER_PROFILE"
#: the queue-server user group the agent daemon submits as (see user_group_permissions.yaml)
AGENT_GROUP = "agent"
ADMIN_GROUP = "admin"
STATION_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class ProcessError(TandemError, RuntimeError):
    """A station process that would not start, answer or stop."""


class InvalidStationRequestError(TandemError, ValueError):
    """A request that names no station, an unknown station or a malformed address."""


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisService:
    """A Redis server; `pid` is None when tandem did not start it (and must not stop it)."""

    host: str
    port: int
    pid: int | None = None
    directory: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def managed(self) -> bool:
        return self.pid is not None


@dataclass(frozen=True)
class StationProcess:
    """One running RE Manager: where to reach it and what it runs."""

    station: str
    pid: int
    control_addr: str
    info_addr: str
    redis_addr: str
    redis_prefix: str
    backend: str  # "sim" or "epics"
    directory: str
    campaign: str | None = None
    started_at: float = field(default_factory=time.time)

    @property
    def log_path(self) -> Path:
        return Path(self.directory) / "re-manager.log"

    def api(self, *, timeout_s: float = 2.0, user_group: str = ADMIN_GROUP) -> Any:
        """A `bluesky_queueserver_api.zmq.REManagerAPI` on this manager."""
        return manager_api(self.control_addr, self.info_addr, timeout_s=timeout_s, user_group=user_group)

    def qserver_command(self) -> str:
        """The stock `qserver` command line that talks to this station."""
        return f"qserver -a {self.control_addr}"


def manager_api(
    control_addr: str,
    info_addr: str | None = None,
    *,
    timeout_s: float = 2.0,
    user_group: str = ADMIN_GROUP,
    user: str = "tandem",
) -> Any:
    """A REManagerAPI client that raises on failed requests, identified as `user` of `user_group`."""
    from bluesky_queueserver_api.zmq import REManagerAPI

    api = REManagerAPI(zmq_control_addr=control_addr, zmq_info_addr=info_addr, timeout_recv=timeout_s)
    api.user = user
    api.user_group = user_group
    return api


# --- the state file ---------------------------------------------------------------------------


def default_state_dir() -> Path:
    """`TANDEM_STATE_DIR`, else `$XDG_STATE_HOME/tandem` (`~/.local/state/tandem`)."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tandem"


@dataclass
class StationState:
    """What the state file holds: the Redis in use and the stations started."""

    redis: RedisService | None = None
    stations: dict[str, StationProcess] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "redis": None if self.redis is None else asdict(self.redis),
            "stations": {sid: asdict(p) for sid, p in self.stations.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StationState:
        redis = data.get("redis")
        return cls(
            redis=None if not redis else RedisService(**redis),
            stations={sid: StationProcess(**p) for sid, p in (data.get("stations") or {}).items()},
        )


@contextlib.contextmanager
def locked_state(state_dir: Path | None = None) -> Iterator[StationState]:
    """The state file, read under an exclusive lock and written back when the block ends without error.

    Two `tandem station start` at once must not lose each other's entries.
    """
    directory = state_dir or default_state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read_state(directory)
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_dict(), indent=2))
        tmp.replace(path)


def read_state(state_dir: Path | None = None) -> StationState:
    """The state file as it is (empty when there is none or it is unreadable)."""
    path = (state_dir or default_state_dir()) / STATE_FILE
    try:
        return StationState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return StationState()


# --- small helpers ----------------------------------------------------------------------------


def parse_address(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or 'HOST', port 6379) as a pair; `InvalidStationRequestError` if malformed."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "6379")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidStationRequestError(
            f"a Redis address is HOST:PORT (for example 127.0.0.1:6379), got {text!r}"
        )
    return host, int(port)


def check_station_id(station: str) -> str:
    if not STATION_ID.match(station):
        raise InvalidStationRequestError(
            f"a station id is lower-case letters, digits and '_', starting with a letter, got {station!r}"
        )
    return station


def _log_tail(path: Path, n_lines: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n_lines:])


def _wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def stop_process_group(pid: int, *, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL what is left after `timeout_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        if _wait_for(lambda: not _group_alive(pid), timeout_s if sig == signal.SIGTERM else 5.0):
            return
    raise ProcessError(f"process group {pid} would not stop, even on SIGKILL")


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # only zombies left (children of a dead leader, waiting for init) count as gone
    return any(pid_alive(int(p)) for p in _group_members(pgid))


def _group_members(pgid: int) -> list[str]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().split(")")[-1].split()
            if int(fields[2]) == pgid:
                members.append(stat.parent.name)
    return members


def _reap(pid: int) -> None:
    """Collect the exit status of `pid` if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _spawn(
    argv: list[str], *, log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start `argv` in its own session (it outlives us), output to `log_path`; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return process.pid


# --- Redis ------------------------------------------------------------------------------------


def redis_ping(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether a Redis server answers PING at host:port (speaks RESP by hand: no client needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(directory: Path, *, port: int | None = None, timeout_s: float = 10.0) -> RedisService:
    """Start `redis-server` on a free loopback port with no persistence to disk; return once it answers.

    Queue and history survive a restart of an RE Manager (they are in Redis), not a
    restart of this Redis: it is the embedded default, a facility runs its own.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        raise ProcessError(
            "redis-server is not installed: install it (Debian/Ubuntu: apt-get install -y redis-server; "
            "conda: conda install redis) or point at a running Redis with --redis HOST:PORT"
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        executable,
        "--bind", LOOPBACK,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "yes",
        "--dir", str(directory),
    ]  # fmt: skip
    log_path = directory / "redis.log"
    pid = _spawn(argv, log_path=log_path)
    if not _wait_for(lambda: redis_ping(LOOPBACK, port) or not pid_alive(pid), timeout_s) or not pid_alive(
        pid
    ):
        with contextlib.suppress(ProcessError):
            stop_process_group(pid, timeout_s=2.0)
        raise ProcessError(f"redis-server did not answer on {LOOPBACK}:{port}:\n{_log_tail(log_path)}")
    return RedisService(LOOPBACK, port, pid, str(directory))


def stop_redis(redis: RedisService) -> None:
    """Stop a Redis that tandem started (one it only attached to is left alone)."""
    if redis.pid is not None and pid_alive(redis.pid):
        stop_process_group(redis.pid, timeout_s=5.0)


def ensure_redis(state: StationState, state_dir: Path, address: str | None = None) -> RedisService:
    """The Redis to use: `address` if given, else the one in the state file if it answers, else a new one."""
    if address is not None:
        host, port = parse_address(address)
        if not redis_ping(host, port):
            raise ProcessError(f"no Redis answers at {host}:{port}; start it or leave out --redis")
        state.redis = RedisService(host, port)
        return state.redis
    if state.redis is not None and redis_ping(state.redis.host, state.redis.port):
        return state.redis
    state.redis = start_redis(state_dir / "redis")
    return state.redis


# --- RE Manager -------------------------------------------------------------------------------


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
    open_environment: bool = True,
    autostart: bool = True,
    timeout_s: float = 120.0,
) -> StationProcess:
    """Start (Redis if needed and) the RE Manager of `station`; return once it answers.

    With `open_environment` the worker's environment is opened (the startup script
    builds the station, simulated or EPICS) and `timeout_s` covers that too; with
    `autostart` the queue runs whatever is added to it. `env` adds variables for the
    startup script (Tiled: `TANDEM_TILED_URI`, `TANDEM_TILED_API_KEY`; EPICS prefixes).
    """
    check_station_id(station)
    state_dir = state_dir or default_state_dir()
    with locked_state(state_dir) as state:
        running = state.stations.get(station)
        if running is not None and pid_alive(running.pid):
            raise InvalidStationRequestError(
                f"station {station!r} is already running (pid {running.pid}, {running.control_addr}); "
                "stop it first with `tandem station stop " + station + "`"
            )
        redis_service = ensure_redis(state, state_dir, redis)
        process = _launch_manager(
            station, state_dir / station, redis_service, sim=sim, campaign=campaign, env=env or {}
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
) -> StationProcess:
    profile = profile_directory()
    directory.mkdir(parents=True, exist_ok=True)
    control = f"tcp://{LOOPBACK}:{free_port()}"
    info = f"tcp://{LOOPBACK}:{free_port()}"
    prefix = f"tandem_{station}"
    argv = [
        _manager_executable(),
        "--startup-script", str(profile / "startup.py"),
        "--user-group-permissions", str(profile / "user_group_permissions.yaml"),
        "--existing-plans-devices", str(directory / "existing_plans_and_devices.yaml"),
        "--update-existing-plans-devices", "ENVIRONMENT_OPEN",
        "--zmq-control-addr", control,
        "--zmq-info-addr", info,
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
    pid = _spawn(argv, log_path=directory / "re-manager.log", env=child_env, cwd=directory)
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
                    + _log_tail(process.log_path)
                )
            try:
                api.status()
            except Exception:
                return False
            return True

        if not _wait_for(answers, timeout_s, 0.25):
            raise ProcessError(
                f"the RE Manager of {process.station!r} did not answer on {process.control_addr} within "
                f"{timeout_s:g} s (is Redis at {process.redis_addr} reachable?):\n"
                + _log_tail(process.log_path)
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
                f"{_log_tail(process.log_path, 40)}"
            )
    except TandemError:
        raise
    except Exception as exc:
        raise ProcessError(
            f"could not open the environment of {process.station!r}: {exc}\n{_log_tail(process.log_path, 40)}"
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
class StationStatus:
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


def station_status(state_dir: Path | None = None, *, timeout_s: float = 2.0) -> list[StationStatus]:
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
        out.append(StationStatus(process, alive, answer))
    return out


__all__ = [
    "ADMIN_GROUP",
    "AGENT_GROUP",
    "InvalidStationRequestError",
    "ProcessError",
    "RedisService",
    "StationProcess",
    "StationState",
    "StationStatus",
    "configure_queue",
    "default_state_dir",
    "ensure_redis",
    "locked_state",
    "manager_api",
    "open_station_environment",
    "profile_directory",
    "read_state",
    "redis_ping",
    "start_redis",
    "start_station",
    "station_status",
    "stop_redis",
    "stop_station",
]
