"""The live table a person at a station sees as each run goes: bluesky's `BestEffortCallback`.

A beamline scientist expects `RE(...)` to print the run's heading (scan id, uid), its
streams, and a table of the hinted readings of its primary stream (monitor counts,
temperature), as every bluesky profile does; the session subscribes one, named `bec`
as users know it: `bec.disable_table()` hides the table, `bec.enable_table()` shows it
again. Its plots stay off: the runs here are not motor scans, so a plot against time
says little (the session plots what does: a run's curve, `show_curve()`), and a
machine without a display would have nowhere to draw them. `bec.enable_plots()` turns
them on where there is a display. Only the interactive session has one: the campaign
runner and the queue server have no terminal to print to.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bluesky.callbacks.best_effort import BestEffortCallback


def has_display() -> bool:
    """Whether figures could be shown here: a desktop session (X11, Wayland, macOS, Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def live_table() -> BestEffortCallback:
    """A `BestEffortCallback` printing the table, with its plots off."""
    # imported here: it imports Matplotlib's pyplot, which the non-interactive uses never need
    from bluesky.callbacks.best_effort import BestEffortCallback

    # without a display there is no Qt event loop to hand documents to (Matplotlib would pick a
    # Qt backend only from the environment, and then fail to open a window)
    bec = BestEffortCallback(use_teleporter=None if has_display() else False)
    bec.disable_plots()
    return bec


def describe_live_table() -> str:
    """One line for the banner: what `bec` shows and how to switch it."""
    plots = "bec.enable_plots() draws them" if has_display() else "no display here to draw them"
    return f"bec: the live table of each run (bec.disable_table() hides it); plots off ({plots})"


__all__ = ["describe_live_table", "has_display", "live_table"]
