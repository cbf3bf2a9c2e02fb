"""IPython configuration of a tandem station session (`tandem shell`, or `ipython --profile-dir=THIS_DIR`).

The station itself is opened by `startup/00-station.py`, from environment
variables (see there). This file keeps the command history in the
session's data folder.
"""

import os
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821 -- IPython provides it to config files

_data = Path(os.environ.get("TANDEM_DATA", "tandem-data")).absolute()
_data.mkdir(parents=True, exist_ok=True)
c.HistoryManager.hist_file = str(_data / "ipython-history.sqlite")

# `RE(plan(...))` is typed by hand: no autocall surprises, and errors read like Python's
c.InteractiveShell.autocall = 0
c.InteractiveShell.xmode = "Context"
# the banner of the station replaces IPython's
c.TerminalIPythonApp.display_banner = False
c.InteractiveShell.banner1 = ""
