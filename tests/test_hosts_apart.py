"""The watch that keeps the end-to-end test's hosts apart sees a process stray into another host."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hosts_apart import FileWatch, Host


def test_a_process_in_another_hosts_folder_is_a_stray_and_one_in_its_own_is_not(tmp_path: Path) -> None:
    station, worker = Host.make(tmp_path, "station"), Host.make(tmp_path, "worker")
    (worker.folder / "held.txt").write_text("the worker's")
    watch = FileWatch(tmp_path, interval_s=0.05)
    hold = [sys.executable, "-c", "import sys, time; f = open(sys.argv[1]); time.sleep(60)"]
    held = str(worker.folder / "held.txt")
    # the station's process stands in its own folder but holds a file of the worker's
    stray = subprocess.Popen([*hold, held], cwd=station.folder)
    own = subprocess.Popen([*hold, held], cwd=worker.folder)
    watch.watch(station, lambda: [stray.pid])
    watch.watch(worker, lambda: [own.pid])
    try:
        with watch.running():
            deadline = time.monotonic() + 30
            while not watch.strays() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # a few more samples of the worker's process
    finally:
        for process in (stray, own):
            process.kill()
            process.wait()
    assert watch.strays() == [f"station (pid {stray.pid}): {worker.folder.resolve() / 'held.txt'}"]
    assert worker.folder.resolve() / "held.txt" in watch.seen["worker"]
    assert station.folder.resolve() in watch.seen["station"]  # its working directory
