"""A campaign on two real stations: EPICS devices from their profiles, PyLabRobot robots, wall clocks.

The beamline is two `BeamlineIOC`s and two cell-loader IOCs on loopback (the IOC is the
hardware here, so the test may use `tandem.sim`; the campaign's process may not). The
stations are described by profile files with `backend: epics`, their PV prefixes and
PyLabRobot's chatterbox robot; `tandem campaign run` runs the campaign in a process of
its own, which reports every module it imported, so that no line of the twin can hide
in the real code path.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from campaign_processes import finish, kill_group, start_campaign, wait_for_samples

from tandem.agents.records import read_records
from tandem.campaign.bundled import DEMO_FOLDER
from tandem.campaign.config import load_campaign
from tandem.campaign.epics_lab import StationConnectionError, StationRobotError
from tandem.campaign.ledger import Ledger, SampleStatus
from tandem.campaign.runner import CampaignRunner
from tandem.campaign.runner_lab import MixedStationsError
from tandem.catalog import Catalog
from tandem.child_processes import LOOPBACK, free_port
from tandem.instrument_profile_file import BUNDLED_PROFILES
from tandem.run_documents import ExitStatus
from tandem.sim.calibration import twin_calibration
from tandem.sim.instruments import INSTRUMENTS
from tandem.tiled_server import EmbeddedTiledServer

pytestmark = pytest.mark.slow

#: samples per station; the campaign's budget is both stations' together
PER_STATION = 10
STATIONS = ("saxs", "sans")
_lines = itertools.count(1)

#: runs `tandem campaign run` and writes the `tandem.sim` modules the process imported to argv[1]
_CAMPAIGN_PROCESS = """
import atexit, json, runpy, sys
out = sys.argv[1]
def imported():
    open(out, "w").write(json.dumps(sorted(m for m in sys.modules if m.startswith("tandem.sim"))))
atexit.register(imported)
sys.argv = ["tandem", *sys.argv[2:]]
runpy.run_module("tandem.cli", run_name="__main__")
"""


def _prefixes(line: int, station: str) -> tuple[str, str]:
    return f"TST:LINE{line}:{station.upper()}:", f"TST:LINE{line}:{station.upper()}:CL:"


def write_campaign(
    folder: Path, campaign_id: str, line: int, *, budget: int, robot: dict[str, object] | None = None
) -> Path:
    """The demo campaign with each station a profile file of its own: `backend: epics`, its prefixes,
    the chatterbox robot, and a calibration file per configuration (the twin's, as a facility measures it)."""
    demo = yaml.safe_load((DEMO_FOLDER / "demo.yaml").read_text())
    for station in STATIONS:
        shutil.copy(DEMO_FOLDER / f"{station}_deck.yaml", folder / f"{station}_deck.yaml")
        profile = yaml.safe_load((BUNDLED_PROFILES / f"{station}.yaml").read_text())
        name = f"{station}_line"
        station_prefix, loader_prefix = _prefixes(line, station)
        profile.update(
            name=name,
            backend="epics",
            epics={"station_prefix": station_prefix, "cell_loader_prefix": loader_prefix},
            robot=robot or {"backend": "chatterbox"},
        )
        calibration = folder / f"{name}_calibration.json"
        calibration.write_text(json.dumps({name: twin_calibration(INSTRUMENTS[station]).to_dict()}))
        for configuration in profile["configurations"].values():
            configuration["calibration"] = calibration.name
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(profile))
        spec = demo["stations"][station]
        spec.pop("probe")
        spec["instrument"] = f"{name}.yaml"
    demo.pop("twin")
    demo["id"] = campaign_id
    # the components named in the file: nothing of the twin's is needed to load it
    demo["components"] = [
        {"name": "H2O", "formula": "H2O", "density_g_per_ml": 0.997, "role": "liquid"},
        {"name": "D2O", "formula": "D2O", "density_g_per_ml": 1.104, "role": "liquid"},
        {"name": "SDS", "formula": "C12H25NaO4S", "density_g_per_ml": 1.15, "role": "solute"},
        {"name": "PPG", "formula": "C51H104O18", "density_g_per_ml": 1.005, "role": "solute"},
        {"name": "NaCl", "formula": "NaCl", "density_g_per_ml": 2.165, "role": "solute"},
    ]
    demo["agent"] = {"kind": "space_filling", "seed": 3}
    demo["stop"] = {"max_samples": budget, "max_consecutive_failures": 3}
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    return path


