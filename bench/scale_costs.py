"""What the scale bench's runs cost: CPU seconds of a process, the Tiled server's request counters,
and those sampled each tenth of a run (`Costs`), so that a cost per sample that grows shows."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tandem.tiled_endpoint import TiledEndpoint

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / CLK_TCK


_REQUEST_METRIC = re.compile(r"^tiled_request_duration_seconds_(count|sum)\{([^}]*)\} ([0-9.e+-]+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def request_counts(endpoint: TiledEndpoint) -> dict[str, float]:
    """Requests the server has answered so far and the seconds it spent on them, by method and route
    (its Prometheus counters): keys "count GET search", "sum GET search", ..."""
    response = httpx.get(
        f"{endpoint.api_uri}/metrics", headers={"Authorization": f"Apikey {endpoint.api_key}"}, timeout=30
    )
    response.raise_for_status()
    counts: dict[str, float] = {}
    for kind, labels, value in _REQUEST_METRIC.findall(response.text):
        label = dict(_LABEL.findall(labels))
        key = f"{kind} {label.get('method', '?')} {label.get('endpoint', '?')}"
        counts[key] = counts.get(key, 0.0) + float(value)
    return counts


@dataclass
class Costs:
    """Server CPU, workers' CPU and server requests so far, sampled each time another tenth of the
    runs is seen analysed: the cost per sample in the campaign's first and last tenth."""

    server_pid: int
    worker_pids: list[int]
    endpoint: TiledEndpoint
    every: int
    marks: list[tuple[int, float, float, float]] = field(default_factory=list)

    def mark(self, n: int) -> None:
        """Record the costs if `n` is another tenth of the runs on from the last record."""
        if not self.marks or n >= self.marks[-1][0] + self.every:
            self.record(n)

    def record(self, n: int) -> None:
        requests = sum(v for k, v in request_counts(self.endpoint).items() if k.startswith("count "))
        workers = sum(cpu_s(pid) for pid in self.worker_pids)
        self.marks.append((n, cpu_s(self.server_pid), workers, requests))

    def per_sample(self, which: int) -> tuple[float, float, float]:
        """Server CPU s, workers' CPU s and requests per sample between marks `which` and `which + 1`
        (0 the first stretch, -2 the last)."""
        (n0, s0, w0, r0), (n1, s1, w1, r1) = self.marks[which], self.marks[which + 1 if which >= 0 else -1]
        dn = max(n1 - n0, 1)
        return (s1 - s0) / dn, (w1 - w0) / dn, (r1 - r0) / dn
