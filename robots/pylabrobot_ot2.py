"""Several OT-2s in one process: each call goes to its own robot.

PyLabRobot's `OpentronsOT2Backend` talks HTTP through `ot_api`
(opentrons-http-api-client), which keeps the robot's host, port and run id in
module globals: the last OT-2 set up would receive every robot's commands. A
campaign drives both stations' robots in one process, so `OtApiSession` points
`ot_api` at its robot for the length of each call, under one process-wide lock,
and remembers the run id that robot's setup created. OT-2 calls of different
robots are thereby serialised; each robot's event loop waits its turn.

Backends that do not use `ot_api` (PyLabRobot's OT-2 chatterbox and simulator,
every other robot) get a session that does nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from pylabrobot.liquid_handling.backends import (
    OpentronsOT2Backend,
    OpentronsOT2ChatterboxBackend,
    OpentronsOT2Simulator,
)

_OT_API = threading.Lock()


class OtApiSession:
    """Points `ot_api` at one robot for each call made inside `pointed()`."""

    def __init__(self, robot: Any) -> None:
        self.robot = robot
        self.uses_ot_api = isinstance(robot, OpentronsOT2Backend) and not isinstance(
            robot, (OpentronsOT2ChatterboxBackend, OpentronsOT2Simulator)
        )
        self.run_id: str | None = None

    @contextlib.contextmanager
    def pointed(self) -> Iterator[None]:
        if not self.uses_ot_api:
            yield
            return
        import ot_api  # present: the backend could not have been made without it

        with _OT_API:
            ot_api.set_host(self.robot.host)
            ot_api.set_port(self.robot.port)
            ot_api.set_run(self.run_id)
            try:
                yield
            finally:
                # setup creates the run; stop leaves it for the next setup to replace
                self.run_id = ot_api.run_id


__all__ = ["OtApiSession"]