@pytest.fixture
def beamline(ioc_factory: object) -> Iterator[int]:
    """Two stations' beamline IOCs and cell-loader IOCs on loopback, never waiting; stopped after."""
    line = next(_lines)
    with (
        ioc_factory.serve(  # type: ignore[attr-defined]
            "tandem.sim.beamline_ioc:BeamlineIOC",
            prefix=_prefixes(line, "saxs")[0],
            options={"station": "saxs", "time_scale": 0, "seed": 11},
        ),
        ioc_factory.serve(  # type: ignore[attr-defined]
            "tandem.sim.beamline_ioc:BeamlineIOC",
            prefix=_prefixes(line, "sans")[0],
            options={"station": "sans", "time_scale": 0, "seed": 12},
        ),
        ioc_factory.serve(  # type: ignore[attr-defined]
            "tandem.sim.cell_loader_ioc:CellLoaderIOC",
            prefix=_prefixes(line, "saxs")[1],
            options={"time_scale": 0},
        ),
        ioc_factory.serve(  # type: ignore[attr-defined]
            "tandem.sim.cell_loader_ioc:CellLoaderIOC",
            prefix=_prefixes(line, "sans")[1],
            options={"time_scale": 0},
        ),
    ):
        yield line


@pytest.mark.timeout(900)
def test_a_campaign_on_two_epics_stations_records_every_run_with_its_decision(
    beamline: int, tmp_path: Path
) -> None:
    path = write_campaign(tmp_path, "epics-line", beamline, budget=len(STATIONS) * PER_STATION)
    data = tmp_path / "data"
    imported = tmp_path / "sim-modules.json"
    command = ["campaign", "run", str(path), "--data", str(data)]
    done = subprocess.run(
        [sys.executable, "-P", "-c", _CAMPAIGN_PROCESS, str(imported), *command],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the campaign's process, report included, loaded no line of the twin
    assert json.loads(imported.read_text()) == [], "the real code path imported the twin"

    with EmbeddedTiledServer(data / "tiled") as endpoint:
        client = endpoint.connect()
        ledger = Ledger.open(client, "epics-line")
        entries = ledger.entries()
        decisions = {r.decision_uid: r for r in read_records(ledger.decisions)}
        catalog = Catalog(client)
        runs = {run.uid: run for run in catalog.runs(campaign_id="epics-line", plan_name="sample_plan")}
    measured = [e for e in entries if e.status is SampleStatus.MEASURED]
    statuses = [(e.status, e.reason) for e in entries]
    assert len(measured) == len(entries) == len(STATIONS) * PER_STATION, statuses
    # the station whose sample finished first is the next: the two stations share the budget evenly
    assert Counter(e.station for e in measured) == dict.fromkeys(STATIONS, PER_STATION)
    for entry in measured:
        run = runs[entry.run_uid or ""]
        assert run.exit_status is ExitStatus.SUCCESS
        assert run.sample_uid == entry.sample_uid
        assert run.station == entry.station
        # every raw run carries the decision that chose it, and that decision is recorded
        assert run.decision_uid == entry.decision_uid
        assert decisions[entry.decision_uid].station == entry.station
        # and the calibration its station's profile names for the run's configuration
        assert run.start["calibration"] == twin_calibration(INSTRUMENTS[entry.station]).to_dict()
        # station time is the wall's: each sample took time, after the one before it on its station
        assert entry.end_s is not None
        assert entry.start_s is not None
        assert entry.end_s > entry.start_s
        assert {kind for kind, _a, _b in entry.activities} >= {"prepare", "load", "measure", "rinse"}
    report = json.loads((data / "report" / "report.json").read_text())
    assert report["samples"] == len(STATIONS) * PER_STATION
    assert report["station_hours"] > 0


@pytest.mark.timeout(300)
def test_an_unreachable_prefix_is_a_typed_error_before_any_robot_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_env: object
) -> None:
    line = next(_lines)  # no IOC serves this line
    campaign = load_campaign(write_campaign(tmp_path, "epics-unreachable", line, budget=2))

    def no_robot(*args: object, **kwargs: object) -> None:
        raise AssertionError("a robot was made before the stations answered")

    monkeypatch.setattr("tandem.campaign.epics_lab.PyLabRobotBackend", no_robot)
    runner = CampaignRunner(campaign, tmp_path / "data")
    with pytest.raises(StationConnectionError) as error:
        runner.run()
    message = str(error.value)
    assert "'saxs'" in message
    assert _prefixes(line, "saxs")[0] in message
    assert "det:" in message  # the PVs that did not answer are named
    assert not (tmp_path / "data" / "tiled").exists()  # nor was the data store started


