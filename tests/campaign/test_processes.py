"""Queue-server station processes: Redis, the RE Manager with tandem's startup, permissions, the CLI."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.comm_base import RequestFailedError, RequestTimeoutError
from typer.testing import CliRunner

from tandem.campaign.process_groups import ProcessError
from tandem.campaign.processes import Listen, start_station, stop_station
from tandem.campaign.redis_service import ensure_redis, parse_address, redis_ping, start_redis, stop_redis
from tandem.campaign.station_state import (
    AGENT_GROUP,
    InvalidStationRequestError,
    StationProcess,
    StationRegistry,
    check_station_id,
    locked_state,
    manager_api,
    read_state,
)
from tandem.child_processes import free_port, pid_alive, port_is_free
from tandem.cli import app
from tandem.tiled_endpoint import TiledEndpoint

runner = CliRunner()


@pytest.mark.parametrize("text", ["", "host:", ":6379", "host:port", "host:0", "host:70000"])
def test_malformed_redis_addresses_are_refused(text: str) -> None:
    with pytest.raises(InvalidStationRequestError, match="HOST:PORT"):
        parse_address(text)


def test_redis_addresses_parse() -> None:
    assert parse_address("127.0.0.1:6380") == ("127.0.0.1", 6380)
    assert parse_address("redis.example.org") == ("redis.example.org", 6379)


@pytest.mark.parametrize("station", ["", "SAXS", "1saxs", "sa xs", "saxs;rm", "x" * 40])
def test_bad_station_ids_are_refused(station: str) -> None:
    with pytest.raises(InvalidStationRequestError, match="station id"):
        check_station_id(station)


def test_redis_starts_on_a_free_port_and_stops(tmp_path: Path) -> None:
    redis = start_redis(tmp_path / "redis")
    try:
        assert redis.managed
        assert redis_ping(redis.host, redis.port)
    finally:
        stop_redis(redis)
    assert not redis_ping(redis.host, redis.port)
    assert not pid_alive(redis.pid)


def test_a_redis_address_nobody_answers_is_refused(tmp_path: Path) -> None:
    state = StationRegistry()
    with pytest.raises(ProcessError, match="no Redis answers"):
        ensure_redis(state, tmp_path, f"127.0.0.1:{free_port()}")
    assert state.redis is None


def test_the_state_file_round_trips_and_survives_garbage(tmp_path: Path) -> None:
    process = StationProcess(
        "saxs", 123, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "127.0.0.1:3", "p", "sim", "/d"
    )
    with locked_state(tmp_path) as state:
        state.stations["saxs"] = process
    assert read_state(tmp_path).stations == {"saxs": process}
    (tmp_path / "stations.json").write_text("{not json")
    assert read_state(tmp_path) == StationRegistry()


def test_status_and_stop_with_nothing_running(tmp_path: Path) -> None:
    result = runner.invoke(app, ["station", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "no station is running" in result.output
    result = runner.invoke(app, ["station", "stop", "saxs", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "not running: saxs" in result.output


def test_a_station_the_campaign_lacks_fails_with_the_managers_log_and_leaves_nothing(
    tmp_path: Path, tiled_endpoint: TiledEndpoint
) -> None:
    with pytest.raises(ProcessError, match="startup script") as error:
        start_station("xrd", state_dir=tmp_path, env=tiled_endpoint.environ(), timeout_s=240)
    assert "not in campaign" in str(error.value)  # the worker's own explanation, from the log
    assert read_state(tmp_path).stations == {}
    assert read_state(tmp_path).redis is None  # the Redis started for it is stopped again


@pytest.fixture(scope="module")
def saxs(tmp_path_factory: pytest.TempPathFactory, tiled_server: object) -> Iterator[StationProcess]:
    state_dir = tmp_path_factory.mktemp("stations")
    endpoint: TiledEndpoint = tiled_server.endpoint  # type: ignore[attr-defined]
    env = {**endpoint.environ(), "TANDEM_DATA": str(state_dir / "data")}
    process = start_station("saxs", state_dir=state_dir, env=env, timeout_s=240)
    try:
        yield process
    finally:
        stop_station("saxs", state_dir=state_dir)
        assert not pid_alive(process.pid)


@pytest.mark.slow
def test_the_agent_group_may_queue_the_sample_plan_with_this_stations_devices_only(
    saxs: StationProcess,
) -> None:
    api = saxs.api(user_group=AGENT_GROUP)
    try:
        assert list(api.plans_allowed()["plans_allowed"]) == ["sample_plan"]
        devices = ["saxs", "saxs_liquid_handler", "saxs_cell_loader"]
        refused = [
            BPlan("measure_sample", "saxs", 1.0),  # a plan for scientists, not for the agent
            BPlan("sample_plan", "sans", "saxs_liquid_handler", "saxs_cell_loader", {"SDS": 0.05}, 1.0),
            BPlan("sample_plan", *devices, "not a composition", 1.0),
            BPlan("sample_plan", *devices, {"SDS": 0.05}, "long"),
        ]
        for item in refused:
            with pytest.raises(RequestFailedError, match="validation failed"):
                api.item_add(item)
        api.queue_autostart(False)
        added = api.item_add(
            BPlan("sample_plan", *devices, {"SDS": 0.05}, 1.0, decision_uid="d", sample_uid="s")
        )
        assert added["success"]
        assert api.queue_get()["items"][0]["kwargs"]["decision_uid"] == "d"
        api.queue_clear()
    finally:
        api.close()
    admin = saxs.api()
    try:
        assert {"sample_plan", "measure_sample", "rinse_cell"} <= set(admin.plans_allowed()["plans_allowed"])
    finally:
        admin.close()


@pytest.mark.slow
def test_the_cli_reports_the_running_station(saxs: StationProcess) -> None:
    state_dir = str(Path(saxs.directory).parent)
    result = runner.invoke(app, ["station", "status", "--state-dir", state_dir])
    assert result.exit_code == 0, result.output
    assert "saxs: idle, environment open" in result.output
    assert saxs.control_addr in result.output
    assert f"pid {saxs.pid}" in result.output
    assert os.path.exists(saxs.log_path)


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ({"host": "saxs.example.org"}, "an IP address of this host"),
        ({"control_port": 70000}, "control port must be 0"),
        ({"control_port": 60615, "info_port": 60615}, "must differ"),
    ],
)
def test_bad_listen_addresses_are_refused(listen: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidStationRequestError, match=message):
        Listen(**listen)  # type: ignore[arg-type]


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InvalidStationRequestError, match=f"port {port} on 127.0.0.1 is in use"):
            start_station("saxs", state_dir=tmp_path, listen=Listen(control_port=port))
    state = read_state(tmp_path)
    assert state.stations == {}
    assert state.redis is None  # no Redis was started for it


@pytest.mark.slow
def test_a_station_at_given_ports_with_an_encrypted_control_channel(
    tmp_path: Path, tiled_endpoint: TiledEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As at two sites: the station on ports its agent is told, answering only clients with its public key."""
    from bluesky_queueserver.manager.comms import generate_zmq_keys

    public, private = generate_zmq_keys()
    # the station's host holds the private key: start, status and stop there derive the public one
    monkeypatch.setenv("QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER", private)
    monkeypatch.delenv("QSERVER_ZMQ_PUBLIC_KEY", raising=False)
    control, info = free_port(), free_port()
    process = start_station(
        "saxs",
        state_dir=tmp_path,
        env=tiled_endpoint.environ(),
        listen=Listen("127.0.0.1", control, info),
        open_environment=False,
        timeout_s=120,
    )
    try:
        assert (process.control_addr, process.info_addr) == (
            f"tcp://127.0.0.1:{control}",
            f"tcp://127.0.0.1:{info}",
        )
        # an agent on another host is given the public key
        monkeypatch.delenv("QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER")
        monkeypatch.setenv("QSERVER_ZMQ_PUBLIC_KEY", public)
        api = manager_api(process.control_addr, timeout_s=5.0)
        try:
            assert api.status()["manager_state"] == "idle"
        finally:
            api.close()
        # a client without it gets no answer
        monkeypatch.delenv("QSERVER_ZMQ_PUBLIC_KEY")
        api = manager_api(process.control_addr, timeout_s=1.0)
        try:
            with pytest.raises(RequestTimeoutError):
                api.status()
        finally:
            api.close()
    finally:
        monkeypatch.setenv("QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER", private)
        stop_station("saxs", state_dir=tmp_path)
    assert not pid_alive(process.pid)


def test_a_port_a_server_just_left_is_free_and_one_listened_on_is_not() -> None:
    """A port in TIME_WAIT after its server (binding as 0MQ and uvicorn do, with SO_REUSEADDR) closed a
    connection first can be listened on again at once; one with a listener cannot."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: its port enters TIME_WAIT
            client.recv(1)
    assert port_is_free("127.0.0.1", port)


@pytest.mark.slow
def test_a_relative_state_folder_is_the_one_in_the_callers_folder(
    tmp_path: Path, tiled_endpoint: TiledEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RE Manager runs in a folder of its own: a relative state folder meant somewhere else to it."""
    monkeypatch.chdir(tmp_path)
    process = start_station(
        "saxs", state_dir=Path("state"), env=tiled_endpoint.environ(), open_environment=False, timeout_s=120
    )
    try:
        assert Path(process.directory) == tmp_path / "state" / "saxs"
        assert read_state(tmp_path / "state").stations["saxs"].pid == process.pid
    finally:
        stop_station("saxs", state_dir=tmp_path / "state")
    assert not pid_alive(process.pid)
