"""What runs inside the embedded Tiled server's own process: `tiled serve config`, made safe for
several writers at once.

Tiled 0.2.20 hands its one DuckDB connection to every request thread at once (a
`StaticPool`), and a DuckDB connection is not thread-safe: under concurrent appends and
reads (two RunEngines, the analysis worker, the agent daemon) the server fails
transactions ("No active transaction, cannot commit") and then dies of a segmentation
fault. The server process is started as `python -m tandem.tiled_server CONFIG`, which calls
`serve` here: it lends that connection to one thread at a time (`serialise_duckdb_storage`)
and then runs `tiled serve config`. A store served with roles gets its authentication database
ready first (`tandem.tiled_role_policy`), with the owner's key handed over in `OWNER_KEY_ENV`.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import yaml

from tandem.tiled_endpoint import TiledServerError

__all__ = ["OWNER_KEY_ENV", "TABLE_STORE_WAIT_S", "serialise_duckdb_storage", "serve"]

#: the store owner's key, for a server with roles to register before it starts (never in its config)
OWNER_KEY_ENV = "TANDEM_TILED_OWNER_KEY"

#: how long a request waits for its turn on the table store before it fails (seconds)
TABLE_STORE_WAIT_S = 120.0


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
            "through; check tandem.tiled_process.serialise_duckdb_storage against tiled.storage"
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
    owner_key = os.environ.pop(OWNER_KEY_ENV, None)
    if owner_key is not None:
        from tandem.tiled_role_policy import prepare_authentication_database

        config = yaml.safe_load(Path(config_path).read_text())
        prepare_authentication_database(config["database"]["uri"], owner_key)
    serialise_duckdb_storage()
    from tiled.commandline.main import main

    sys.argv = ["tiled", "serve", "config", config_path]
    main()
