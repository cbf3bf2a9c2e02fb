"""Kill points: fault injection that kills the campaign's own process (SIGKILL) at a chosen step.

A campaign must survive being killed anywhere: nothing that matters lives only in its memory
(DESIGN.md). The fault-injection tests and `bench/bench_soak.py` prove it by killing
`tandem campaign` at each step of a sample and resuming it. Killing from outside hits random
instants; a kill point hits one step exactly. Set

    TANDEM_KILL_AT=<point>:<n>

and the n-th time the process passes `<point>` it sends itself SIGKILL, as a power cut there
would (no `finally`, no flush). Unset (always, outside such tests), every hook is a no-op.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

from tandem.errors import TandemError

KILL_AT_ENV = "TANDEM_KILL_AT"

#: every kill point, with the step of a sample it stands for
KILL_POINTS: Mapping[str, str] = {
    "decided": "the agent has decided; the decision is on its way to the ledger, nothing has run",
    "prepared": "the robot has mixed the sample; the cell is not loaded yet",
    "measuring": "the scattering exposure is being recorded (a measurement event)",
    "measured": "the run has ended in the RunEngine; its documents may not be in Tiled yet",
    "written": "the station's Tiled writer is about to store the run's stop document",
    "analysed": "analysis has labelled the run; its analysed node may not be written",
    "recorded": "everything is in Tiled but the sample's ledger entry is not yet complete",
}

#: the RunEngine documents that stand for a kill point: (document name, stream or None) -> point
_DOCUMENT_POINTS = {("event", "preparation"): "prepared", ("event", "primary"): "measuring"}


class KillPointError(TandemError, ValueError):
    """`TANDEM_KILL_AT` does not name a kill point and a count."""


class KillPoints:
    """The hooks the campaign loop calls at each kill point (no-ops unless a point is armed)."""

    def __init__(self, spec: str | None = None) -> None:
        self.point: str | None = None
        self.at = 0
        self._passed: dict[str, int] = {}
        self._lock = threading.Lock()
        self._streams: dict[str, str] = {}
        if spec:
            point, _, count = spec.partition(":")
            if point not in KILL_POINTS or not count.isdigit() or int(count) < 1:
                raise KillPointError(
                    f"{KILL_AT_ENV}={spec!r}: expected <point>:<n> with n >= 1 and a point among "
                    f"{', '.join(KILL_POINTS)}"
                )
            self.point, self.at = point, int(count)

    @classmethod
    def from_environment(cls) -> KillPoints:
        return cls(os.environ.get(KILL_AT_ENV))

    @property
    def armed(self) -> bool:
        return self.point is not None

    def passed(self, point: str) -> None:
        """The process passes `point`: die here if this is the armed point's n-th pass."""
        if point != self.point:
            return
        with self._lock:
            self._passed[point] = self._passed.get(point, 0) + 1
            if self._passed[point] == self.at:
                os.kill(os.getpid(), signal.SIGKILL)

    def document(self, name: str, doc: Mapping[str, Any]) -> None:
        """A RunEngine callback: the kill points that are steps inside a run."""
        if not self.armed:
            return
        if name == "descriptor":
            self._streams[str(doc["uid"])] = str(doc.get("name"))
        elif name == "event":
            point = _DOCUMENT_POINTS.get(("event", self._streams.get(str(doc["descriptor"]), "")))
            if point is not None:
                self.passed(point)
        elif name == "stop":
            self._streams.clear()
            self.passed("measured")

    def wrap_writer(
        self, writer: Callable[[str, Mapping[str, Any]], Any]
    ) -> Callable[[str, Mapping[str, Any]], Any]:
        """The station's Tiled writer, passing `written` before each stop document it stores."""

        def write(name: str, doc: Mapping[str, Any]) -> Any:
            if name == "stop":
                self.passed("written")
            return writer(name, doc)

        return write
