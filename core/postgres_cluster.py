"""A throwaway PostgreSQL cluster on a loopback port, for tests and benches of Tiled on PostgreSQL.

At scale tandem's Tiled catalog lives in a facility's PostgreSQL server (`docs/how-to/data-in-tiled.md`).
To test and bench that for real without touching any system cluster, `ThrowawayPostgres` makes a
new cluster in a fresh folder with Debian's `initdb`, serves it with `postgres` on 127.0.0.1 and a
free port (no Unix socket), and on exit stops it and removes the folder it made, also on failure.

- PostgreSQL refuses to run as root; started as root (a CI machine), the cluster's folder is given
  to the `postgres` system user and `initdb` and the server run as that user (the child drops to
  it before it runs them).
- The cluster's superuser has a generated password and the cluster takes only password logins
  (SCRAM) over TCP: another local user cannot walk in.
- The server dies with the process that started it (`popen_dying_with_parent`), so a killed test
  leaves no server behind; its folder under the system's temp directory is then left for the
  system to clean, since nothing is left to remove it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from tandem.child_processes import LOOPBACK, free_port, log_tail, popen_dying_with_parent
from tandem.errors import TandemError

#: the role the throwaway cluster's databases belong to
SUPERUSER = "tandem"
#: the system user PostgreSQL runs as when tandem runs as root (Debian's package makes it)
SYSTEM_USER = "postgres"


class PostgresUnavailableError(TandemError, RuntimeError):
    """PostgreSQL's server programs are not installed, or the cluster did not start."""


@dataclass(frozen=True)
class PostgresAddress:
    """Where a PostgreSQL server listens and who logs in; `uri(...)` names one of its databases."""

    host: str
    port: int
    user: str
    password: str

    def uri(self, database: str, *, driver: str | None = None) -> str:
        """`postgresql://` (or `postgresql+<driver>://`) URI of `database`, credentials included."""
        scheme = "postgresql" if driver is None else f"postgresql+{driver}"
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"{scheme}://{credentials}@{self.host}:{self.port}/{quote(database, safe='')}"


def postgres_bindir() -> Path:
    """The folder of PostgreSQL's server programs (`initdb`, `postgres`), the newest installed."""
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version)
    if versions:
        return versions[-1].parent
    raise PostgresUnavailableError(
        "PostgreSQL's server programs (initdb, postgres) are not installed; on Debian: "
        "apt-get install postgresql (make test installs it where missing)"
    )


def _version(initdb: Path) -> tuple[int, ...]:
    name = initdb.parent.parent.name
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own, started on entry and removed on exit.

    >>> with ThrowawayPostgres(databases=("catalog",)) as pg:  # doctest: +SKIP
    ...     uri = pg.uri("catalog", driver="asyncpg")
    """

    def __init__(self, databases: Sequence[str] = (), *, startup_timeout_s: float = 60.0) -> None:
        self.databases = tuple(databases)
        self.startup_timeout_s = startup_timeout_s
        self.folder: Path | None = None
        self.address: PostgresAddress | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def uri(self, database: str, *, driver: str | None = None) -> str:
        if self.address is None:
            raise PostgresUnavailableError("the cluster is not running")
        return self.address.uri(database, driver=driver)

    def __enter__(self) -> ThrowawayPostgres:
        bindir = postgres_bindir()
        self.folder = Path(tempfile.mkdtemp(prefix="tandem-postgres-"))
        try:
            self._start(bindir, self.folder)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # SIGINT: PostgreSQL's "fast" shutdown, which ends the sessions and does not wait on them
            process.send_signal(2)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        self.address = None

    # -- starting -------------------------------------------------------------------------------

    def _start(self, bindir: Path, folder: Path) -> None:
        as_root = os.geteuid() == 0
        data = folder / "data"
        password = secrets.token_urlsafe(24)
        password_file = folder / "password"
        password_file.write_text(password + "\n")
        if as_root:
            shutil.chown(folder, user=SYSTEM_USER)
            shutil.chown(password_file, user=SYSTEM_USER)
        password_file.chmod(0o600)
        self._run(
            [
                str(bindir / "initdb"),
                f"--pgdata={data}",
                f"--username={SUPERUSER}",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",  # a cluster that lives for one test does not need to survive a power cut
            ],
            as_root=as_root,
        )
        password_file.unlink()
        port = free_port()
        log = folder / "postgres.log"
        command = [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"port={port}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
        ]
        with log.open("ab") as out:
            if as_root:
                shutil.chown(log, user=SYSTEM_USER)
            self._process = popen_dying_with_parent(
                command,
                **_system_user(as_root),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.address = PostgresAddress(LOOPBACK, port, SUPERUSER, password)
        self._wait_until_ready(bindir, log)
        for database in self.databases:
            self.create_database(database)

    def _wait_until_ready(self, bindir: Path, log: Path) -> None:
        assert self.address is not None
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PostgresUnavailableError(
                    f"PostgreSQL exited at start (status {self._process.returncode}): {log_tail(log, 10)}"
                )
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", LOOPBACK, "-p", str(self.address.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise PostgresUnavailableError(
            f"PostgreSQL did not answer within {self.startup_timeout_s:g} s: {log_tail(log, 10)}"
        )

    def create_database(self, name: str) -> None:
        """A new, empty database `name` in the cluster, owned by its superuser."""
        if not name.replace("_", "").isalnum():
            raise PostgresUnavailableError(f"a database name of letters, digits and _ please, got {name!r}")
        self._psql(postgres_bindir(), f'CREATE DATABASE "{name}"')

    def _psql(self, bindir: Path, sql: str) -> None:
        if self.address is None:
            raise PostgresUnavailableError("the cluster is not running")
        psql = bindir / "psql"
        if not psql.exists():
            psql = Path(shutil.which("psql") or "psql")
        env = {**os.environ, "PGPASSWORD": self.address.password}
        done = subprocess.run(
            [
                *(str(psql), "-h", LOOPBACK, "-p", str(self.address.port), "-U", SUPERUSER),
                *("-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise PostgresUnavailableError(f"{sql!r} failed: {done.stderr.strip()}")

    @staticmethod
    def _run(command: list[str], *, as_root: bool) -> None:
        done = subprocess.run(
            command,
            **_system_user(as_root),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise PostgresUnavailableError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")


def _system_user(as_root: bool) -> dict[str, Any]:
    """Popen's arguments that run a child as PostgreSQL's system user when tandem runs as root."""
    if not as_root:
        return {}
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailableError(
            f"PostgreSQL refuses to run as root and there is no {SYSTEM_USER!r} user to run it as "
            "(Debian's postgresql package makes one)"
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


__all__ = ["PostgresAddress", "PostgresUnavailableError", "ThrowawayPostgres", "postgres_bindir"]
