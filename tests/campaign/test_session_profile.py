"""A real line's session, loaded from its instrument profile: its PV prefixes, its PyLabRobot robot, its
calibration; and the typed errors that stop it before anything moves.

The line is a `BeamlineIOC` and a cell-loader IOC on loopback (the IOC is the hardware here), the
robot PyLabRobot's chatterbox; the campaign names a profile file with `backend: epics`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_line import line_prefixes, serve_line, write_line

from tandem.analysis.store import AnalysisStore
from tandem.campaign.config import Campaign, load_campaign
from tandem.campaign.epics_lab import StationConnectionError, StationRobotError
from tandem.campaign.session import open_station_session
from tandem.campaign.session_config import EpicsPrefixes, SessionConfigError
from tandem.catalog import Catalog
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.run_documents import ExitStatus
from tandem.tiled_endpoint import TiledEndpoint

pytestmark = pytest.mark.slow


@pytest.fixture
def line(ioc_factory: object) -> Iterator[EpicsPrefixes]:
    """A SAXS line's IOCs on loopback; stopped after the test, also on failure."""
    with serve_line(ioc_factory) as prefixes:
        yield prefixes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_real_line_opens_from_its_profile_with_its_robot(
    line: EpicsPrefixes, tiled_endpoint: TiledEndpoint, tmp_path: Path, unique_campaign_id: str
) -> None:
    campaign = load_campaign(write_line(tmp_path, line))
    with open_station_session(
        "saxs",
        campaign=campaign,
        sim=False,
        tiled=tiled_endpoint,
        data_directory=tmp_path / "data",
        campaign_id=unique_campaign_id,
    ) as session:
        banner = session.banner()
        assert f"station at {line.station} (profile saxs_line)" in banner
        assert f"cell loader at {line.cell_loader} (profile saxs_line)" in banner
        assert "PyLabRobot's 'chatterbox' robot" in banner
        assert "SIMULATED" not in banner
        robot = session.rig.liquid_handler.backend
        assert isinstance(robot, PyLabRobotBackend)
        ns = session.namespace()
        (uid,) = ns["RE"](ns["sample_plan"]({"SDS": 0.05}))
    # the robot was stopped with the session
    assert not robot.loop_thread.is_alive()
    client = tiled_endpoint.connect()
    run = Catalog(client).run(uid)
    assert run.exit_status is ExitStatus.SUCCESS
    assert run.station == "saxs"
    record = AnalysisStore(client).get(uid)
    assert record is not None
    assert record.ok, record.failure_reason


def test_prefixes_given_win_over_the_profiles(
    line: EpicsPrefixes, tiled_endpoint: TiledEndpoint, tmp_path: Path
) -> None:
    # the profile points at a line nobody serves; the prefixes given (flags, environment) at the IOCs
    campaign = load_campaign(write_line(tmp_path, line_prefixes()))
    with open_station_session(
        "saxs",
        campaign=campaign,
        sim=False,
        tiled=tiled_endpoint,
        data_directory=tmp_path / "data",
        station_prefix=line.station,
        cell_loader_prefix=line.cell_loader,
    ) as session:
        assert f"station at {line.station} (given)" in session.banner()
        assert session.rig.cell_loader.prefix == line.cell_loader


def test_an_unreachable_prefix_names_its_pvs_before_the_robot_is_made(
    ca_env: object, tiled_endpoint: TiledEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = line_prefixes()  # no IOC serves it
    campaign = load_campaign(write_line(tmp_path, nowhere))

    def no_robot(*args: object, **kwargs: object) -> None:
        raise AssertionError("a robot was made before the line answered")

    monkeypatch.setattr("tandem.campaign.epics_lab.PyLabRobotBackend", no_robot)
    with (
        pytest.raises(StationConnectionError) as error,
        open_station_session(
            "saxs", campaign=campaign, sim=False, tiled=tiled_endpoint, data_directory=tmp_path / "data"
        ),
    ):
        pass  # pragma: no cover
    message = str(error.value)
    assert nowhere.station in message
    assert f"{nowhere.station}det:Acquire" in message  # the PVs that did not answer are named


def _assert_the_ot2_session_refused(
    line: EpicsPrefixes, tiled_endpoint: TiledEndpoint, tmp_path: Path, match: str
) -> None:
    """A session on the line whose profile names an OT-2 where nothing listens fails with `match`."""
    robot = {"backend": "opentrons_ot2", "options": {"host": "127.0.0.1", "port": _free_port()}}
    campaign = load_campaign(write_line(tmp_path, line, robot))
    with (
        pytest.raises(StationRobotError, match=match),
        open_station_session(
            "saxs", campaign=campaign, sim=False, tiled=tiled_endpoint, data_directory=tmp_path / "data"
        ),
    ):
        pass  # pragma: no cover


def test_an_unreachable_robot_is_a_typed_error(
    line: EpicsPrefixes, tiled_endpoint: TiledEndpoint, tmp_path: Path
) -> None:
    # an OT-2 at a loopback port where nothing listens
    _assert_the_ot2_session_refused(line, tiled_endpoint, tmp_path, r"'opentrons_ot2' did not come up")


def test_a_robot_backend_not_installed_says_what_to_install(
    line: EpicsPrefixes, tiled_endpoint: TiledEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what PyLabRobot's OT-2 backend does without opentrons-http-api-client
    monkeypatch.setattr("pylabrobot.liquid_handling.backends.opentrons_backend.USE_OT", False)
    monkeypatch.setattr(
        "pylabrobot.liquid_handling.backends.opentrons_backend._OT_IMPORT_ERROR",
        ImportError("No module named 'ot_api'"),
        raising=False,
    )
    _assert_the_ot2_session_refused(line, tiled_endpoint, tmp_path, r"install tandem\[ot2\]")


def test_a_real_line_is_refused_on_the_twin(tmp_path: Path) -> None:
    campaign: Campaign = load_campaign(write_line(tmp_path, line_prefixes()))
    with (
        pytest.raises(SessionConfigError, match=r"backend: epics.*--epics"),
        open_station_session("saxs", campaign=campaign, sim=True, data_directory=tmp_path / "data"),
    ):
        pass  # pragma: no cover
    assert not (tmp_path / "data").exists()  # nothing was started


def test_a_session_module_loads_no_line_of_the_twin() -> None:
    code = "import sys, tandem.campaign.session; print(sorted(m for m in sys.modules if 'tandem.sim' in m))"
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
