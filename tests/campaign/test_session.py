"""The station session in-process: twin and EPICS backends over CA to caproto IOCs, a real Tiled server."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tiled.client.container import Container

from tandem.analysis.store import AnalysisStore
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.config import Campaign, load_campaign
from tandem.campaign.session import StationSession, open_station_session
from tandem.campaign.session_config import EpicsPrefixes, SessionConfigError, SessionSettings
from tandem.campaign.session_curves import describe
from tandem.catalog import Catalog
from tandem.errors import TandemError
from tandem.run_documents import ExitStatus
from tandem.tiled_endpoint import TiledEndpoint

pytestmark = pytest.mark.slow

DEMO = DEMO_CAMPAIGN
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def demo() -> Campaign:
    return load_campaign(DEMO)


@pytest.fixture
def twin_sessions(
    demo: Campaign,
    ioc_factory: object,
    tiled_endpoint: TiledEndpoint,
    tmp_path: Path,
    unique_campaign_id: str,
) -> Iterator[Callable[..., StationSession]]:
    """Factory of SAXS sessions on the twin; each cell loader is an IOC of the test session's CA
    environment. Everything is stopped when the test ends."""
    with contextlib.ExitStack() as stack:

        def make(*, interactive: bool = False) -> StationSession:
            prefix = f"TST:SES{next(_prefixes)}:CL:"
            stack.enter_context(
                ioc_factory.serve(  # type: ignore[attr-defined]
                    "tandem.sim.cell_loader_ioc:CellLoaderIOC", prefix=prefix, options={"time_scale": 0}
                )
            )
            return stack.enter_context(
                open_station_session(
                    "saxs",
                    campaign=demo,
                    tiled=tiled_endpoint,
                    data_directory=tmp_path,
                    cell_loader_prefix=prefix,
                    campaign_id=unique_campaign_id,
                    interactive=interactive,
                )
            )

        yield make


@pytest.fixture
def twin_session(twin_sessions: Callable[..., StationSession]) -> StationSession:
    """A SAXS session on the twin, as the campaign runner and the queue server open one."""
    return twin_sessions()


def test_namespace_and_banner_say_what_is_loaded(twin_session: StationSession) -> None:
    ns = twin_session.namespace()
    for name in ("RE", "saxs", "saxs_liquid_handler", "saxs_cell_loader", "catalog", "tiled", "plot_curve"):
        assert name in ns, name
    for plan in ("prepare", "load", "rinse", "measure_sample", "measure_transmission", "measure_empty_cell"):
        assert callable(ns[plan]), plan
    assert ns["saxs"] is twin_session.rig.station
    banner = twin_session.banner()
    assert "station saxs" in banner
    assert "simulated" in banner
    assert twin_session.endpoint.url in banner
    assert "saxs_cell_loader" in banner
    assert "sample_plan()" in banner


def test_sample_plan_is_written_to_tiled_and_analysed(
    twin_session: StationSession, tiled_client: Container, unique_campaign_id: str
) -> None:
    ns = twin_session.namespace()
    (uid,) = ns["RE"](ns["sample_plan"]({"SDS": 0.05, "NaCl": 0.01}))

    run = Catalog(tiled_client).run(uid)
    assert run.exit_status is ExitStatus.SUCCESS
    assert run.station == "saxs"
    assert run.campaign_id == unique_campaign_id
    assert run.realized is not None
    assert run.frames().ndim == 3  # (frames, y, x) from the twin's detector

    record = AnalysisStore(tiled_client).get(uid)
    assert record is not None
    assert record.ok, record.failure_reason
    assert record.composition["SDS"] == pytest.approx(0.05, abs=0.005)
    assert [r.run_uid for r in twin_session.records] == [uid]
    assert describe(record).startswith(f"analysed run {uid[:8]}")

    path = twin_session.plot_curve()
    assert path.parent == twin_session.data_directory / "plots"
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_by_hand_empty_cell_prepare_load_measure_rinse(
    twin_session: StationSession, tiled_client: Container
) -> None:
    ns, plans = twin_session.namespace(), twin_session.plans
    RE = ns["RE"]
    RE(ns["measure_empty_cell"]())
    RE(ns["prepare"]({"SDS": 0.08, "PPG": 0.02}))
    prepared = plans.prepared
    assert prepared is not None
    assert prepared.realized is not None
    RE(ns["load"]())
    assert plans.in_cell == prepared
    assert plans.prepared is None
    (uid,) = RE(ns["measure_sample"]())
    RE(ns["rinse"]())
    assert plans.in_cell is None

    run = Catalog(tiled_client).run(uid)
    assert run.plan_name == "measure_sample"
    assert run.sample_uid == prepared.uid
    assert run.realized == prepared.realized.to_dict()
    # the station recorded what was in the beam, and the run was reduced against the empty cell
    record = twin_session.record()
    assert record.run_uid == uid
    assert record.ok, record.failure_reason
    assert record.sample_uid == prepared.uid
    assert twin_session.show_curve().exists()
    # only the measurement was analysed: preparation runs have no frames to reduce
    assert [r.run_uid for r in twin_session.records] == [uid]


def test_plans_refuse_out_of_order_steps_before_any_document(twin_session: StationSession) -> None:
    ns = twin_session.namespace()
    RE = ns["RE"]
    documents: list[str] = []
    RE.subscribe(lambda name, doc: documents.append(name))
    with pytest.raises(SessionConfigError, match="prepare a sample first"):
        RE(ns["load"]())
    RE(ns["prepare"]({"SDS": 0.03}))
    RE(ns["load"]())
    documents.clear()
    with pytest.raises(SessionConfigError, match="rinse"):
        RE(ns["measure_empty_cell"]())
    with pytest.raises(SessionConfigError, match="rinse"):
        RE(ns["sample_plan"]({"SDS": 0.03}))
    assert documents == []
    RE(ns["rinse"]())


def test_an_interactive_session_prints_the_live_table(
    twin_sessions: Callable[..., StationSession],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a person at the prompt sees as a run goes: bluesky's table, `bec` to switch it."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    session = twin_sessions(interactive=True)
    ns = session.namespace()
    bec = session.bec
    assert bec is not None
    assert ns["bec"] is bec
    assert "bec.disable_table()" in session.banner()
    capsys.readouterr()
    (uid,) = ns["RE"](ns["sample_plan"]({"SDS": 0.05}))
    out = capsys.readouterr().out
    assert f"Persistent Unique Scan ID: '{uid}'" in out
    assert "New stream: 'primary'" in out
    header = next(line for line in out.splitlines() if "seq_num" in line)
    assert "saxs_monitor_incident_counts" in header
    assert "saxs_temperature_readback" in header
    row = out.splitlines()[out.splitlines().index(header) + 2]
    assert row.split("|")[1].strip() == "1"  # the first event of the primary stream

    bec.disable_table()
    ns["RE"](ns["measure_empty_cell"]())
    assert "seq_num" not in capsys.readouterr().out
    # plots stay off without a display: no figure was made
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_sessions_without_a_person_print_no_table(twin_session: StationSession) -> None:
    assert twin_session.bec is None
    assert "bec" not in twin_session.namespace()


def test_no_analysed_run_yet_is_explained(twin_session: StationSession) -> None:
    with pytest.raises(SessionConfigError, match="no run of this session has been analysed"):
        twin_session.plot_curve()
    with pytest.raises(SessionConfigError, match="has no analysed node"):
        twin_session.record("no-such-run")


def test_epics_backend_runs_a_sample_against_the_beamline_ioc(
    demo: Campaign,
    ioc_factory: object,
    tiled_endpoint: TiledEndpoint,
    tmp_path: Path,
    unique_campaign_id: str,
) -> None:
    n = next(_prefixes)
    prefixes = EpicsPrefixes.for_station(
        "saxs", station=f"TST:SESBL{n}:SAXS:", cell_loader=f"TST:SESBL{n}:SAXS:CL:"
    )
    with (
        ioc_factory.serve(  # type: ignore[attr-defined]
            "tandem.sim.beamline_ioc:BeamlineIOC",
            prefix=prefixes.station,
            options={"station": "saxs", "time_scale": 0, "seed": 3},
        ),
        ioc_factory.serve(  # type: ignore[attr-defined]
            "tandem.sim.cell_loader_ioc:CellLoaderIOC", prefix=prefixes.cell_loader, options={"time_scale": 0}
        ),
        open_station_session(
            "saxs",
            campaign=demo,
            sim=False,
            epics=prefixes,
            tiled=tiled_endpoint,
            data_directory=tmp_path,
            campaign_id=unique_campaign_id,
        ) as session,
    ):
        assert session.backend == "epics"
        banner = session.banner()
        assert "EPICS" in banner
        assert prefixes.station in banner
        assert "SIMULATED robot" in banner
        ns = session.namespace()
        (uid,) = ns["RE"](ns["sample_plan"]({"SDS": 0.05}))
    client = tiled_endpoint.connect()
    assert Catalog(client).run(uid).exit_status is ExitStatus.SUCCESS
    record = AnalysisStore(client).get(uid)
    assert record is not None
    assert record.ok, record.failure_reason


# --- bad input: refused before anything starts ------------------------------------------------


def test_unknown_station_is_refused_with_the_campaigns_stations(demo: Campaign, tmp_path: Path) -> None:
    with (
        pytest.raises(SessionConfigError, match=r"'xrd' is not in campaign .*sans, saxs"),
        open_station_session("xrd", campaign=demo, data_directory=tmp_path),
    ):
        pass  # pragma: no cover
    assert list(tmp_path.iterdir()) == []  # no Tiled directory was created


def test_a_missing_campaign_file_is_a_typed_error(tmp_path: Path) -> None:
    with (
        pytest.raises(TandemError, match="cannot read the campaign file"),
        open_station_session("saxs", campaign=tmp_path / "nope.yaml", data_directory=tmp_path),
    ):
        pass  # pragma: no cover


def test_settings_from_the_environment() -> None:
    settings = SessionSettings.from_environment(
        {"TANDEM_STATION": "sans", "TANDEM_SIM": "false", "TANDEM_DATA": "/data", "PATH": "/bin"}
    )
    assert settings.station == "sans"
    assert settings.sim is False
    assert settings.data == Path("/data")
    assert settings.campaign is None
    assert SessionSettings.from_environment({"TANDEM_STATION": "saxs"}).sim is True


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, "TANDEM_STATION"),
        ({"TANDEM_STATION": "saxs", "TANDEM_SIM": "perhaps"}, "TANDEM_SIM"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(SessionConfigError, match=names):
        SessionSettings.from_environment(environ)


def test_epics_prefixes_default_to_the_tandem_layout() -> None:
    prefixes = EpicsPrefixes.for_station("saxs")
    assert prefixes == EpicsPrefixes(station="TANDEM:SAXS:", cell_loader="TANDEM:SAXS:CL:")
    assert EpicsPrefixes.for_station("sans", station="BL9:").station == "BL9:"
