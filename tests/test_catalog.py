"""Runs written by the Bluesky TiledWriter to a real Tiled server, read back by `Catalog`."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Generator
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import Msg
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run
from ophyd import Component, Device, Signal
from tiled.client.container import Container

from tandem.catalog import Catalog, InvalidRunQueryError, RunNotFoundError, RunNotReadyError
from tandem.catalog_layout import RAW, raw_runs_node
from tandem.document_queue import DocumentQueue, DocumentQueueError
from tandem.geometry import DetectorGeometry
from tandem.run_documents import ExitStatus, RunDataError
from tandem.run_writer import subscribe_tiled_writer, tiled_writer
from tandem.suggestions import ScanParameters

SHAPE = (16, 24)
GEOMETRY = DetectorGeometry(
    n_pixels_x=SHAPE[1],
    n_pixels_y=SHAPE[0],
    pixel_size_mm=0.172,
    distance_mm=3000.0,
    beam_center_x_px=12.0,
    beam_center_y_px=8.0,
    wavelength_a=1.0,
    beamstop_radius_mm=1.5,
)
SCAN = ScanParameters(exposure_s=2.0, configuration="short", temperature_c=25.0, n_frames=3)


class ImageSignal(Signal):
    """An array signal that declares its numpy dtype, as an area detector plugin does."""

    def describe(self) -> dict[str, dict[str, Any]]:
        description = super().describe()
        description[self.name]["dtype_numpy"] = np.asarray(self.get()).dtype.str
        return description


class Camera(Device):
    """A detector whose every frame is different and known: the test can compare pixel by pixel."""

    image = Component(ImageSignal, value=np.zeros(SHAPE, dtype="u4"), kind="hinted")
    counts = Component(Signal, value=0, kind="hinted")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken: list[np.ndarray] = []
        self._seeds = itertools.count(1)

    def trigger(self) -> Any:
        frame = np.random.default_rng(next(self._seeds)).poisson(50, SHAPE).astype("u4")
        self.taken.append(frame)
        self.image.put(frame)
        self.counts.put(int(frame.sum()))
        return super().trigger()


@pytest.fixture(scope="module")
def run_engine(tiled_server: Any) -> RunEngine:
    run_engine = RunEngine({})
    subscribe_tiled_writer(run_engine, tiled_server.endpoint.connect())
    return run_engine


@pytest.fixture
def camera() -> Camera:
    return Camera(name="cam")


@pytest.fixture
def catalog(tiled_client: Container) -> Catalog:
    return Catalog(tiled_client)


def measure(
    camera: Camera, n_frames: int = 3, fail_after: int | None = None, **md: Any
) -> Generator[Msg, Any, str]:
    """A sample measurement: a run with `n_frames` events; raises after `fail_after` frames."""

    @bpp.run_decorator(md={"plan_name": "measure", **md})
    def inner() -> Generator[Msg, Any, str]:
        for index in range(n_frames):
            if index == fail_after:
                raise TimeoutError("saxs detector stopped answering")
            yield from bps.trigger_and_read([camera])
        return "done"

    return (yield from inner())


def run(run_engine: RunEngine, plan: Generator[Msg, Any, Any]) -> str:
    uids = run_engine(plan)
    assert len(uids) == 1
    return str(uids[0])


def test_a_run_reads_back_with_frames_and_metadata(
    run_engine: RunEngine, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    sample_uid = str(uuid.uuid4())
    target = {"SDS": 0.05, "NaCl": 0.01}
    realized = {"SDS": 0.0503, "NaCl": 0.0099}
    uid = run(
        run_engine,
        measure(
            camera,
            sample_uid=sample_uid,
            campaign_id=unique_campaign_id,
            decision_uid="d-1",
            station="saxs",
            target=target,
            realized=realized,
            scan=SCAN.to_dict(),
            geometry=GEOMETRY.to_dict(),
        ),
    )

    found = catalog.run(uid)  # readable as soon as the RunEngine returns
    assert found.uid == uid
    assert found.is_closed
    assert found.succeeded
    assert found.exit_status is ExitStatus.SUCCESS
    assert found.reason == ""
    assert found.num_events == {"primary": 3}
    assert (found.sample_uid, found.campaign_id, found.decision_uid, found.station) == (
        sample_uid,
        unique_campaign_id,
        "d-1",
        "saxs",
    )
    assert found.plan_name == "measure"
    assert found.target == target
    assert found.realized == realized
    assert found.scan == SCAN
    assert found.geometry == GEOMETRY
    assert found.streams == ("primary",)

    assert found.image_field() == "cam_image"
    frames = found.frames()
    assert frames.shape == (3, *SHAPE)
    assert frames.dtype == np.dtype("u4")
    np.testing.assert_array_equal(frames, np.stack(camera.taken))
    np.testing.assert_array_equal(found.read("cam_counts"), [f.sum() for f in camera.taken])


def test_runs_are_found_by_sample_campaign_station_and_plan(
    run_engine: RunEngine, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    other_campaign = unique_campaign_id + "-other"
    written = [
        (unique_campaign_id, "saxs", "s1"),
        (unique_campaign_id, "sans", "s1"),
        (unique_campaign_id, "saxs", "s2"),
        (other_campaign, "saxs", "s1"),
    ]
    uids = [
        run(run_engine, measure(camera, n_frames=1, campaign_id=c, station=st, sample_uid=f"{c}/{s}"))
        for c, st, s in written
    ]

    in_campaign = catalog.runs(campaign_id=unique_campaign_id)
    assert [r.uid for r in in_campaign] == uids[2::-1], "newest first"
    oldest_first = catalog.runs(campaign_id=unique_campaign_id, newest_first=False)
    assert [r.uid for r in oldest_first] == uids[:3]
    assert [r.uid for r in catalog.runs(campaign_id=unique_campaign_id, station="saxs")] == [uids[2], uids[0]]
    assert [r.uid for r in catalog.runs(sample_uid=f"{unique_campaign_id}/s1")] == [uids[1], uids[0]]
    assert [r.uid for r in catalog.runs(sample_uid=f"{other_campaign}/s1", station="saxs")] == [uids[3]]
    assert [r.uid for r in catalog.runs(campaign_id=unique_campaign_id, limit=1)] == [uids[2]]
    assert catalog.runs(campaign_id=unique_campaign_id, limit=0) == []
    assert catalog.runs(campaign_id=unique_campaign_id, plan_name="count") == []
    assert len(catalog.runs(campaign_id=unique_campaign_id, plan_name="measure")) == 3
    assert catalog.runs(campaign_id=unique_campaign_id, station="xpcs") == []
    assert catalog.count(campaign_id=unique_campaign_id) == 3
    assert catalog.count(campaign_id=unique_campaign_id, station="sans") == 1
    assert {unique_campaign_id, other_campaign} <= set(catalog.distinct("campaign_id"))


def test_a_failed_run_is_recorded_with_its_reason(
    run_engine: RunEngine, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    with pytest.raises(TimeoutError, match="stopped answering"):
        run_engine(measure(camera, n_frames=3, fail_after=2, campaign_id=unique_campaign_id, station="saxs"))

    (failed,) = catalog.runs(campaign_id=unique_campaign_id)
    assert failed.is_closed
    assert failed.exit_status is ExitStatus.FAIL
    assert not failed.succeeded
    assert "stopped answering" in failed.reason
    # the frames taken before the failure are not lost
    np.testing.assert_array_equal(failed.frames(), np.stack(camera.taken))
    assert [r.uid for r in catalog.runs(campaign_id=unique_campaign_id, exit_status="fail")] == [failed.uid]
    assert catalog.runs(campaign_id=unique_campaign_id, exit_status=ExitStatus.SUCCESS) == []


def test_missing_data_is_a_clear_error(
    run_engine: RunEngine, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    uid = run(run_engine, measure(camera, n_frames=1, campaign_id=unique_campaign_id))
    found = catalog.run(uid)
    with pytest.raises(RunDataError, match="no detector geometry"):
        _ = found.geometry
    with pytest.raises(RunDataError, match="no scan parameters"):
        _ = found.scan
    with pytest.raises(RunDataError, match="no stream 'dark'; streams: primary"):
        found.frames("dark")
    with pytest.raises(RunDataError, match=r"no field 'temperature'; fields: .*cam_image"):
        found.read("temperature")
    with pytest.raises(RunDataError, match="holds 0-D data, not frames"):
        found.frames(field="cam_counts")
    assert found.sample_uid is None
    assert found.target is None

    scalar_only = run(
        run_engine,
        bpp.run_wrapper(bps.trigger_and_read([camera.counts]), md={"campaign_id": unique_campaign_id}),
    )
    with pytest.raises(RunDataError, match="expected one 2-D image field, found none"):
        catalog.run(scalar_only).frames()


def test_bad_geometry_or_scan_in_a_run_is_a_clear_error(
    run_engine: RunEngine, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    uid = run(
        run_engine,
        measure(
            camera,
            n_frames=1,
            campaign_id=unique_campaign_id,
            geometry={**GEOMETRY.to_dict(), "distance_mm": -1.0},
            scan={"exposure_s": 0},
        ),
    )
    found = catalog.run(uid)
    with pytest.raises(RunDataError, match=r"unreadable detector geometry: .*distance_mm must be positive"):
        _ = found.geometry
    with pytest.raises(RunDataError, match=r"unreadable scan parameters: .*exposure"):
        _ = found.scan


def test_unknown_runs_are_not_found(
    run_engine: RunEngine, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    uid = run(run_engine, measure(camera, n_frames=1, campaign_id=unique_campaign_id))
    for missing in (str(uuid.uuid4()), "", uid[:8]):
        assert missing not in catalog
        with pytest.raises(RunNotFoundError, match="run"):
            catalog.run(missing)
    assert uid in catalog


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({"limit": -1}, "limit must be"),
        ({"exit_status": "crashed"}, "unknown exit status 'crashed'; valid: success, fail, abort"),
        ({"station": ""}, "station must be a non-empty string"),
        ({"campaign_id": 7}, "campaign_id must be a non-empty string"),
    ],
)
def test_bad_searches_are_refused(catalog: Catalog, criteria: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRunQueryError, match=message):
        catalog.runs(**criteria)


def test_count_refuses_unknown_criteria(catalog: Catalog) -> None:
    with pytest.raises(InvalidRunQueryError, match="cannot search runs by colour"):
        catalog.count(colour="blue")


def test_wait_for_run_waits_for_the_stop_document(tiled_client: Container, catalog: Catalog) -> None:
    writer = TiledWriter(raw_runs_node(tiled_client))
    bundle = compose_run(metadata={"campaign_id": "wait-test"})
    writer("start", bundle.start_doc)

    with pytest.raises(RunNotReadyError, match="still open"):
        catalog.wait_for_run(bundle.start_doc["uid"], timeout_s=0.2)
    assert catalog.run(bundle.start_doc["uid"]).exit_status is None

    writer("stop", bundle.compose_stop(exit_status="abort", reason="operator stopped it"))
    done = catalog.wait_for_run(bundle.start_doc["uid"], timeout_s=10)
    assert done.exit_status is ExitStatus.ABORT
    assert done.reason == "operator stopped it"

    with pytest.raises(RunNotReadyError, match="has not appeared"):
        catalog.wait_for_run(str(uuid.uuid4()), timeout_s=0.1)
    with pytest.raises(InvalidRunQueryError, match="timeout_s"):
        catalog.wait_for_run(done.uid, timeout_s=-1)


def test_the_raw_node_is_created_once(tiled_client: Container) -> None:
    first = raw_runs_node(tiled_client)
    second = raw_runs_node(tiled_client)
    assert first.uri == second.uri
    assert first.uri.endswith(f"/{RAW}")
    assert "CatalogOfBlueskyRuns" in [spec.name for spec in second.specs]


def test_the_writer_refuses_a_nonsense_batch_size(tiled_client: Container) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        subscribe_tiled_writer(RunEngine({}), tiled_client, batch_size=0)


def test_tandem_runs_lists_a_campaign(
    run_engine: RunEngine,
    camera: Camera,
    tiled_server: Any,
    unique_campaign_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from tandem.cli import app

    good = run(run_engine, measure(camera, n_frames=2, campaign_id=unique_campaign_id, station="sans"))
    with pytest.raises(TimeoutError):
        run_engine(measure(camera, fail_after=0, campaign_id=unique_campaign_id, station="saxs"))
    for name, value in tiled_server.endpoint.environ().items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    listed = runner.invoke(app, ["data", "runs", "--campaign", unique_campaign_id], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "2 run(s)" in listed.output
    assert good[:8] in listed.output
    assert "stopped answering" in listed.output

    only_sans = runner.invoke(
        app, ["data", "runs", "-c", unique_campaign_id, "--station", "sans"], env={"COLUMNS": "200"}
    )
    assert "1 run(s)" in only_sans.output
    by_directory = runner.invoke(
        app, ["data", "runs", "-c", unique_campaign_id, "--directory", str(tiled_server.directory)]
    )
    assert "2 run(s)" in by_directory.output

    refused = runner.invoke(app, ["data", "runs", "--status", "crashed"])
    assert refused.exit_code == 1
    assert "unknown exit status 'crashed'" in refused.output


def test_tandem_runs_says_where_to_find_a_store(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tandem.cli import app

    monkeypatch.delenv("TANDEM_TILED_URI", raising=False)
    monkeypatch.delenv("TANDEM_TILED_API_KEY", raising=False)
    unset = CliRunner().invoke(app, ["data", "runs"])
    assert unset.exit_code == 1
    assert "set TANDEM_TILED_URI and TANDEM_TILED_API_KEY" in unset.output
    nowhere = CliRunner().invoke(app, ["data", "runs", "--directory", str(tmp_path)])
    assert nowhere.exit_code == 1
    assert "no Tiled server is running" in nowhere.output


def test_a_follower_asks_only_for_newer_runs(
    run_engine: RunEngine, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    first = run(run_engine, measure(camera, n_frames=1, campaign_id=unique_campaign_id))
    seen = catalog.run(first).time
    second = run(run_engine, measure(camera, n_frames=1, campaign_id=unique_campaign_id))
    newer = catalog.runs(campaign_id=unique_campaign_id, started_after=seen, newest_first=False)
    assert [r.uid for r in newer] == [second]
    assert catalog.count(campaign_id=unique_campaign_id, started_after=catalog.run(second).time) == 0
    lazily = catalog.iter_runs(campaign_id=unique_campaign_id, newest_first=False)
    assert next(lazily).uid == first
    with pytest.raises(InvalidRunQueryError, match="started_after must be a time"):
        catalog.runs(started_after="yesterday")  # type: ignore[arg-type]


def test_a_run_written_in_the_background_is_in_tiled_at_the_barrier(
    tiled_client: Container, camera: Camera, catalog: Catalog, unique_campaign_id: str
) -> None:
    run_engine = RunEngine({})
    writer = DocumentQueue(tiled_writer(tiled_client), name="test writer")
    run_engine.subscribe(writer)
    try:
        uid = run(run_engine, measure(camera, n_frames=2, campaign_id=unique_campaign_id))
        seconds = writer.barrier().result(timeout=60)
        assert seconds > 0
        written = catalog.run(uid)  # no waiting: the barrier says it is there, closed
        assert written.exit_status is ExitStatus.SUCCESS
        np.testing.assert_array_equal(written.frames(), np.stack(camera.taken))
    finally:
        writer.close(timeout_s=60)


def test_the_document_queue_keeps_order_and_reports_errors_at_the_barrier() -> None:
    seen: list[str] = []

    def callback(name: str, doc: Any) -> None:
        if doc.get("bad"):
            raise RuntimeError(f"cannot write {name}")
        seen.append(name)

    documents = DocumentQueue(callback, max_documents=2)  # a small queue: the caller waits, nothing is lost
    for i in range(10):
        documents(f"doc{i}", {})
        if i == 4:
            documents.submit(lambda: seen.append("call"))
    assert documents.barrier().result(timeout=10) >= 0
    assert seen == [*(f"doc{i}" for i in range(5)), "call", *(f"doc{i}" for i in range(5, 10))]

    documents("event", {"bad": True})
    documents("stop", {})
    with pytest.raises(DocumentQueueError, match="cannot write event") as failure:
        documents.flush(timeout_s=10)
    assert isinstance(failure.value.__cause__, RuntimeError)
    assert seen[-1] == "stop", "documents after a failed one are still processed"
    assert documents.flush(timeout_s=10) >= 0, "an error is raised once"

    documents.close(timeout_s=10)
    with pytest.raises(DocumentQueueError, match="after the queue was closed"):
        documents("start", {})
    with pytest.raises(DocumentQueueError, match="after the queue was closed"):
        documents.submit(lambda: None)
    assert documents.barrier().result(timeout=0) == 0.0
    with pytest.raises(ValueError, match="max_documents"):
        DocumentQueue(callback, max_documents=0)
