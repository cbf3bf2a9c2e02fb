"""Hosts that share nothing but loopback addresses, on one machine.

Each host is a folder of its own: its processes get it as their home, temporary and data folder
and their working directory, and their configuration files are copies in it. `FileWatch` checks
that they keep to it: it samples the working directory and every open file of each host's
processes (a root process and all its descendants) while they run, and reports any path inside
the shared test folder that lies outside the host's own. What the hosts share is then only what
separate machines share: network addresses, and the installed software (the virtual environment,
read-only).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tandem.campaign.bundled import DEMO_FOLDER
from tandem.child_processes import descendants


@dataclass(frozen=True)
class Host:
    """One host's folder, and what its processes' environment says of it."""

    name: str
    folder: Path

    @classmethod
    def make(cls, root: Path, name: str) -> Host:
        folder = root / name
        (folder / "tmp").mkdir(parents=True)
        return cls(name, folder)

    def environ(self) -> dict[str, str]:
        """The variables that make a process this host's: its home, temporary and data folders."""
        return {
            "HOME": str(self.folder),
            "TMPDIR": str(self.folder / "tmp"),
            "TANDEM_DATA": str(self.folder / "data"),
            "MPLCONFIGDIR": str(self.folder / ".matplotlib"),
        }

    def demo_campaign(self, edit: Callable[[dict[str, Any]], None]) -> Path:
        """This host's copy of the bundled demo campaign and its decks, the campaign file edited by `edit`."""
        folder = shutil.copytree(DEMO_FOLDER, self.folder / "campaign")
        path = folder / "demo.yaml"
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data))
        return path


class FileWatch:
    """Samples, every `interval_s`, the working directory and open files of each host's processes.

    `strays()` lists what a host's process had open (or stood in) under `shared_root` outside the
    host's own folder; `seen` what it had open inside, so a test can tell the watch saw work.
    """

    def __init__(self, shared_root: Path, interval_s: float = 0.2) -> None:
        self.shared_root = shared_root.resolve()
        self.interval_s = interval_s
        self.seen: dict[str, set[Path]] = {}
        self._roots: list[tuple[Host, Callable[[], Iterable[int]]]] = []
        self._strays: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def watch(self, host: Host, pids: Callable[[], Iterable[int]]) -> None:
        """Watch the processes `pids()` names (asked at each sample) and all their descendants."""
        with self._lock:
            self._roots.append((host, pids))
            self.seen.setdefault(host.name, set())

    def strays(self) -> list[str]:
        with self._lock:
            return sorted(self._strays)

    @contextlib.contextmanager
    def running(self) -> Iterator[FileWatch]:
        thread = threading.Thread(target=self._sample_until_stopped, name="file-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=30)

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                roots = list(self._roots)
            for host, pids in roots:
                for pid in {p for root in pids() for p in (root, *descendants(root))}:
                    self._check(host, pid)

    def _check(self, host: Host, pid: int) -> None:
        proc = Path(f"/proc/{pid}")
        paths: list[Path] = []
        with contextlib.suppress(OSError):
            paths.append(Path((proc / "cwd").readlink()))
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    paths.append(Path(fd.readlink()))
        own = host.folder.resolve()
        for path in paths:
            if not path.is_relative_to(self.shared_root):
                continue
            with self._lock:
                if path.is_relative_to(own):
                    self.seen[host.name].add(path)
                else:
                    self._strays.add(f"{host.name} (pid {pid}): {path}")
