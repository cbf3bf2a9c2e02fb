"""Keep PyLabRobot's chatter off a user's terminal: tandem's terminal shows tandem's output only.

PyLabRobot's chatterbox backends `print()` every command (that is what they are
for), and its `pylabrobot` logger has no handler, so Python's last-resort handler
would write its warnings to stderr. tandem drives PyLabRobot from its own event
loop threads (named `LOOP_THREAD_PREFIX-n`); `quiet` routes what PyLabRobot prints
from those threads, and everything it logs, to tandem's logger at DEBUG level,
where `logging` configuration (not the terminal) decides what is kept.

The print is replaced in the PyLabRobot modules that print (the backend's classes
and the front end), and only for calls from tandem's loop threads: someone using
the chatterbox directly in the same process still sees it talk.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from typing import Any

LOOP_THREAD_PREFIX = "tandem-pylabrobot"
logger = logging.getLogger("tandem.robots.pylabrobot")


def _print(
    *values: object, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    if file is None and threading.current_thread().name.startswith(LOOP_THREAD_PREFIX):
        logger.debug("%s", (" " if sep is None else sep).join(str(v) for v in values))
    else:
        builtins.print(*values, sep=sep, end=end, file=file, flush=flush)


class _ToTandem(logging.Handler):
    """Re-logs PyLabRobot's records on tandem's logger at DEBUG, naming their level."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("%s %s: %s", record.name, record.levelname, record.getMessage())


def quiet(backend_class: type) -> None:
    """Route the chatter of PyLabRobot's front end and of `backend_class` to tandem's logger."""
    names = {c.__module__ for c in backend_class.__mro__ if c.__module__.startswith("pylabrobot")}
    names.add("pylabrobot.liquid_handling.liquid_handler")
    for name in names:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "print", None) is not _print:
            module.print = _print  # type: ignore[attr-defined]  # shadows the builtin in that module only
    plr_logger = logging.getLogger("pylabrobot")
    if not any(isinstance(h, _ToTandem) for h in plr_logger.handlers):
        plr_logger.addHandler(_ToTandem())


__all__ = ["LOOP_THREAD_PREFIX", "quiet"]
