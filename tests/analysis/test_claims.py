"""Several analysis workers share one stream of runs through claims in Tiled (`tandem.analysis.claims`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tiled.client.container import Container

from tandem.analysis.claims import InvalidClaimSettingsError, RunClaims
from tandem.analysis.pipeline import Analyzer
from tandem.analysis.pipeline_settings import AnalysisSettings
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.sim.calibration import twin_calibrations
from tandem.tiled_server import EmbeddedTiledServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """A catalog of this module's own: the workers analyse every pending run in it, and are counted."""
    with EmbeddedTiledServer(tmp_path_factory.mktemp("claims"), die_with_parent=True) as endpoint:
        yield endpoint.connect()


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_of_workers_claiming_one_run_at_once_exactly_one_wins(own_store: Container) -> None:
    workers = [RunClaims(own_store, worker=f"w{i}") for i in range(6)]
    start = threading.Barrier(len(workers))
    won: list[str] = []

    def claim(claims: RunClaims) -> None:
        start.wait()
        if claims.claim("race-run") is not None:
            won.append(claims.worker)

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    latest = workers[0].latest("race-run")
    assert latest is not None
    assert (latest.worker, latest.attempt) == (won[0], 0)


def test_a_lapsed_claim_is_taken_over_and_a_live_one_is_not(own_store: Container) -> None:
    clock = Clock()
    first = RunClaims(own_store, worker="first", lease_s=10, clock=clock)
    second = RunClaims(own_store, worker="second", lease_s=10, clock=clock)
    assert first.claim("lapsing-run") is not None
    clock.now_s += 5
    assert second.claim("lapsing-run") is None, "the first worker's claim still holds"
    clock.now_s += 6  # the first worker died: its claim lapsed
    taken = second.claim("lapsing-run")
    assert taken is not None
    assert (taken.worker, taken.attempt) == ("second", 1)
    assert first.claim("lapsing-run") is None, "and now the second worker holds it"


def test_a_held_claim_is_renewed_while_its_work_goes_on(own_store: Container) -> None:
    claims = RunClaims(own_store, worker="busy", lease_s=0.3)
    claim = claims.claim("long-run")
    assert claim is not None
    with claims.held(claim):
        deadline = time.monotonic() + 30
        while (latest := claims.latest("long-run")) is not None and latest.expires_at <= claim.expires_at:
            assert time.monotonic() < deadline, "the claim was never renewed"
            time.sleep(0.05)


@pytest.mark.parametrize("lease_s", [0, -1.0, float("nan"), "60"])
def test_a_lease_must_be_a_positive_number_of_seconds(own_store: Container, lease_s: object) -> None:
    with pytest.raises(InvalidClaimSettingsError, match="positive number of seconds"):
        RunClaims(own_store, lease_s=lease_s)  # type: ignore[arg-type]


def test_two_workers_analyse_every_run_once_between_them(
    own_store: Container, twin_run: Callable[..., str]
) -> None:
    uids = [
        twin_run(
            own_store,
            "saxs",
            {"SDS": 0.02 + 0.01 * i, "PPG": 0.0, "NaCl": 0.0},
            campaign_id="two",
            exposure_s=5.0,
            seed=i,
        )
        for i in range(6)
    ]
    done: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def work(name: str) -> None:
        analyzer = Analyzer(
            own_store,
            AnalysisSettings(calibrations=twin_calibrations(), fit=False),
            claims=RunClaims(own_store, worker=name),
        )
        start.wait()

        def record(r: AnalysisRecord) -> None:
            done[name].append(r.run_uid)

        analyzer.catch_up(on_done=record)

    threads = [threading.Thread(target=work, args=(name,)) for name in done]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    analysed = done["a"] + done["b"]
    assert sorted(analysed) == sorted(uids), "every run analysed, none twice"
    records = AnalysisStore(own_store).records(campaign_id="two", with_curve=False)
    assert sorted(r.run_uid for r in records) == sorted(uids)
    claims = RunClaims(own_store)
    for uid in uids:
        latest = claims.latest(uid)
        assert latest is not None
        assert latest.attempt == 0, "each run was claimed once"
        assert uid in done[latest.worker], "by the worker that analysed it"


def test_the_claim_of_a_worker_that_died_on_this_host_is_taken_over_at_once(own_store: Container) -> None:
    import socket
    import subprocess

    from tandem.analysis.claims import Claim
    from tandem.catalog_layout import analysis_claims_node

    gone = subprocess.Popen(["true"])
    gone.wait()
    now = time.time()
    dead = Claim("orphan-run", 0, "dead-worker", now, now + 3600, socket.gethostname(), gone.pid)
    analysis_claims_node(own_store).create_container(dead.key, metadata=dead.to_metadata())
    elsewhere = Claim("remote-run", 0, "remote-worker", now, now + 3600, "another-host", gone.pid)
    analysis_claims_node(own_store).create_container(elsewhere.key, metadata=elsewhere.to_metadata())

    claims = RunClaims(own_store, worker="heir")
    taken = claims.claim("orphan-run")
    assert taken is not None
    assert (taken.worker, taken.attempt) == ("heir", 1)
    assert claims.claim("remote-run") is None, "another host's worker is trusted until its lease ends"
