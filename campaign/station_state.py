"""What tandem records of a station's processes, and the state file that keeps it between commands.

`tandem station start` records every process it starts, so that `tandem station status`
and `stop`, run later from any shell, find them again::

    <state dir>/stations.json   {"redis": {...}, "stations": {"saxs": {...}, "sans": {...}}}
    <state dir>/redis/          Redis' working directory and log (when tandem started it)
    <state dir>/<station>/      the RE Manager's log and its list of plans and devices

The state directory is `TANDEM_STATE_DIR`, else `$XDG_STATE_HOME/tandem`. The file is
read and written back under an exclusive lock (`locked_state`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tandem.errors import TandemError

__all__ = [
    "ADMIN_GROUP",
    "AGENT_GROUP",
    "STATE_DIR_ENV",
    "STATE_FILE",
    "InvalidStationRequestError",
    "RedisService",
    "StationProcess",
    "StationRegistry",
    "check_station_id",
    "default_state_dir",
    "locked_state",
    "manager_api",
    "read_state",
]

STATE_FILE = "stations.json"
STATE_DIR_ENV = "TANDEM_STATE_DIR"
#: the queue-server user group the agent daemon submits as (see user_group_permissions.yaml)
AGENT_GROUP = "agent"
ADMIN_GROUP = "admin"
STATION_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class InvalidStationRequestError(TandemError, ValueError):
    """A request that names no station, an unknown station or a malformed address."""


def check_station_id(station: str) -> str:
    """`station` if it is a valid station id, else `InvalidStationRequestError`."""
    if not STATION_ID.match(station):
        raise InvalidStationRequestError(
            f"a station id is lower-case letters, digits and '_', starting with a letter, got {station!r}"
        )
    return station


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


def _manager_public_key() -> str | None:
    """The public 0MQ key to talk to an encrypted RE Manager: QSERVER_ZMQ_PUBLIC_KEY, else the one
    of the private key this host's stations run with (QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER: on the
    station's own host, `tandem station start`, `status` and `stop` hold only that); None: plain."""
    public = os.environ.get("QSERVER_ZMQ_PUBLIC_KEY")
    private = os.environ.get("QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER")
    if public or not private:
        return public or None
    from bluesky_queueserver.manager.comms import generate_zmq_public_key

    return str(generate_zmq_public_key(private))


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

    api = REManagerAPI(
        zmq_control_addr=control_addr,
        zmq_info_addr=info_addr,
        timeout_recv=timeout_s,
        zmq_public_key=_manager_public_key(),
    )
    api.user = user
    api.user_group = user_group
    return api


def default_state_dir() -> Path:
    """`TANDEM_STATE_DIR`, else `$XDG_STATE_HOME/tandem` (`~/.local/state/tandem`)."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tandem"


@dataclass
class StationRegistry:
    """What the state file holds: the Redis in use and the stations started."""

    redis: RedisService | None = None
    stations: dict[str, StationProcess] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "redis": None if self.redis is None else asdict(self.redis),
            "stations": {sid: asdict(p) for sid, p in self.stations.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StationRegistry:
        redis = data.get("redis")
        return cls(
            redis=None if not redis else RedisService(**redis),
            stations={sid: StationProcess(**p) for sid, p in (data.get("stations") or {}).items()},
        )


@contextlib.contextmanager
def locked_state(state_dir: Path | None = None) -> Iterator[StationRegistry]:
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


def read_state(state_dir: Path | None = None) -> StationRegistry:
    """The state file as it is (empty when there is none or it is unreadable)."""
    path = (state_dir or default_state_dir()) / STATE_FILE
    try:
        return StationRegistry.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return StationRegistry()
