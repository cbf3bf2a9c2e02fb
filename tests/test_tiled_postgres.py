"""Tiled on PostgreSQL, for real: a throwaway cluster on loopback holds the catalog and the tables.

The cluster (`tandem.postgres_cluster.ThrowawayPostgres`) is Debian's PostgreSQL in a folder of its
own, started on a free 127.0.0.1 port and removed after the test, also when the test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.plans import count
from fixtures_tiled import fresh_databases
from ophyd.sim import det

from tandem.catalog_layout import raw_runs_node
from tandem.child_processes import pid_alive
from tandem.postgres_cluster import PostgresAddress, ThrowawayPostgres
from tandem.run_writer import subscribe_tiled_writer
from tandem.tiled_directory import CATALOG_FILE, CONFIG_FILE, TABLES_FILE, SqlDatabases
from tandem.tiled_endpoint import API_KEY_ENV, URI_ENV, TiledServerError, attach
from tandem.tiled_server import EmbeddedTiledServer

pytestmark = pytest.mark.slow


def test_runs_written_to_tiled_on_postgresql_are_there_after_a_restart(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    databases = fresh_databases(postgres, "restart")
    store = tmp_path / "store"
    with EmbeddedTiledServer(store, databases=databases, die_with_parent=True) as endpoint:
        RE = RunEngine({}, context_managers=[])
        subscribe_tiled_writer(RE, endpoint.connect())
        (uid,) = RE(count([det], num=3), campaign_id="pg-1")
    # nothing of the catalog or the tables went into the directory: they are in PostgreSQL
    assert not (store / CATALOG_FILE).exists()
    assert not (store / TABLES_FILE).exists()
    assert (store / CONFIG_FILE).stat().st_mode & 0o077 == 0, "the config holds the database password"

    with EmbeddedTiledServer(store, databases=databases, die_with_parent=True) as endpoint:
        run = raw_runs_node(endpoint.connect())[uid]
        assert run.metadata["start"]["campaign_id"] == "pg-1"
        rows = run["primary"].read()
        np.testing.assert_allclose(np.asarray(rows["det"]), np.ones(3), rtol=0.5)


def test_the_cluster_is_gone_after_its_block_also_when_the_block_fails() -> None:
    seen: list[tuple[Path, int]] = []

    def fail_inside() -> None:
        with ThrowawayPostgres() as cluster:
            assert cluster.folder is not None
            assert cluster.pid is not None
            assert pid_alive(cluster.pid)
            seen.append((cluster.folder, cluster.pid))
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        fail_inside()
    ((folder, pid),) = seen
    assert not pid_alive(pid)
    assert not folder.exists()


def test_the_cluster_takes_no_login_without_its_password(postgres: ThrowawayPostgres) -> None:
    import asyncio

    import asyncpg

    assert postgres.address is not None
    wrong = PostgresAddress(postgres.address.host, postgres.address.port, postgres.address.user, "x")

    async def login(uri: str) -> None:
        connection = await asyncpg.connect(uri)
        await connection.close()

    asyncio.run(login(postgres.uri("postgres")))
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(login(wrong.uri("postgres")))


@pytest.mark.parametrize("uri", ["sqlite:///catalog.db", "duckdb:///t.duckdb", "mysql://a@b/c"])
def test_only_postgresql_databases_are_taken(uri: str) -> None:
    with pytest.raises(TiledServerError, match="postgresql://"):
        SqlDatabases(uri, "postgresql://u:p@127.0.0.1:5432/t")


def test_the_cluster_never_runs_postgres_as_root(postgres: ThrowawayPostgres) -> None:
    assert postgres.pid is not None
    assert os.stat(f"/proc/{postgres.pid}").st_uid != 0


def test_tandem_data_serve_keeps_its_catalog_in_postgresql(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    databases = fresh_databases(postgres, "serve")
    env = {
        **os.environ,
        # through the environment, as the help says: a password on the command line is public
        "TANDEM_TILED_CATALOG_DB": databases.catalog_uri,
        "TANDEM_TILED_TABLES_DB": databases.tables_uri,
    }
    tandem = Path(sys.executable).with_name("tandem")
    command = [str(tandem), "data", "serve", "--directory", str(tmp_path / "store")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        first = process.stdout.readline()
        for line in process.stdout:
            if line.strip().startswith("export "):
                name, value = line.strip().removeprefix("export ").split("=", 1)
                exports[name] = value
            if "Ctrl-C" in line:
                break
        assert "PostgreSQL" in first
        client = attach(exports[URI_ENV], exports[API_KEY_ENV]).connect()
        client.create_container("served", metadata={"on": "postgresql"})
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (tmp_path / "store" / CATALOG_FILE).exists()
    with EmbeddedTiledServer(tmp_path / "store", databases=databases, die_with_parent=True) as endpoint:
        assert endpoint.connect()["served"].metadata["on"] == "postgresql"


def test_tandem_data_serve_wants_both_databases_or_neither(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tandem.cli import app

    result = CliRunner().invoke(
        app,
        ["data", "serve", "--directory", str(tmp_path / "store"), "--catalog-db", "postgresql://a@b/c"],
    )
    assert result.exit_code == 1
    assert "both --catalog-db and --tables-db" in result.output
    assert not (tmp_path / "store").exists()
