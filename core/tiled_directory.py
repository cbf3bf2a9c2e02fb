"""The directory an embedded Tiled server serves: its files, its catalog made ready for several
writers, and the state file by which a running server is found again.

One directory holds a whole data store, so a campaign resumes from it::

    <directory>/catalog.db        the SQLite catalog of nodes and metadata (write-ahead logging)
    <directory>/tables.duckdb     tables: the event rows the Bluesky `TiledWriter` appends
    <directory>/data/             arrays, in local files
    <directory>/tiled-config.yml  the server's configuration, written at every start
    <directory>/api_key           the single-user API key (mode 0600), kept across restarts; served
                                  with roles, the owner's (administrator's) key
    <directory>/authn.db          served with roles only: Tiled's principals, roles and hashed keys
    <directory>/keys/<role>       served with roles only: the key issued to each role (mode 0600)
    <directory>/server.json       the server running now: its URL, pid and owner's pid (mode 0600)
    <directory>/server.log        the server's output

Tiled 0.2.20 asks for write-ahead logging on a new SQLite catalog inside a transaction,
where SQLite ignores it, so the catalog stays in rollback-journal mode, where a reader
blocks a committing writer. `prepare_catalog` switches it to WAL before the server opens
it, and the configuration gives it a busy timeout long enough to wait out a slow writer
(Tiled creates a node's table storage while it holds the catalog's write lock).

At scale the catalog and the tables live in PostgreSQL instead (`SqlDatabases`; arrays stay in the
directory's `data/`): several hosts then meet in one store, and no file of the directory is shared
between processes but the arrays the server itself writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tandem.child_processes import pid_alive
from tandem.tiled_endpoint import TiledEndpoint, TiledServerError, validate_api_key

__all__ = [
    "API_KEY_FILE",
    "AUTHN_FILE",
    "CATALOG_BUSY_TIMEOUT_S",
    "CATALOG_FILE",
    "CONFIG_FILE",
    "DATA_DIR",
    "KEYS_DIR",
    "LOG_FILE",
    "STATE_FILE",
    "TABLES_FILE",
    "SqlDatabases",
    "find_running_server",
    "prepare_catalog",
    "prepare_directory",
    "read_api_key",
    "remove_state",
    "roles_to_serve",
    "serves_with_roles",
    "write_api_key",
    "write_server_config",
    "write_state",
]

CATALOG_FILE = "catalog.db"
TABLES_FILE = "tables.duckdb"
DATA_DIR = "data"
CONFIG_FILE = "tiled-config.yml"
API_KEY_FILE = "api_key"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
AUTHN_FILE = "authn.db"
KEYS_DIR = "keys"

#: how long a catalog writer waits for another's write lock before the request fails (seconds)
CATALOG_BUSY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SqlDatabases:
    """A Tiled server's catalog and tables in PostgreSQL, in place of its directory's SQLite and DuckDB.

    Both URIs carry their credentials (`postgresql://user:password@host:port/database`); the
    server's configuration file that holds them is readable by its user only.
    """

    #: the catalog of nodes and metadata; Tiled talks to it with asyncpg
    catalog_uri: str
    #: the tables (the event rows the Bluesky `TiledWriter` appends); Tiled writes them with ADBC
    tables_uri: str

    def __post_init__(self) -> None:
        for label, uri in (("catalog", self.catalog_uri), ("tables", self.tables_uri)):
            scheme = uri.partition("://")[0]
            if scheme not in ("postgresql", "postgresql+asyncpg", "postgres"):
                raise TiledServerError(
                    f"the {label} database must be a postgresql:// URI, got scheme {scheme!r}"
                )

    def catalog_for_tiled(self) -> str:
        """The catalog URI with the asyncpg driver Tiled's catalog needs."""
        rest = self.catalog_uri.partition("://")[2]
        return f"postgresql+asyncpg://{rest}"

    def tables_for_tiled(self) -> str:
        """The tables URI as Tiled's ADBC storage takes it (no driver in the scheme)."""
        rest = self.tables_uri.partition("://")[2]
        return f"postgresql://{rest}"


