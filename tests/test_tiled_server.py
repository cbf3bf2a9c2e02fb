"""The embedded Tiled server: a real process, API key enforced, data kept across restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from tandem.child_processes import free_port
from tandem.errors import TandemError
from tandem.tiled_directory import find_running_server, prepare_catalog
from tandem.tiled_endpoint import (
    API_KEY_ENV,
    URI_ENV,
    InvalidTiledSettingsError,
    TiledAuthenticationError,
    TiledEndpoint,
    TiledServerError,
    TiledSettings,
    attach,
    generate_api_key,
)
from tandem.tiled_process import serialise_duckdb_storage
from tandem.tiled_server import EmbeddedTiledServer, tiled_service


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it has exited if /proc says so.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" in status.read_text()


def test_key_is_required(tiled_endpoint: TiledEndpoint) -> None:
    url = f"{tiled_endpoint.api_uri}/metadata/"
    with httpx.Client(trust_env=False) as http:
        assert http.get(url).status_code == 401
        assert http.get(url, headers={"Authorization": "Apikey wrongkey123"}).status_code == 401
        answer = http.get(url, headers={"Authorization": f"Apikey {tiled_endpoint.api_key}"})
        assert answer.status_code == 200
    # writing needs the key as much as reading does
    with httpx.Client(trust_env=False) as http:
        refused = http.post(
            f"{tiled_endpoint.api_uri}/metadata/",
            json={"data": {"attributes": {"structure_family": "container"}}},
        )
    assert refused.status_code == 401


def test_attach_checks_the_key(tiled_endpoint: TiledEndpoint) -> None:
    assert attach(tiled_endpoint.url + "/api/v1/", tiled_endpoint.api_key) == tiled_endpoint
    with pytest.raises(TiledAuthenticationError, match="refuses the API key"):
        attach(tiled_endpoint.url, generate_api_key())


def test_attach_to_nothing_fails_with_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(TiledServerError, match="no Tiled server answers"):
        attach(f"http://127.0.0.1:{port}", generate_api_key(), timeout_s=0.2)


def test_tiled_service_attaches_from_the_environment(
    tiled_endpoint: TiledEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in tiled_endpoint.environ().items():
        monkeypatch.setenv(name, value)
    with tiled_service() as endpoint:
        assert endpoint == tiled_endpoint
        endpoint.connect().create_container(metadata={"from": "attached process"})
    # attaching does not stop a server it did not start
    assert tiled_endpoint.is_healthy()


@pytest.mark.slow
def test_the_server_keeps_its_data_and_key_across_a_restart(tmp_path: Path) -> None:
    frame = np.arange(12, dtype="u4").reshape(3, 4)
    with EmbeddedTiledServer(tmp_path / "store", die_with_parent=True) as first:
        client = first.connect()
        node = client.create_container("campaign", metadata={"campaign_id": "c-7"})
        node.write_array(frame, key="frame")
        assert find_running_server(tmp_path / "store") == first
    assert find_running_server(tmp_path / "store") is None

    server = EmbeddedTiledServer(tmp_path / "store", die_with_parent=True)
    with server as second:
        assert second.api_key == first.api_key, "clients keep working after a restart"
        again = second.connect()["campaign"]
        assert again.metadata["campaign_id"] == "c-7"
        np.testing.assert_array_equal(again["frame"].read(), frame)
        pid = server.pid
    assert pid is not None
    assert _gone(pid)
    assert not server.is_running


@pytest.mark.slow
def test_a_failure_inside_the_block_still_stops_the_server(tmp_path: Path) -> None:
    server = EmbeddedTiledServer(tmp_path, die_with_parent=True)
    pids: list[int | None] = []

    def fail_while_serving() -> None:
        with server:
            pids.append(server.pid)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_while_serving()
    (pid,) = pids
    assert pid is not None
    assert _gone(pid)
    with pytest.raises(TiledServerError, match="not running"):
        _ = server.endpoint


def test_a_second_server_on_the_same_directory_is_refused(tiled_server: EmbeddedTiledServer) -> None:
    with pytest.raises(TiledServerError, match="already serves"):
        EmbeddedTiledServer(tiled_server.directory).start()
    assert tiled_server.is_running


def test_an_occupied_port_is_reported(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = EmbeddedTiledServer(tmp_path, port=port, die_with_parent=True)
        with pytest.raises(TiledServerError, match=f"port {port}"):
            server.start()
    assert not server.is_running


@pytest.mark.slow
def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    (tmp_path / "catalog.db").write_bytes(b"this is not a SQLite database" * 100)
    server = EmbeddedTiledServer(tmp_path, die_with_parent=True)
    with pytest.raises(TiledServerError, match="cannot be opened as a SQLite database"):
        server.start()
    assert not server.is_running


def test_the_key_file_is_private(tiled_server: EmbeddedTiledServer) -> None:
    mode = (tiled_server.directory / "api_key").stat().st_mode & 0o777
    assert mode == 0o600


@pytest.mark.parametrize("key", ["", "has space", "dash-ed", "ümlaut"])
def test_bad_api_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidTiledSettingsError, match="letters and digits"):
        EmbeddedTiledServer(tmp_path, api_key=key)
    with pytest.raises(ValidationError):
        TiledSettings(uri="http://127.0.0.1:1", api_key=SecretStr(key))


def test_bad_server_arguments_are_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(InvalidTiledSettingsError, match="not a folder"):
        EmbeddedTiledServer(a_file)
    with pytest.raises(InvalidTiledSettingsError, match="port"):
        EmbeddedTiledServer(tmp_path, port=70000)
    with pytest.raises(InvalidTiledSettingsError, match="timeouts"):
        EmbeddedTiledServer(tmp_path, startup_timeout_s=0)
    assert list(tmp_path.iterdir()) == [a_file], "refusing changes nothing"


@pytest.mark.parametrize("uri", ["127.0.0.1:8000", "ftp://host/", "http://", "not a uri"])
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValidationError, match="http://HOST:PORT"):
        TiledSettings(uri=uri)


def test_settings_normalise_the_uri_and_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_api_key()
    monkeypatch.setenv(URI_ENV, "http://127.0.0.1:8000/api/v1/")
    monkeypatch.setenv(API_KEY_ENV, key)
    settings = TiledSettings()
    assert settings.uri == "http://127.0.0.1:8000"
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == key
    assert key not in repr(settings)
    assert key not in repr(TiledEndpoint("http://127.0.0.1:8000", key))


def test_tiled_service_needs_somewhere_to_go(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (URI_ENV, API_KEY_ENV, "TANDEM_TILED_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidTiledSettingsError, match="no data store configured"), tiled_service():
        pass
    with (
        pytest.raises(InvalidTiledSettingsError, match="without an API key"),
        tiled_service(TiledSettings(uri="http://127.0.0.1:1")),
    ):
        pass


def test_errors_are_tandem_errors() -> None:
    assert issubclass(TiledServerError, TandemError)
    assert issubclass(TiledAuthenticationError, TiledServerError)
    assert issubclass(InvalidTiledSettingsError, ValueError)


@pytest.mark.slow
def test_tandem_serve_prints_how_to_attach_and_stops_cleanly(tmp_path: Path) -> None:
    tandem = Path(sys.executable).with_name("tandem")
    command = [str(tandem), "data", "serve", "--directory", str(tmp_path / "store")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        lines: dict[str, str] = {}
        for line in process.stdout:
            if "=" in line and line.strip().startswith("export "):
                name, value = line.strip().removeprefix("export ").split("=", 1)
                lines[name] = value
            if "Ctrl-C" in line:
                break
        endpoint = attach(lines[URI_ENV], lines[API_KEY_ENV])
        running = find_running_server(tmp_path / "store")
        assert running == endpoint
        server_pid = json.loads((tmp_path / "store" / "server.json").read_text())["pid"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert "stopping the Tiled server" in process.stdout.read()
        assert _gone(server_pid)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_tandem_serve_refuses_a_bad_key_before_starting(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tandem.cli import app

    result = CliRunner().invoke(
        app, ["data", "serve", "--directory", str(tmp_path), "--api-key", "not-a-key!"]
    )
    assert result.exit_code == 1
    assert "letters and digits" in result.output
    assert list(tmp_path.iterdir()) == []


@given(
    host=st.sampled_from(["127.0.0.1", "localhost", "tiled.example.org"]),
    port=st.integers(1, 65535),
    suffix=st.sampled_from(["", "/", "/api/v1", "/api/v1/", "/api/v1?api_key=abc"]),
    scheme=st.sampled_from(["http", "https"]),
)
def test_any_spelling_of_a_server_uri_gives_one_base_url(
    host: str, port: int, suffix: str, scheme: str
) -> None:
    settings = TiledSettings(uri=f"{scheme}://{host}:{port}{suffix}")
    assert settings.uri == f"{scheme}://{host}:{port}"
    endpoint = TiledEndpoint(settings.uri, "key1")
    assert endpoint.api_uri == f"{scheme}://{host}:{port}/api/v1"
    assert TiledSettings(uri=endpoint.api_uri).uri == settings.uri


# --- several writers at once (issue 7: the embedded store under a campaign of processes) -------


def test_the_catalog_is_in_write_ahead_log_mode(tiled_server: EmbeddedTiledServer) -> None:
    # Tiled's own request for WAL comes inside a transaction, where SQLite ignores it
    with sqlite3.connect(tiled_server.directory / "catalog.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_prepare_catalog_switches_an_old_catalog_to_wal_and_tells_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    assert prepare_catalog(path) is False, "an empty file is not an initialised catalog"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
    assert prepare_catalog(path) is True
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_duckdb_table_storage_is_lent_to_one_thread_at_a_time(tmp_path: Path) -> None:
    from tiled.storage import SQLStorage, parse_storage

    serialise_duckdb_storage()
    serialise_duckdb_storage()  # idempotent: a second call does not wrap the first
    duck = parse_storage(f"duckdb:///{tmp_path / 'tables.duckdb'}")
    lite = parse_storage(f"sqlite:///{tmp_path / 'tables.sqlite'}")
    assert isinstance(duck, SQLStorage)
    assert isinstance(lite, SQLStorage)
    try:
        first = duck.connect()
        second_in = threading.Event()

        def second() -> None:
            with duck.connect():
                second_in.set()

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(second)
            assert not second_in.wait(0.5), "a second thread got the DuckDB connection while it was lent"
            first.close()
            waiting.result(timeout=30)
        assert second_in.is_set()
        # SQLite and PostgreSQL stores keep Tiled's pool of several connections
        assert lite._connection_pool.size() == 5
    finally:
        duck.dispose()
        lite.dispose()


@pytest.mark.slow
def test_concurrent_table_writers_and_readers_leave_the_server_whole(tiled_endpoint: TiledEndpoint) -> None:
    """Appends and reads from many threads at once, as RunEngines and the analysis worker make them.

    With Tiled's shared DuckDB connection this failed transactions and crashed the server.
    """
    schema = pa.schema([("seq_num", pa.int64()), ("value", pa.float64()), ("steps", pa.list_(pa.float64()))])
    parent = tiled_endpoint.connect().create_container(f"concurrent-{os.getpid()}-{threading.get_ident()}")
    n_tables, n_appends = 6, 15

    def write(i: int) -> None:
        client = tiled_endpoint.connect()  # a process each, in effect: its own connection pool
        table = client[parent.item["id"]].create_appendable_table(schema, key=f"t{i}")
        for j in range(n_appends):
            rows = pa.table({"seq_num": [j], "value": [i + j / 100], "steps": [[1.0, 2.0]]}, schema=schema)
            table.append_partition(0, rows)
            table.read()  # a reader between every two writes

    with ThreadPoolExecutor(n_tables) as pool:
        for done in [pool.submit(write, i) for i in range(n_tables)]:
            done.result()
    assert tiled_endpoint.is_healthy()
    for i in range(n_tables):
        frame = parent[f"t{i}"].read()
        assert list(frame["seq_num"]) == list(range(n_appends))


# --- outages (issue 13: the store is killed under a campaign) ----------------------------------


@pytest.mark.slow
def test_a_killed_server_is_noticed_reaped_and_restarted_for_the_clients_it_had(tmp_path: Path) -> None:
    server = EmbeddedTiledServer(tmp_path / "store", die_with_parent=True)
    with server as endpoint:
        client = endpoint.connect()
        client.create_container("before", metadata={"n": 1})
        pid = server.pid
        assert pid is not None
        assert server.alive()
        assert server.answers()
        os.kill(pid, signal.SIGKILL)
        # /proc shows a multi-threaded process as a zombie while its threads still exit; it can be
        # reaped only after: alive() says dead once it has reaped it
        deadline = time.monotonic() + 30
        while server.alive():
            assert time.monotonic() < deadline, "the killed server is still alive"
            time.sleep(0.01)
        assert not server.answers()
        # reaped: no zombie left (the pid itself may already belong to another process on a busy machine)
        status = Path(f"/proc/{pid}/status")
        assert not (status.exists() and "\nState:\tZ" in status.read_text()), "noticing the death reaped it"
        assert server.exit_status == -signal.SIGKILL
        # restarted from a thread that then ends: the parent-death signal must not follow that thread
        restarter = threading.Thread(target=server.restart)
        restarter.start()
        restarter.join()
        assert server.answers()
        assert server.endpoint == endpoint, "same port and key"
        assert client["before"].metadata["n"] == 1, "a client made before the kill works again"
        client.create_container("after")
        assert server.restarts == 1
    with pytest.raises(TiledServerError, match="stopped by its owner"):
        server.restart()
