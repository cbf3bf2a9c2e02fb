"""Where the profiles that ship with tandem are: the IPython profile of a station session and the
queue server's startup folder (`profiles/` in a checkout, package data in an install)."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

#: the bundled profiles' folder
PROFILES = Path(str(files("tandem") / "profiles"))
#: the IPython profile of a station session (`tandem shell`)
IPYTHON_PROFILE = PROFILES / "ipython" / "profile_tandem"
#: the queue server's startup script and user permissions (`start-re-manager --startup-dir`)
QUEUESERVER_PROFILE = PROFILES / "queueserver"


def writable_ipython_profile(source: Path, data: Path) -> Path:
    """A copy of the IPython profile `source` in the session's data folder, where IPython may write.

    IPython keeps its own state (logs, pids, security files) in the profile folder, and an installed
    package's folder is not the place for that. The configuration and startup files are copied anew
    each time, so the session always runs the profile given.
    """
    target = data.absolute() / "ipython-profile"
    (target / "startup").mkdir(parents=True, exist_ok=True)
    for config in source.glob("*.py"):
        shutil.copyfile(config, target / config.name)
    for script in (source / "startup").glob("*.py"):
        shutil.copyfile(script, target / "startup" / script.name)
    return target