def prepare_directory(directory: Path) -> None:
    """Create `directory` (private to its user) and its folder of arrays, if missing."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / DATA_DIR).mkdir(exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def read_api_key(directory: Path) -> str | None:
    """The API key kept in `directory`, if one is."""
    path = directory / API_KEY_FILE
    if not path.exists():
        return None
    return validate_api_key(path.read_text().strip())


def write_api_key(directory: Path, api_key: str) -> None:
    """Keep `api_key` in `directory`, readable by its user only."""
    _write_private(directory / API_KEY_FILE, api_key + "\n")


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


def serves_with_roles(directory: Path) -> bool:
    """Whether `directory` was served with roles (it has an authentication database)."""
    return (directory / AUTHN_FILE).exists()


def roles_to_serve(directory: Path, requested: bool | None) -> bool:
    """Whether to serve `directory` with roles: as `requested`, or as before (None).

    A directory once served with roles is never served without: its one key would then write
    every role's part, silently (`TiledServerError`).
    """
    before = serves_with_roles(directory)
    if requested is False and before:
        raise TiledServerError(
            f"{directory} was served with roles (it has an authentication database); serve it with "
            "roles again (`tandem data serve --roles`), or its single key would write every role's part"
        )
    return bool(requested) or before


def _roles_config(directory: Path) -> dict[str, Any]:
    """The parts of a server's configuration that give each role a key of its own (`tandem.tiled_roles`)."""
    return {
        "authentication": {
            "allow_anonymous_access": False,
            # Tiled keeps principals, roles and scoped keys only when a provider is configured;
            # this one takes no passwords: keys are the only way in.
            "providers": [
                {
                    "provider": "tandem",
                    "authenticator": "tandem.tiled_role_policy:KeysOnlyAuthenticator",
                    "args": {},
                }
            ],
        },
        # made before the server starts, with tandem's roles and the owner's key in it
        "database": {"uri": f"sqlite:///{directory / AUTHN_FILE}", "init_if_not_exists": False},
        "access_control": {"access_policy": "tandem.tiled_role_policy:RolePolicy", "args": {}},
    }


def _server_config(
    directory: Path,
    host: str,
    port: int,
    *,
    initialised: bool,
    databases: SqlDatabases | None,
    roles: bool = False,
) -> dict[str, Any]:
    if databases is None:
        catalog_uri = f"sqlite:///{directory / CATALOG_FILE}?timeout={CATALOG_BUSY_TIMEOUT_S:g}"
        tables_uri = f"duckdb:///{directory / TABLES_FILE}"
    else:
        catalog_uri, tables_uri = databases.catalog_for_tiled(), databases.tables_for_tiled()
    config: dict[str, Any] = {
        "catalog": {
            "uri": catalog_uri,
            "writable_storage": [str(directory / DATA_DIR), tables_uri],
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
    if roles:
        config.update(_roles_config(directory))
    return config


def write_server_config(
    directory: Path, host: str, port: int, databases: SqlDatabases | None = None, *, roles: bool = False
) -> Path:
    """Prepare the catalog and write the configuration of a server on `host:port`; its path.

    With `databases`, the catalog and tables are in PostgreSQL; Tiled is asked to initialise the
    catalog if it is new (it checks, which costs a few seconds at each start). With `roles`, each
    role's key writes only its own part of the catalog (`tandem.tiled_roles`).
    """
    config_path = directory / CONFIG_FILE
    initialised = False if databases is not None else prepare_catalog(directory / CATALOG_FILE)
    config = _server_config(directory, host, port, initialised=initialised, databases=databases, roles=roles)
    # private: with PostgreSQL the file holds the databases' passwords
    _write_private(
        config_path,
        "# Written by tandem at every start; edit tandem.tiled_directory, not this file.\n"
        + yaml.safe_dump(config, sort_keys=False),
    )
    return config_path


def write_state(directory: Path, endpoint: TiledEndpoint, pid: int) -> None:
    """Record that the server process `pid`, started by this process, serves `directory` at `endpoint`."""
    # the owner: `tandem data stop` asks it (not the server under it) to stop
    state = {"url": endpoint.url, "pid": pid, "owner_pid": os.getpid()}
    _write_private(directory / STATE_FILE, json.dumps(state) + "\n")


def remove_state(directory: Path) -> None:
    """Forget the server of `directory` (it has stopped)."""
    with contextlib.suppress(FileNotFoundError):
        (directory / STATE_FILE).unlink()


def find_running_server(directory: str | os.PathLike[str]) -> TiledEndpoint | None:
    """The endpoint of an embedded server that still serves `directory`, if there is one.

    This is how a process that was killed finds the store it had started (the server
    outlives it on purpose) and attaches to it again.
    """
    directory = Path(directory)
    try:
        state = json.loads((directory / STATE_FILE).read_text())
        api_key = read_api_key(directory)
    except (OSError, ValueError):
        return None
    if api_key is None or not pid_alive(int(state.get("pid", -1))):
        return None
    endpoint = TiledEndpoint(str(state["url"]), api_key)
    return endpoint if endpoint.is_healthy() else None
