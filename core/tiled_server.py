"""The data store: an embedded Tiled server in its own process, started, watched, restarted and stopped.

Every record of a campaign lives in Tiled (DESIGN.md). On one machine tandem starts
the server itself: `tiled serve config` on one directory that the caller names, so a
campaign resumes from it (its files: `tandem.tiled_directory`). The server runs as a
separate process in its own session: the processes that write and read (RunEngines,
analysis workers, the agent daemon) reach it over HTTP (`tandem.tiled_endpoint`), and
killing one of them, or Ctrl-C in the terminal that started it, does not take the store
down before its owner has written its last documents and stops it. The process runs
`python -m tandem.tiled_server CONFIG`, which serves with Tiled's DuckDB access
serialised (`tandem.tiled_process`).

API-key authentication is always on. The key is generated once per directory and kept
there, so clients configured with it keep working across a restart. Served with `roles`, that key
is the owner's (Tiled's administrator) and every other process gets a key of its role, which
writes only the role's part of the catalog (`tandem.tiled_roles`, `tandem.tiled_keys`).

`tiled_service` is the one call a process makes for its data store: attach to the server
the settings name, else serve their directory. The endpoint, the directory's files and the
server process have modules of their own (`tiled_endpoint`, `tiled_directory`, `tiled_process`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tandem.child_processes import (
    LOOPBACK,
    free_port,
    log_tail,
    popen_dying_with_parent,
    port_is_free,
    terminate,
)
from tandem.tiled_directory import (
    LOG_FILE,
    SqlDatabases,
    find_running_server,
    prepare_directory,
    read_api_key,
    remove_state,
    roles_to_serve,
    write_api_key,
    write_server_config,
    write_state,
)
from tandem.tiled_endpoint import (
    API_KEY_ENV,
    URI_ENV,
    InvalidTiledSettingsError,
    TiledEndpoint,
    TiledServerError,
    TiledSettings,
    attach,
    generate_api_key,
    validate_api_key,
)
from tandem.tiled_process import OWNER_KEY_ENV, serve

__all__ = [
    "EmbeddedTiledServer",
    "tiled_service",
]

#: a port picked free can be taken by someone else before the server binds it
_BIND_ATTEMPTS = 3


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
        databases: SqlDatabases | None = None,
        roles: bool | None = None,
    ) -> None:
        self.directory = Path(directory).absolute()
        #: each role its own key (`tandem.tiled_roles`); None: as the directory was served before
        self.roles = roles
        #: PostgreSQL databases for the catalog and tables (None: SQLite and DuckDB in `directory`)
        self.databases = databases
        if self.directory.exists() and not self.directory.is_dir():
            raise InvalidTiledSettingsError(
                f"the Tiled directory {self.directory} exists and is not a folder"
            )
        if not 0 <= port <= 65535:
            raise InvalidTiledSettingsError(f"port must be 0 (any free port) or 1-65535, got {port}")
        if startup_timeout_s <= 0 or stop_timeout_s <= 0:
            raise InvalidTiledSettingsError("startup and stop timeouts must be positive numbers of seconds")
        self._api_key = None if api_key is None else validate_api_key(api_key)
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
        prepare_directory(self.directory)
        running = find_running_server(self.directory)
        if running is not None:
            raise TiledServerError(
                f"a Tiled server already serves {self.directory} at {running.url}; attach to it "
                f"(set {URI_ENV} and {API_KEY_ENV}, or use tandem.tiled_directory.find_running_server) "
                "or stop it first"
            )
        if self.port and not port_is_free(self.host, self.port):
            raise TiledServerError(
                f"port {self.port} on {self.host} is taken; choose another port or 0 for any free one"
            )
        self.roles = roles_to_serve(self.directory, self.roles)
        api_key = self._api_key or read_api_key(self.directory) or generate_api_key()
        write_api_key(self.directory, api_key)
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
                terminate(process, self.stop_timeout_s)
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
                terminate(process, self.stop_timeout_s)
            finally:
                remove_state(self.directory)

    def __enter__(self) -> TiledEndpoint:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _launch(self, port: int, api_key: str) -> TiledEndpoint:
        config_path = write_server_config(
            self.directory, self.host, port, self.databases, roles=bool(self.roles)
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
            if self.roles:
                # before the state file: a client that finds the server finds the layout (no role
                # but the owner may make the catalog's top-level containers)
                from tandem.tiled_keys import prepare_layout

                prepare_layout(endpoint.connect())
        except BaseException:
            terminate(process, self.stop_timeout_s)
            raise
        write_state(self.directory, endpoint, process.pid)
        return endpoint

    def _child_environment(self, api_key: str) -> dict[str, str]:
        # Tiled reads its whole configuration from TILED_* variables too; stray ones
        # from the caller's shell must not change what this server serves.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TILED_") and k != OWNER_KEY_ENV}
        if self.roles:
            # registered as the administrator's key before the server starts (tandem.tiled_process)
            env[OWNER_KEY_ENV] = api_key
        else:
            env["TILED_SINGLE_USER_API_KEY"] = api_key
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _wait_until_ready(self, process: subprocess.Popen[bytes], endpoint: TiledEndpoint) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if process.poll() is not None:
                tail = log_tail(self.log_path, 20)
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
                    f"the end of {self.log_path}:\n{log_tail(self.log_path, 20)}"
                )
            time.sleep(0.05)


class _PortTakenError(Exception):
    pass


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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tandem.tiled_server TILED_CONFIG_FILE")
    serve(sys.argv[1])
