"""`tandem campaign` as a process of its own, for tests that kill it or its parts (shared helpers)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from tandem.campaign.bundled import DEMO_FOLDER
from tandem.campaign.ledger import Ledger, LedgerEntry, SampleStatus
from tandem.child_processes import terminate
from tandem.tiled_directory import find_running_server
from tandem.tiled_server import EmbeddedTiledServer

DEMO = DEMO_FOLDER


def campaign_file(
    folder: Path, campaign_id: str, budget: int, *, max_consecutive_failures: int = 50, **extra: object
) -> Path:
    """The demo campaign with its decks in `folder`, on a budget of `budget` samples."""
    for deck in ("saxs_deck.yaml", "sans_deck.yaml"):
        shutil.copy(DEMO / deck, folder / deck)
    spec = yaml.safe_load((DEMO / "demo.yaml").read_text())
    spec["id"] = campaign_id
    spec["stop"] = {"max_samples": budget, "max_consecutive_failures": max_consecutive_failures}
    spec.update(extra)
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def start_campaign(config: Path, data: Path, *, resume: bool = False) -> subprocess.Popen[bytes]:
    """`tandem campaign run` (or `resume`) in its own process."""
    verb = "resume" if resume else "run"
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "tandem.cli", "campaign", verb, str(config), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so that a test can kill the campaign with its IOCs and server at once
    )


def samples_done(data: Path, campaign_id: str, status: SampleStatus | None = None) -> int:
    """Samples with a result (of `status`) in a running campaign's ledger (0 before it exists)."""
    endpoint = find_running_server(data / "tiled")
    if endpoint is None:
        return 0
    try:
        entries = Ledger.open(endpoint.connect(), campaign_id).entries()
    except Exception:  # the ledger is not written yet, or the server is between lives
        return 0
    return sum(e.done and (status is None or e.status is status) for e in entries)


def wait_for_samples(
    process: subprocess.Popen[bytes],
    data: Path,
    campaign_id: str,
    n: int,
    *,
    status: SampleStatus | None = SampleStatus.MEASURED,
    timeout_s: float = 600,
) -> None:
    deadline = time.monotonic() + timeout_s
    while samples_done(data, campaign_id, status) < n:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        assert time.monotonic() < deadline, "the campaign made no progress"
        time.sleep(0.5)


def stop(process: subprocess.Popen[Any]) -> None:
    """Stop a process a test started: SIGTERM, then SIGKILL if it has not exited within 30 s."""
    terminate(process, 30.0)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the campaign and everything it started (its session), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def finish(process: subprocess.Popen[bytes], timeout_s: float = 600) -> str:
    """The campaign's output once it ended by itself; whatever is left of it is killed after."""
    try:
        output, _ = process.communicate(timeout=timeout_s)
    finally:
        kill_group(process)
    return output.decode()


def child_serving(process: subprocess.Popen[bytes], marker: str) -> psutil.Process:
    """The campaign's child process whose command line holds `marker` (an IOC prefix, a module)."""
    for child in psutil.Process(process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if marker in " ".join(child.cmdline()):
                return child
    raise AssertionError(f"no process of the campaign's has {marker!r} in its command line")


def ledger_entries(data: Path, campaign_id: str) -> list[LedgerEntry]:
    """The ledger of a campaign that has stopped (its catalog served for the reading)."""
    with EmbeddedTiledServer(data / "tiled") as endpoint:
        return Ledger.open(endpoint.connect(), campaign_id).entries()
