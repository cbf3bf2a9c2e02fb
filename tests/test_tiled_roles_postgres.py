"""Keys with scopes, one per role, on a store whose catalog and tables are in PostgreSQL.

The access policy finds a node's path with a query on the catalog; here that catalog is
PostgreSQL (asyncpg), while the authentication database stays SQLite in the served directory.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fixtures_tiled import fresh_databases

from tandem.catalog_layout import ANALYSED, RAW
from tandem.postgres_cluster import ThrowawayPostgres
from tandem.tiled_directory import AUTHN_FILE, CATALOG_FILE
from tandem.tiled_endpoint import TiledEndpoint
from tandem.tiled_keys import issue_key
from tandem.tiled_roles import TandemRole, WriteRefusedError
from tandem.tiled_server import EmbeddedTiledServer

pytestmark = pytest.mark.slow


def test_roles_on_a_postgresql_catalog(postgres: ThrowawayPostgres, tmp_path: Path) -> None:
    databases = fresh_databases(postgres, "roles")
    store = tmp_path / "store"
    with EmbeddedTiledServer(store, databases=databases, roles=True, die_with_parent=True) as endpoint:
        key = issue_key(endpoint.connect(), TandemRole.STATION)
        station = TiledEndpoint(endpoint.url, key.secret).connect()
        run_uid = uuid.uuid4().hex
        station[RAW].create_container(run_uid, metadata={"start": {"uid": run_uid}})
        with pytest.raises(WriteRefusedError, match="only the key of the analysis or admin role writes"):
            station[ANALYSED].create_container(run_uid)
        owner = endpoint.connect()
        assert run_uid in list(owner[RAW])
        assert run_uid not in list(owner[ANALYSED])
    assert (store / AUTHN_FILE).exists()
    assert not (store / CATALOG_FILE).exists()
