"""Fixtures that start a real Tiled server for a test and stop it afterwards.

`tiled_server` is one server per test session (starting one costs seconds: it is a
separate process that imports the whole Tiled server stack). Tests share it, so a test
must find its own runs by something unique to it — a fresh `campaign_id` or sample uid
(`unique_campaign_id` gives one) — never by counting everything in the catalog.

The server runs with `die_with_parent`, so not even a killed pytest leaves it behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from tiled.client.container import Container

from tandem.postgres_cluster import ThrowawayPostgres
from tandem.tiled_directory import SqlDatabases
from tandem.tiled_endpoint import TiledEndpoint
from tandem.tiled_server import EmbeddedTiledServer


@pytest.fixture(scope="session")
def tiled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTiledServer]:
    """A running embedded Tiled server (API key on) in a temporary directory, for the session."""
    server = EmbeddedTiledServer(tmp_path_factory.mktemp("tiled"), die_with_parent=True)
    with server:
        yield server


@pytest.fixture
def tiled_endpoint(tiled_server: EmbeddedTiledServer) -> TiledEndpoint:
    """URL and API key of the session's Tiled server."""
    return tiled_server.endpoint


@pytest.fixture
def tiled_client(tiled_endpoint: TiledEndpoint) -> Container:
    """A fresh Tiled client on the root of the session's catalog."""
    return tiled_endpoint.connect()


@pytest.fixture
def unique_campaign_id() -> str:
    """A campaign id no other test uses, to find this test's runs in the shared catalog."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway PostgreSQL cluster on loopback for the tests of one module, removed after them."""
    with ThrowawayPostgres() as cluster:
        yield cluster


def fresh_databases(cluster: ThrowawayPostgres, name: str) -> SqlDatabases:
    """A catalog and a tables database of their own for one test, in `cluster`."""
    cluster.create_database(f"{name}_catalog")
    cluster.create_database(f"{name}_tables")
    return SqlDatabases(cluster.uri(f"{name}_catalog"), cluster.uri(f"{name}_tables"))
