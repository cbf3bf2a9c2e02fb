"""The data store: an embedded Tiled server in its own process, or one that already runs.

Every record of a campaign lives in Tiled (DESIGN.md). On one machine tandem starts
the server itself: `tiled serve config` on a SQLite catalog, with arrays in local
files and tables (the event rows the Bluesky `TiledWriter` appends) in a DuckDB file,
all inside one directory that the caller names, so a campaign resumes from it. The
server runs as a separate process in its own session: the processes that write and
read (RunEngines, analysis workers, the agent daemon) reach it over HTTP, and killing
one of them, or Ctrl-C in the terminal that started it, does not take the store down
before its owner has written its last documents and stops it.

Several processes write at once (two RunEngines, the analysis worker, the agent
daemon), so two things are set up here that Tiled 0.2.20 leaves out on one machine:

- Tiled hands its one DuckDB connection to every request thread at once (a
  `StaticPool`), and a DuckDB connection is not thread-safe: under concurrent appends
  and reads the server fails transactions ("No active transaction, cannot commit") and
  then dies of a segmentation fault. The server process is started through
  `python -m tandem.tiled_server`, which lends that connection to one thread at a time
  (`serialise_duckdb_storage`) and then runs `tiled serve config`.
- Tiled asks for write-ahead logging on a new SQLite catalog inside a transaction,
  where SQLite ignores it, so the catalog stays in rollback-journal mode, where a
  reader blocks a committing writer. The catalog is switched to WAL here before the
  server opens it, and given a busy timeout long enough to wait out a slow writer
  (Tiled creates a node's table storage while it holds the catalog's write lock).

API-key authentication is always on. The key is generated once per directory and kept
there (mode 0600), so clients configured with it keep working across a restart.

Processes that attach instead of starting read `TiledSettings` from the environment
(`TANDEM_TILED_URI`, `TANDEM_TILED_API_KEY`); `TiledEndpoint.environ()` produces those
variables for a child process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.child_processes import LOOPBACK, free_port, pid_alive, popen_dying_with_parent
from tandem.errors import TandemError

if TYPE_CHECKING:
    from tiled.client.container import Container

__all__ = [
    "API_KEY_ENV",
    "URI_ENV",
    "EmbeddedTiledServer",
    "InvalidTiledSettingsError",
    "TiledAuthenticationError",
    "TiledEndpoint",
    "TiledServerError",
    "TiledSettings",
    "attach",
    "find_running_server",
    "generate_api_key",
    "prepare_catalog",
    "serialise_duckdb_storage",
    "serve",
    "tiled_service",
]

URI_ENV = "TANDEM_TILED_URI"
API_KEY_ENV = "TANDEM_TILED_API_KEY"


API_PATH = "/api/v1"
CATALOG_FILE = "catalog.db"
TABLES_FILE = "tables.duckdb"
DATA_DIR = "data"
CONFIG_FILE = "tiled-config.yml"
API_KEY_FILE = "api_key"
STATE_FILE = "server.json"
LOG_FILE = "server.log"

#: a port picked free can be taken by someone else before the server binds it
_BIND_ATTEMPTS = 3
#: how long a catalog writer waits for another's write lock before the request fails (seconds)
CATALOG_BUSY_TIMEOUT_S = 60.0
#: how long a request waits for its turn on the table store before it fails (seconds)
TABLE_STORE_WAIT_S = 120.0


class TiledServerError(TandemError, RuntimeError):
    """The Tiled server could not be started, reached or stopped."""


class TiledAuthenticationError(TiledServerError):
    """The server answers but refuses the API key."""


class InvalidTiledSettingsError(TandemError, ValueError):
    """Settings that no Tiled server could be started or reached with."""


def generate_api_key() -> str:
    """A fresh single-user API key: 64 hex digits (Tiled accepts only alphanumerics)."""
    return secrets.token_hex(32)


def _check_api_key(api_key: str) -> str:
    if not api_key or not api_key.isascii() or not api_key.isalnum():
        raise InvalidTiledSettingsError(
            "a Tiled API key must be a non-empty string of ASCII letters and digits "
            "(for example the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return api_key


def _base_url(uri: str) -> str:
    """`http://host:port` from any spelling a user may paste (with /api/v1, a query, a slash)."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidTiledSettingsError(
            "a Tiled server URI must look like http://HOST:PORT "
            f"(optionally ending in {API_PATH}), got {uri!r}"
        )
    path = parts.path.rstrip("/")
    if path.endswith(API_PATH):
        path = path[: -len(API_PATH)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class TiledSettings(BaseSettings):
    """Where the data store is: a running server (`uri`, `api_key`) or a directory to serve.

    Read from `TANDEM_TILED_URI`, `TANDEM_TILED_API_KEY` and `TANDEM_TILED_DIRECTORY`
    by `TiledSettings()`; pass values to override the environment.
    """

    model_config = SettingsConfigDict(env_prefix="TANDEM_TILED_", frozen=True, extra="forbid")

    uri: str | None = None
    api_key: SecretStr | None = None
    directory: Path | None = None

    @field_validator("uri")
    @classmethod
    def _normalise_uri(cls, value: str | None) -> str | None:
        return None if value is None else _base_url(value)

    @field_validator("api_key")
    @classmethod
    def _valid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_api_key(value.get_secret_value())
        return value


@functools.cache
def _http_client() -> httpx.Client:
    """One client for health and key checks: building one (its TLS context) costs ~20 ms, and a
    server's start-up is polled every 50 ms on the same cores the server is starting on."""
    return httpx.Client(trust_env=False)


@dataclass(frozen=True)
class TiledEndpoint:
    """How to reach one Tiled server: its base URL and the API key it accepts."""

    url: str
    api_key: str = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _base_url(self.url))
        _check_api_key(self.api_key)

    @property
    def api_uri(self) -> str:
        return f"{self.url}{API_PATH}"

    def connect(self) -> Container:
        """A Tiled client on the root of the catalog."""
        from tiled.client import from_uri

        return from_uri(self.api_uri, api_key=self.api_key)

    def environ(self) -> dict[str, str]:
        """The environment variables with which another process attaches to this server."""
        return {URI_ENV: self.url, API_KEY_ENV: self.api_key}

    def settings(self) -> TiledSettings:
        return TiledSettings(uri=self.url, api_key=SecretStr(self.api_key))

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        """Whether the server answers its health check (no key needed for that)."""
        try:
            response = _http_client().get(f"{self.url}/healthz", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def check_api_key(self, timeout_s: float = 5.0) -> None:
        """Raise `TiledAuthenticationError` unless the server accepts our key."""
        try:
            response = _http_client().get(
                f"{self.api_uri}/metadata/",
                headers={"Authorization": f"Apikey {self.api_key}"},
                timeout=timeout_s,
            )
        except httpx.HTTPError as error:
            raise TiledServerError(f"Tiled server at {self.url} does not answer: {error}") from error
        if response.status_code in (401, 403):
            raise TiledAuthenticationError(
                f"Tiled server at {self.url} refuses the API key (HTTP {response.status_code}); "
                f"set {API_KEY_ENV} to the key the server was started with"
            )
        if response.status_code != 200:
            raise TiledServerError(
                f"Tiled server at {self.url} answered HTTP {response.status_code} to a metadata request"
            )


def attach(uri: str, api_key: str, *, timeout_s: float = 10.0) -> TiledEndpoint:
    """The endpoint of a running server, after checking that it answers and accepts the key."""
    endpoint = TiledEndpoint(uri, api_key)
    deadline = time.monotonic() + timeout_s
    while not endpoint.is_healthy():
        if time.monotonic() >= deadline:
            raise TiledServerError(f"no Tiled server answers at {endpoint.url} (waited {timeout_s:g} s)")
        time.sleep(0.1)
    endpoint.check_api_key()
    return endpoint


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _read_api_key(directory: Path) -> str | None:
    path = directory / API_KEY_FILE
    if not path.exists():
        return None
    return _check_api_key(path.read_text().strip())


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def find_running_server(directory: str | os.PathLike[str]) -> TiledEndpoint | None:
    """The endpoint of an embedded server that still serves `directory`, if there is one.

    This is how a process that was killed finds the store it had started (the server
    outlives it on purpose) and attaches to it again.
    """
    directory = Path(directory)
    try:
        state = json.loads((directory / STATE_FILE).read_text())
        api_key = _read_api_key(directory)
    except (OSError, ValueError):
        return None
    if api_key is None or not pid_alive(int(state.get("pid", -1))):
        return None
    endpoint = TiledEndpoint(str(state["url"]), api_key)
    return endpoint if endpoint.is_healthy() else None


def prepare_catalog(path: Path) -> bool:
    """Put the SQLite catalog at `path` (created empty if missing) in WAL mode; whether Tiled initialised it.

    WAL lets readers go on while one process commits, and persists in the file.
    Run it while no server has the catalog open.
    """
    try:
        # isolation_level=None: no implicit transaction, inside which SQLite would ignore the pragma
        with contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=10)) as db:
            (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
            initialised = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
    except sqlite3.Error as error:
        raise TiledServerError(
            f"the Tiled catalog {path} cannot be opened as a SQLite database ({error}); "
            "move it away to start a new catalog in this directory"
        ) from error
    if str(mode).lower() != "wal":
        raise TiledServerError(f"the Tiled catalog {path} refused write-ahead logging (journal mode {mode})")
    return initialised is not None


def _server_config(directory: Path, host: str, port: int, *, initialised: bool) -> dict[str, Any]:
    return {
        "catalog": {
            "uri": f"sqlite:///{directory / CATALOG_FILE}?timeout={CATALOG_BUSY_TIMEOUT_S:g}",
            "writable_storage": [str(directory / DATA_DIR), f"duckdb:///{directory / TABLES_FILE}"],
            # Tiled checks for an existing catalog in a subprocess that imports all of Tiled
            # again: seconds on every start. Only a new catalog needs it.
            "init_if_not_exists": not initialised,
        },
        # Authentication is on: no anonymous access; the single-user key comes from
        # TILED_SINGLE_USER_API_KEY in the server's environment, never from this file.
        "authentication": {"allow_anonymous_access": False},
        # An in-process cache lets clients subscribe to runs as they are written.
        "streaming_cache": {"uri": "memory"},
        # A campaign makes millions of requests; one log line each would fill the disk.
        "uvicorn": {"host": host, "port": port, "access_log": False},
    }


class EmbeddedTiledServer:
    """A Tiled server process serving one directory, on a loopback port.

    >>> with EmbeddedTiledServer("campaign-store") as endpoint:  # doctest: +SKIP
    ...     client = endpoint.connect()

    `start()` returns once the server answers; `stop()` asks it to shut down, waits,
    and kills it if it does not. Leaving the `with` block stops it also on an error.

    The server lives in its own session, so Ctrl-C in the terminal reaches only its
    owner, which can close its runs before it stops the store. With
    `die_with_parent` (Linux; used by test fixtures) the kernel also stops the server
    when the owning process dies, however it dies; without it the server outlives a
    killed owner, and `find_running_server(directory)` finds it again.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        api_key: str | None = None,
        port: int = 0,
        host: str = LOOPBACK,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
        die_with_parent: bool = False,
    ) -> None:
        self.directory = Path(directory).absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise InvalidTiledSettingsError(
                f"the Tiled directory {self.directory} exists and is not a folder"
            )
        if not 0 <= port <= 65535:
            raise InvalidTiledSettingsError(f"port must be 0 (any free port) or 1-65535, got {port}")
        if startup_timeout_s <= 0 or stop_timeout_s <= 0:
            raise InvalidTiledSettingsError("startup and stop timeouts must be positive numbers of seconds")
        self._api_key = None if api_key is None else _check_api_key(api_key)
        self.port = port
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoint: TiledEndpoint | None = None
        # start, restart and stop come from several threads (the owner, a store guard, writers)
        self._lock = threading.RLock()
        self.restarts = 0

    def __repr__(self) -> str:
        state = f"serving {self._endpoint.url}" if self._endpoint else "stopped"
        return f"<EmbeddedTiledServer {str(self.directory)!r} {state}>"

    @property
    def endpoint(self) -> TiledEndpoint:
        if self._endpoint is None:
            raise TiledServerError(
                f"the Tiled server for {self.directory} is not running; call start() first"
            )
        return self._endpoint

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def is_running(self) -> bool:
        return self.alive()

    def alive(self) -> bool:
        """Whether the server process runs. A process that died is reaped here, so none is left a zombie."""
        process = self._process
        return process is not None and process.poll() is None

    def answers(self, timeout_s: float = 1.0) -> bool:
        """Whether the process runs and its HTTP endpoint answers the health check within `timeout_s`."""
        endpoint = self._endpoint
        return endpoint is not None and self.alive() and endpoint.is_healthy(timeout_s=timeout_s)

    @property
    def exit_status(self) -> int | None:
        """The exit status of a server process that has died (negative: the signal), else None."""
        process = self._process
        return None if process is None else process.poll()

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    def start(self) -> TiledEndpoint:
        """Start the server and wait until it answers with our key; idempotent while running."""
        with self._lock:
            return self._start()

    def _start(self) -> TiledEndpoint:
        if self.is_running:
            return self.endpoint
        self._prepare_directory()
        running = find_running_server(self.directory)
        if running is not None:
            raise TiledServerError(
                f"a Tiled server already serves {self.directory} at {running.url}; attach to it "
                f"(set {URI_ENV} and {API_KEY_ENV}, or use tandem.tiled_server.find_running_server) "
                "or stop it first"
            )
        if self.port and not _port_is_free(self.host, self.port):
            raise TiledServerError(
                f"port {self.port} on {self.host} is taken; choose another port or 0 for any free one"
            )
        api_key = self._api_key or _read_api_key(self.directory) or generate_api_key()
        _write_private(self.directory / API_KEY_FILE, api_key + "\n")
        attempts = 1 if self.port else _BIND_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self.port or free_port(self.host)
            try:
                endpoint = self._launch(port, api_key)
            except _PortTakenError:
                if attempt == attempts:
                    raise TiledServerError(
                        f"port {port} on {self.host} is taken; choose another port or 0 for any free one"
                    ) from None
            except BaseException:
                self.stop()
                raise
            else:
                self._endpoint = endpoint
                return endpoint
        raise AssertionError("unreachable")  # pragma: no cover

    def restart(self) -> TiledEndpoint:
        """Start the server again on the same port, directory and API key, after it died or hung.

        Tiled clients made before keep working once it answers: they know only the URL and the
        key. A process still running (hung) is stopped first; one that died is reaped. Refused
        (`TiledServerError`) for a server that was never started or was stopped by its owner,
        so that a guard in another thread cannot bring back a store its owner has shut down.
        On failure (the port was taken meanwhile) the server stays known, to be restarted again.
        """
        with self._lock:
            endpoint = self._endpoint
            if endpoint is None:
                raise TiledServerError(
                    f"the Tiled server for {self.directory} is not started (or was stopped by its "
                    "owner); start() it rather than restart it"
                )
            process = self._process
            if process is not None:
                _terminate(process, self.stop_timeout_s)
            port = urlsplit(endpoint.url).port
            assert port is not None  # an endpoint we made ourselves always names its port
            try:
                self._launch(port, endpoint.api_key)
            except _PortTakenError:
                raise TiledServerError(
                    f"the Tiled server for {self.directory} cannot restart: port {port} on "
                    f"{self.host} was taken by another process"
                ) from None
            self.restarts += 1
            return endpoint

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until the server process exits (or `timeout_s` passes); its exit status, or None."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Ask the server to shut down (SIGTERM), wait, then kill it if it still runs."""
        with self._lock:
            process, self._process, self._endpoint = self._process, None, None
            if process is None:
                return
            try:
                _terminate(process, self.stop_timeout_s)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / STATE_FILE).unlink()

    def __enter__(self) -> TiledEndpoint:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _prepare_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.directory / DATA_DIR).mkdir(exist_ok=True)

    def _launch(self, port: int, api_key: str) -> TiledEndpoint:
        config_path = self.directory / CONFIG_FILE
        initialised = prepare_catalog(self.directory / CATALOG_FILE)
        config = _server_config(self.directory, self.host, port, initialised=initialised)
        config_path.write_text(
            "# Written by tandem at every start; edit EmbeddedTiledServer, not this file.\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
        env = self._child_environment(api_key)
        log = open(self.log_path, "ab")  # noqa: SIM115 -- the child keeps its own copy open
        os.chmod(self.log_path, 0o600)  # tiled prints a login URL with the key at startup
        try:
            log.write(f"\n--- tandem: starting Tiled on {self.host}:{port} at {time.ctime()}\n".encode())
            log.flush()
            popen = popen_dying_with_parent if self.die_with_parent else subprocess.Popen
            process = popen(
                [sys.executable, "-m", "tandem.tiled_server", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
                start_new_session=True,
            )
        finally:
            log.close()
        self._process = process
        endpoint = TiledEndpoint(f"http://{self.host}:{port}", api_key)
        try:
            self._wait_until_ready(process, endpoint)
        except BaseException:
            _terminate(process, self.stop_timeout_s)
            raise
        # the owner: `tandem serve stop` asks it (not the server under it) to stop
        state = {"url": endpoint.url, "pid": process.pid, "owner_pid": os.getpid()}
        _write_private(self.directory / STATE_FILE, json.dumps(state) + "\n")
        return endpoint

    def _child_environment(self, api_key: str) -> dict[str, str]:
        # Tiled reads its whole configuration from TILED_* variables too; stray ones
        # from the caller's shell must not change what this server serves.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TILED_")}
        env["TILED_SINGLE_USER_API_KEY"] = api_key
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _wait_until_ready(self, process: subprocess.Popen[bytes], endpoint: TiledEndpoint) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if process.poll() is not None:
                tail = self._log_tail()
                if "address already in use" in tail.lower():
                    raise _PortTakenError
                raise TiledServerError(
                    f"the Tiled server exited with status {process.returncode} during startup; "
                    f"the end of {self.log_path}:\n{tail}"
                )
            if endpoint.is_healthy(timeout_s=1.0):
                endpoint.check_api_key()
                return
            if time.monotonic() >= deadline:
                raise TiledServerError(
                    f"the Tiled server did not answer within {self.startup_timeout_s:g} s; "
                    f"the end of {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self, n_lines: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n_lines:])


class _PortTakenError(Exception):
    pass


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL; always reaps the process."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextlib.contextmanager
def tiled_service(settings: TiledSettings | None = None) -> Iterator[TiledEndpoint]:
    """The data store a process should use: attach to `settings.uri`, else serve `settings.directory`.

    With no settings they are read from the environment. A server started here is
    stopped when the block ends; one attached to is left running.
    """
    if settings is None:
        settings = TiledSettings()
    if settings.uri is not None:
        if settings.api_key is None:
            raise InvalidTiledSettingsError(
                f"a Tiled URI was given ({settings.uri}) without an API key; set {API_KEY_ENV}"
            )
        yield attach(settings.uri, settings.api_key.get_secret_value())
        return
    if settings.directory is None:
        raise InvalidTiledSettingsError(
            f"no data store configured: set {URI_ENV} and {API_KEY_ENV} to attach to a running "
            "Tiled server, or TANDEM_TILED_DIRECTORY to start one on a directory"
        )
    key = None if settings.api_key is None else settings.api_key.get_secret_value()
    with EmbeddedTiledServer(settings.directory, api_key=key) as endpoint:
        yield endpoint


# --- the server process ------------------------------------------------------------------------


def serialise_duckdb_storage() -> None:
    """Make Tiled lend its DuckDB table-store connection to one request thread at a time.

    Tiled 0.2.20 shares one DuckDB connection among all its worker threads
    (`SQLStorage._connection_pool` is a `StaticPool` for DuckDB), and a DuckDB
    connection must not be used by two threads at once. A `QueuePool` of one
    connection with no overflow is the same single connection with a checkout lock:
    every table read, append and creation runs whole before the next begins (they are
    short: a few rows each). Other SQL stores (SQLite, PostgreSQL) keep Tiled's pool.
    Call it in the server process before Tiled builds its storage.
    """
    import sqlalchemy.pool
    from tiled.storage import SQLStorage

    original = SQLStorage.__dict__.get("_connection_pool")
    if not isinstance(original, functools.cached_property):
        raise TiledServerError(
            "this Tiled version has no SQLStorage._connection_pool to serialise DuckDB access "
            "through; check tandem.tiled_server.serialise_duckdb_storage against tiled.storage"
        )
    if getattr(original.func, "_tandem_serialised", False):
        return

    def connection_pool(self: SQLStorage) -> sqlalchemy.pool.Pool:
        if self.dialect != "duckdb":
            return original.func(self)
        return sqlalchemy.pool.QueuePool(
            self._adbc_connection.adbc_clone, pool_size=1, max_overflow=0, timeout=TABLE_STORE_WAIT_S
        )

    connection_pool._tandem_serialised = True  # type: ignore[attr-defined]
    replacement = functools.cached_property(connection_pool)
    replacement.__set_name__(SQLStorage, "_connection_pool")
    setattr(SQLStorage, "_connection_pool", replacement)  # noqa: B010 -- a class attribute, on purpose


def serve(config_path: str) -> None:
    """Run `tiled serve config CONFIG_PATH` in this process, with DuckDB access serialised."""
    serialise_duckdb_storage()
    from tiled.commandline.main import main

    sys.argv = ["tiled", "serve", "config", config_path]
    main()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tandem.tiled_server TILED_CONFIG_FILE")
    serve(sys.argv[1])
