"""The Redis that keeps the queues and histories of the stations' RE Managers.

Redis is started only where none is configured (`--redis HOST:PORT`); one Redis serves
every station, each under its own key prefix. The one tandem starts listens on loopback
only and writes nothing to disk: queues and histories survive a restart of an RE Manager,
not of this Redis (a facility runs its own).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path

from tandem.campaign.process_groups import ProcessError, spawn_detached, stop_process_group, wait_for
from tandem.campaign.station_state import InvalidStationRequestError, RedisService, StationRegistry
from tandem.child_processes import LOOPBACK, free_port, log_tail, pid_alive

__all__ = ["ensure_redis", "parse_address", "redis_ping", "start_redis", "stop_redis"]


def parse_address(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or 'HOST', port 6379) as a pair; `InvalidStationRequestError` if malformed."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "6379")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidStationRequestError(
            f"a Redis address is HOST:PORT (for example 127.0.0.1:6379), got {text!r}"
        )
    return host, int(port)


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
    pid = spawn_detached(argv, log_path=log_path)
    if not wait_for(lambda: redis_ping(LOOPBACK, port) or not pid_alive(pid), timeout_s) or not pid_alive(
        pid
    ):
        with contextlib.suppress(ProcessError):
            stop_process_group(pid, timeout_s=2.0)
        raise ProcessError(f"redis-server did not answer on {LOOPBACK}:{port}:\n{log_tail(log_path)}")
    return RedisService(LOOPBACK, port, pid, str(directory))


def stop_redis(redis: RedisService) -> None:
    """Stop a Redis that tandem started (one it only attached to is left alone)."""
    if redis.pid is not None and pid_alive(redis.pid):
        stop_process_group(redis.pid, timeout_s=5.0)


def ensure_redis(state: StationRegistry, state_dir: Path, address: str | None = None) -> RedisService:
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
