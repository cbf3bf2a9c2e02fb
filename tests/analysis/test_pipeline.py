"""The pipeline on a real Tiled server: raw twin runs in, one analysed node per run out, failures recorded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from tiled.client.container import Container

from tandem.analysis import pipeline
from tandem.analysis.fit_search import FitSettings
from tandem.analysis.pipeline import Analyzer
from tandem.analysis.pipeline_callback import AnalysisCallback, AnalysisSeconds
from tandem.analysis.pipeline_settings import AnalysisSettings
from tandem.analysis.raw_runs import EMPTY_CELL_PLAN, DocumentRun
from tandem.analysis.store import CURVE_ROWS, AnalysisRecord, AnalysisStore, FitStatus
from tandem.observations import AnalysisStatus
from tandem.sim.calibration import twin_calibrations
from tandem.sim.instruments import instrument_for
from tandem.stations import Probe

pytestmark = pytest.mark.slow

MICELLES = {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.0}


@pytest.fixture
def analyzer(tiled_client: Container) -> Analyzer:
    return Analyzer(tiled_client, AnalysisSettings(calibrations=twin_calibrations()))


def test_a_run_becomes_one_analysed_node(
    analyzer: Analyzer, tiled_client: Container, twin_run: Callable[..., str], unique_campaign_id: str
) -> None:
    uid = twin_run(tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=10.0)
    record = analyzer.analyze(uid)
    assert record.ok, record.failure_reason
    assert record.curve is not None
    assert record.label  # its name is the labeller's business (tandem.analysis.labels)
    assert record.fits["best_model"]
    assert record.composition == pytest.approx(MICELLES)
    stored = AnalysisStore(tiled_client).get(uid)
    assert stored is not None
    assert stored.curve is not None
    np.testing.assert_allclose(stored.curve.intensity_per_cm, record.curve.intensity_per_cm)
    assert stored.analysis_version == record.analysis_version
    assert stored.parameters["calibration"]["path_length_mm"] == 1.5
    raw = analyzer.catalog.run(uid)
    assert stored.sample_uid == raw.sample_uid
    assert stored.campaign_id == unique_campaign_id

    # idempotent: again, and forced again, still one node
    first_time = stored.analysed_at
    assert analyzer.analyze(uid).analysed_at == first_time
    analyzer.analyze(uid, force=True)
    node = tiled_client["analysed"]
    assert sum(1 for key in node if key == uid) == 1
    assert len(AnalysisStore(tiled_client).records(campaign_id=unique_campaign_id)) == 1

    obs = stored.to_observation()
    assert obs.ok
    assert obs.probe is Probe.XRAY
    assert obs.label == record.label
    assert obs.run_uid == uid
    assert np.isfinite(obs.features["fit_chi2_reduced"])


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        ({"counts": "zeros"}, "empty_frame"),
        ({"counts": "saturated"}, "saturated_frame"),
        ({"transmitted_factor": 0.0}, "bad_transmission"),
        ({"transmitted_factor": 5.0}, "bad_transmission"),
        ({"geometry": False}, "missing_geometry"),
        ({"exit_status": "fail"}, "missing_data"),
    ],
)
def test_bad_runs_become_failure_records(  # noqa: PLR0917 - fixtures and parameters
    analyzer: Analyzer,
    tiled_client: Container,
    twin_run: Callable[..., str],
    unique_campaign_id: str,
    spoil: dict[str, object],
    code: str,
) -> None:
    kwargs = dict(spoil)
    shape = instrument_for("saxs").configuration().geometry.shape
    if kwargs.get("counts") == "zeros":
        kwargs["counts"] = np.zeros(shape, dtype=np.uint32)
    elif kwargs.get("counts") == "saturated":
        kwargs["counts"] = np.full(shape, 2**20 - 1, dtype=np.uint32)
    uid = twin_run(tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=1.0, **kwargs)
    record = analyzer.analyze(uid)
    assert record.status is AnalysisStatus.FAILED
    assert record.failure_code == code, record.failure_reason
    assert record.failure_reason
    stored = AnalysisStore(tiled_client).get(uid)
    assert stored is not None
    assert stored.status is AnalysisStatus.FAILED
    obs = stored.to_observation()
    assert not obs.ok
    assert obs.label is None
    assert obs.features == {}
    assert code in (obs.failure_reason or "")


def test_catch_up_and_callback(
    analyzer: Analyzer, tiled_client: Container, twin_run: Callable[..., str], unique_campaign_id: str
) -> None:
    uids = [
        twin_run(tiled_client, "sans", MICELLES, campaign_id=unique_campaign_id, exposure_s=600.0, seed=i)
        for i in range(2)
    ]
    assert set(uids) <= set(analyzer.pending())
    analyzer.catch_up()
    assert not set(uids) & set(analyzer.pending())
    done: list[AnalysisRecord] = []
    callback = AnalysisCallback(analyzer, on_done=done.append)
    uid = twin_run(
        tiled_client,
        "sans",
        MICELLES,
        campaign_id=unique_campaign_id,
        exposure_s=600.0,
        seed=9,
        also=callback,
    )
    assert [r.run_uid for r in done] == [uid]
    # from the documents, the same result as from Tiled
    from_tiled = analyzer.analyze(uid, force=True)
    assert from_tiled.curve is not None
    assert done[0].curve is not None
    np.testing.assert_allclose(done[0].curve.intensity_per_cm, from_tiled.curve.intensity_per_cm)
    # in the background: the documents are taken at once, the analysis lands when flushed
    background = AnalysisCallback(analyzer, on_done=done.append, in_background=True)
    uid = twin_run(
        tiled_client,
        "sans",
        MICELLES,
        campaign_id=unique_campaign_id,
        exposure_s=600.0,
        seed=10,
        also=background,
    )
    background.flush(timeout_s=120)
    assert done[-1].run_uid == uid
    assert AnalysisStore(tiled_client).is_done(uid)
    done.pop()
    # reference runs are not analysed
    callback("start", {"uid": "ref", "plan_name": "measure_empty_cell", "time": 0.0})
    callback("stop", {"run_start": "ref", "exit_status": "success", "uid": "s", "time": 1.0})
    assert len(done) == 1
    labels = {r.label for r in AnalysisStore(tiled_client).records(campaign_id=unique_campaign_id)}
    assert len(labels) == 1, f"runs of one composition share one label, got {labels}"
    assert {r.probe for r in done} == {"neutron"}


def test_the_node_is_readable_with_fits_pending_then_complete(
    tiled_client: Container, twin_run: Callable[..., str], unique_campaign_id: str
) -> None:
    store = AnalysisStore(tiled_client)
    pending_runs: list[str] = []
    seen: list[tuple[AnalysisRecord, AnalysisRecord | None, AnalysisRecord | None, list[str], list[str]]] = []

    def readable(record: AnalysisRecord) -> None:
        # what readers find in Tiled while the fits are computed
        seen.append(
            (
                record,
                store.get(record.run_uid),
                store.get(record.run_uid, pending_fits=True),
                [r.run_uid for r in store.records(campaign_id=unique_campaign_id)],
                [r.run_uid for r in store.records(campaign_id=unique_campaign_id, pending_fits=True)],
            )
        )
        pending_runs.extend(u for u in analyzer.pending() if u == record.run_uid)

    labelled: list[tuple[AnalysisRecord, AnalysisRecord | None]] = []

    def on_labelled(record: AnalysisRecord) -> None:
        # the label is known before the node is written
        labelled.append((record, store.get(record.run_uid, pending_fits=True)))

    analyzer = Analyzer(
        tiled_client,
        AnalysisSettings(calibrations=twin_calibrations()),
        on_readable=readable,
        on_labelled=on_labelled,
    )
    uid = twin_run(tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=10.0)
    final = analyzer.analyze(uid)
    [(first, in_tiled)] = labelled
    assert first.label is not None
    assert first.label == final.label
    assert first.fits_pending
    assert in_tiled is None

    [(early, complete, pending, listed, listed_with_pending)] = seen
    assert early.fits_pending
    assert early.fits == {}
    assert complete is None, "a node with fits pending is not complete"
    assert listed == []
    assert listed_with_pending == [uid]
    assert pending is not None
    assert pending.fits_status is FitStatus.PENDING
    assert pending.label == final.label
    assert pending.curve is not None
    assert pending.features == early.features
    assert pending_runs == [uid], "a run whose fits are pending is not done"

    assert final.fits_status is FitStatus.DONE
    stored = store.get(uid)
    assert stored is not None
    assert stored.fits_status is FitStatus.DONE
    assert stored.fits["best_model"] == final.fits["best_model"]
    assert stored.label == final.label
    assert stored.curve is not None
    np.testing.assert_allclose(stored.curve.intensity_per_cm, pending.curve.intensity_per_cm)
    assert uid not in analyzer.pending()
    assert [r.run_uid for r in store.records(campaign_id=unique_campaign_id, pending_fits=True)] == [uid]


def test_the_models_are_fitted_while_the_node_is_written(
    tiled_client: Container,
    twin_run: Callable[..., str],
    unique_campaign_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fitting_started = threading.Event()
    fit_models = pipeline.fit_models

    def fit(*args: Any) -> Any:
        fitting_started.set()
        return fit_models(*args)

    monkeypatch.setattr(pipeline, "fit_models", fit)
    # called once the node with its fits pending is written: the fits have begun by then (if they ran
    # after the writes, as they once did, this would wait in vain and record False)
    overlapped: list[bool] = []
    analyzer = Analyzer(
        tiled_client,
        AnalysisSettings(calibrations=twin_calibrations()),
        on_readable=lambda record: overlapped.append(fitting_started.wait(timeout=120)),
    )
    uid = twin_run(tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=10.0)
    final = analyzer.analyze(uid)
    assert overlapped == [True]
    assert final.fits_status is FitStatus.DONE
    stored = AnalysisStore(tiled_client).get(uid)
    assert stored is not None
    assert stored.fits_status is FitStatus.DONE
    assert stored.fits["best_model"] == final.fits["best_model"]


def test_no_fits_and_failed_fits_are_told_apart_from_pending(
    tiled_client: Container, twin_run: Callable[..., str], unique_campaign_id: str
) -> None:
    store = AnalysisStore(tiled_client)
    calibrations = twin_calibrations()
    uid = twin_run(tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=10.0)

    readable: list[AnalysisRecord] = []
    no_fit = Analyzer(
        tiled_client, AnalysisSettings(calibrations=calibrations, fit=False), on_readable=readable.append
    )
    record = no_fit.analyze(uid)
    assert readable == [], "without fits the node is complete at once"
    assert record.ok
    assert record.fits_status is FitStatus.NOT_RUN
    stored = store.get(uid, with_curve=False)
    assert stored is not None
    assert stored.fits_status is FitStatus.NOT_RUN
    assert stored.fits == {}

    hopeless = AnalysisSettings(calibrations=calibrations, fitting=FitSettings(max_evaluations=1))
    record = Analyzer(tiled_client, hopeless).analyze(uid, force=True)
    assert record.status is AnalysisStatus.FAILED
    assert record.failure_code == "fit_not_converged", record.failure_reason
    assert record.fits_status is FitStatus.FAILED
    assert record.label is None
    stored = store.get(uid)
    assert stored is not None
    assert stored.status is AnalysisStatus.FAILED
    assert stored.fits_status is FitStatus.FAILED
    assert stored.label is None
    assert not stored.to_observation().ok
    assert stored.curve is not None, "the curve no model describes stays readable"

    spoiled = twin_run(
        tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=1.0, geometry=False
    )
    told: list[tuple[AnalysisRecord, AnalysisRecord | None]] = []
    record = Analyzer(
        tiled_client,
        AnalysisSettings(calibrations=calibrations),
        on_labelled=lambda r: told.append((r, store.get(r.run_uid, pending_fits=True))),
    ).analyze(spoiled)
    assert record.failure_code == "missing_geometry"
    assert record.fits_status is FitStatus.NOT_RUN
    [(failed, in_tiled)] = told
    assert failed.failure_code == "missing_geometry", "a run that fails before its label is told too"
    assert in_tiled is None, "and before its node is written"


def test_the_callback_uses_the_empty_cell_it_saw_measured_without_reading_tiled(
    analyzer: Analyzer,
    tiled_client: Container,
    twin_run: Callable[..., str],
    unique_campaign_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done: list[AnalysisRecord] = []
    callback = AnalysisCallback(analyzer, on_done=done.append, in_background=True)

    def as_empty_cell_run(name: str, doc: Any) -> None:
        # the documents of an empty-cell measurement, as `measure_empty_cell` makes them
        if name == "start":
            doc = {**doc, "plan_name": EMPTY_CELL_PLAN}
        callback(name, doc)

    twin_run(
        tiled_client,
        "saxs",
        MICELLES,
        campaign_id=unique_campaign_id,
        exposure_s=10.0,
        also=as_empty_cell_run,
    )
    assert callback.barrier().result(timeout=60).total_s == 0.0, "an empty-cell run is kept, not analysed"

    def no_search(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the empty cell was looked up in Tiled")

    monkeypatch.setattr(analyzer.catalog, "runs", no_search)
    uid = twin_run(
        tiled_client,
        "saxs",
        MICELLES,
        campaign_id=unique_campaign_id,
        exposure_s=10.0,
        seed=3,
        empty_cell=False,
        also=callback,
    )
    assert callback.barrier().result(timeout=120).total_s > 0
    [record] = done
    assert record.run_uid == uid
    assert record.ok, record.failure_reason
    assert record.curve is not None
    assert record.curve.metadata["empty_cell_subtracted"]

    # another station (or geometry) has no empty cell in memory: Tiled is searched, and has none either
    monkeypatch.undo()
    uid = twin_run(
        tiled_client, "sans", MICELLES, campaign_id=unique_campaign_id, exposure_s=600.0, empty_cell=False
    )
    other = analyzer.analyze(uid)
    assert other.curve is not None
    assert not other.curve.metadata["empty_cell_subtracted"]


def test_only_a_successful_empty_cell_run_is_kept_as_a_reference(analyzer: Analyzer) -> None:
    start = {"uid": "ec", "time": 1.0, "plan_name": EMPTY_CELL_PLAN, "station": "saxs", "geometry": {}}
    failed = DocumentRun(start)
    failed.add("stop", {"run_start": "ec", "exit_status": "fail", "uid": "s", "time": 2.0})
    assert not analyzer.remember_reference(failed)
    sample = DocumentRun({**start, "plan_name": "sample_plan"})
    sample.add("stop", {"run_start": "ec", "exit_status": "success", "uid": "s", "time": 2.0})
    assert not analyzer.remember_reference(sample)
    no_frames = DocumentRun(start)
    no_frames.add("stop", {"run_start": "ec", "exit_status": "success", "uid": "s", "time": 2.0})
    assert not analyzer.remember_reference(no_frames), "without its empty_cell stream it is no reference"


def test_in_the_background_a_label_does_not_wait_for_the_fits_of_earlier_runs(
    tiled_client: Container, twin_run: Callable[..., str], unique_campaign_id: str
) -> None:
    store = AnalysisStore(tiled_client)
    labelled: list[str] = []
    second_labelled = threading.Event()
    # whether the second run was labelled while the first run's fits were held back
    held: list[bool] = []

    def on_labelled(record: AnalysisRecord) -> None:
        labelled.append(record.run_uid)
        if len(labelled) == 2:
            second_labelled.set()

    def on_readable(record: AnalysisRecord) -> None:
        # the fitting thread, before the first run's fits are stored: they may not be until the second
        # run has been labelled, which can only happen if labelling goes on without them (else: held is
        # False)
        if record.run_uid == labelled[0]:
            held.append(second_labelled.wait(timeout=300))

    analyzer = Analyzer(
        tiled_client,
        AnalysisSettings(calibrations=twin_calibrations()),
        on_labelled=on_labelled,
        on_readable=on_readable,
    )
    done: list[AnalysisRecord] = []
    callback = AnalysisCallback(analyzer, on_done=done.append, in_background=True)
    uids = [
        twin_run(
            tiled_client,
            "saxs",
            MICELLES,
            campaign_id=unique_campaign_id,
            exposure_s=10.0,
            seed=i,
            also=callback,
        )
        for i in range(2)
    ]
    seconds = callback.barrier().result(timeout=600)
    assert held == [True], "the second run's label waited for the first run's fits"
    assert labelled == uids, "labels are handed over in the order the runs closed"
    assert [r.run_uid for r in done] == uids, "and so are the complete records"
    assert all(r.ok and r.label and r.fits["best_model"] for r in done), [r.failure_reason for r in done]
    assert all(store.is_done(uid) for uid in uids)
    assert isinstance(seconds, AnalysisSeconds)
    assert seconds.label_s > 0
    assert seconds.fits_s > 0
    assert callback.barrier().result(timeout=60) == AnalysisSeconds(), "no work since the last barrier"

    # closed: what was handed over is done, and a later run is analysed in the caller's thread
    callback.close()
    uid = twin_run(
        tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=10.0, seed=7, also=callback
    )
    assert done[-1].run_uid == uid
    assert store.is_done(uid)


def test_the_curve_is_one_array_and_nodes_of_schema_2_still_read(
    analyzer: Analyzer, tiled_client: Container, twin_run: Callable[..., str], unique_campaign_id: str
) -> None:
    uid = twin_run(tiled_client, "saxs", MICELLES, campaign_id=unique_campaign_id, exposure_s=10.0)
    record = analyzer.analyze(uid)
    assert record.curve is not None
    assert list(tiled_client["analysed"][uid]) == ["curve"]
    stored = AnalysisStore(tiled_client).get(uid)
    assert stored is not None
    assert stored.completed_at is not None
    assert stored.analysed_at <= stored.completed_at

    # a node written before schema 3 holds the curve's rows as four arrays
    old = f"{uid}-schema-2"
    node = tiled_client["analysed"].create_container(
        old, metadata=record.metadata() | {"schema_version": 2, "run_uid": old, "complete": True}
    )
    for name in CURVE_ROWS:
        node.write_array(np.asarray(getattr(record.curve, name)), key=name)
    stored = AnalysisStore(tiled_client).get(old)
    assert stored is not None
    assert stored.curve is not None
    for name in CURVE_ROWS:
        np.testing.assert_array_equal(getattr(stored.curve, name), getattr(record.curve, name))