def test_a_campaign_mixing_twin_and_epics_stations_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    path = write_campaign(tmp_path, "epics-mixed", next(_lines), budget=2)
    spec = yaml.safe_load(path.read_text())
    spec["stations"]["sans"].pop("instrument")  # the twin's SANS
    spec["stations"]["sans"]["probe"] = "neutron"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(MixedStationsError, match=r"twin \(sans\).*EPICS stations \(saxs\)"):
        CampaignRunner(load_campaign(path), tmp_path / "data")


@pytest.mark.timeout(300)
def test_a_robot_that_does_not_answer_is_a_typed_error_before_the_first_sample(
    beamline: int, tmp_path: Path
) -> None:
    nobody = free_port(LOOPBACK)  # no OT-2 listens here
    robot = {"backend": "opentrons_ot2", "options": {"host": LOOPBACK, "port": nobody}}
    campaign = load_campaign(write_campaign(tmp_path, "epics-no-robot", beamline, budget=2, robot=robot))
    with pytest.raises(StationRobotError, match=r"station 'saxs': its robot 'opentrons_ot2' did not come up"):
        CampaignRunner(campaign, tmp_path / "data").run()
    # refused before the data store started: no sample was decided, nothing was written
    assert not (tmp_path / "data" / "tiled").exists()


@pytest.mark.timeout(900)
def test_a_killed_campaign_on_epics_stations_resumes_from_its_ledger(beamline: int, tmp_path: Path) -> None:
    budget = 6
    path = write_campaign(tmp_path, "epics-resume", beamline, budget=budget)
    data = tmp_path / "data"
    first = start_campaign(path, data)
    try:
        wait_for_samples(first, data, "epics-resume", 2)
    finally:
        kill_group(first)
    second = start_campaign(path, data, resume=True)
    output = finish(second)
    assert second.returncode == 0, output

    with EmbeddedTiledServer(data / "tiled") as endpoint:
        client = endpoint.connect()
        entries = Ledger.open(client, "epics-resume").entries()
        catalog = Catalog(client)
        runs = catalog.runs(campaign_id="epics-resume", plan_name="sample_plan", exit_status="success")
    measured = [e for e in entries if e.status is SampleStatus.MEASURED]
    assert len(measured) == budget, [(e.status, e.reason) for e in entries]
    # no sample measured twice, none lost
    assert Counter(run.sample_uid for run in runs) == Counter(e.sample_uid for e in measured)
    # station time went on from the restored clocks: on each station, a sample starts after the last ended
    for station in STATIONS:
        times = [(e.start_s or 0.0, e.end_s or 0.0) for e in measured if e.station == station]
        assert all(end <= start for (_s, end), (start, _e) in itertools.pairwise(times)), times
