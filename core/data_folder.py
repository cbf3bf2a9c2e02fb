"""Data folders: how tandem knows a folder is its own before it writes into it or clears it.

A campaign's data folder (``tandem campaign run --data``, ``tandem campaign demo --data``) holds the
Tiled catalog (``tiled/``), the report (``report/``) and plots (``plots/``). tandem
recognises a folder as one of its own by a marker file it writes when it takes the folder
into use, ``tandem-data.json`` (which campaign the folder holds, when, which version).
A folder from before the marker is recognised by its layout: ``tiled/catalog.db`` and no
entry but the ones tandem writes.

The rules, so that no user file is ever lost:

* a missing or empty folder is taken (created, marked);
* a tandem data folder is used as it is; other files in it are left alone;
* any other folder is refused with `DataFolderError`, and nothing is written to it;
* clearing (the demo starts afresh) removes only the entries tandem writes, never the folder
  itself nor anything else in it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tandem
from tandem.errors import TandemError
from tandem.tiled_directory import CATALOG_FILE, find_running_server

#: the marker file tandem writes into a data folder it takes into use
MARKER_FILE = "tandem-data.json"
#: the entries of a data folder that tandem writes (and `clear_data_folder` removes)
TANDEM_ENTRIES = ("tiled", "report", "plots")


class DataFolderError(TandemError, ValueError):
    """A data folder that tandem may not use as asked: nothing was written to it or removed from it."""


def is_data_folder(path: str | Path) -> bool:
    """Whether `path` is a tandem data folder: it holds the marker, or a catalog and nothing else."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    if (folder / MARKER_FILE).is_file():
        return True
    names = {entry.name for entry in folder.iterdir()}
    return (folder / "tiled" / CATALOG_FILE).is_file() and names <= set(TANDEM_ENTRIES)


def read_marker(path: str | Path) -> Mapping[str, Any]:
    """What the marker of `path` records (empty for a folder without one, or an unreadable one)."""
    try:
        data = json.loads((Path(path) / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def marked_campaign(path: str | Path) -> str | None:
    """The campaign id the folder's marker names, if it names one."""
    campaign_id = read_marker(path).get("campaign_id")
    return campaign_id if isinstance(campaign_id, str) else None


def check_data_folder(path: str | Path) -> Path:
    """`path` if tandem may take it as a data folder (missing, empty, or tandem's); writes nothing.

    Raises `DataFolderError` for a file, or for a non-empty folder that is not a tandem data folder.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise DataFolderError(f"the data folder {folder} is a file; give a folder (new, empty, or tandem's)")
    if folder.is_dir() and not is_data_folder(folder):
        foreign = sorted(entry.name for entry in folder.iterdir())
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise DataFolderError(
                f"{folder} is not a tandem data folder (no {MARKER_FILE}) and is not empty: it holds "
                f"{len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} ({shown}); tandem leaves it "
                "alone. Give a new or empty folder, or one tandem made"
            )
    return folder


def claim_data_folder(path: str | Path, *, campaign_id: str | None = None) -> Path:
    """Take `path` into use as a data folder: created if missing, marked if new, refused if foreign.

    `campaign_id` is recorded in the marker of a folder that holds no catalog yet (the folder
    becomes that campaign's). Raises `DataFolderError` for a file, or for a non-empty folder that is
    not a tandem data folder; nothing is written then.
    """
    folder = check_data_folder(path)
    folder.mkdir(parents=True, exist_ok=True)
    marker = dict(read_marker(folder))
    # the folder becomes the campaign's only while it holds no catalog: a catalog is its own witness
    fresh = not (folder / "tiled" / CATALOG_FILE).exists()
    if not marker or (fresh and campaign_id is not None and marker.get("campaign_id") != campaign_id):
        marker = {
            "tandem_data_folder": 1,
            "campaign_id": campaign_id if fresh else marker.get("campaign_id"),
            "created": marker.get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
            "tandem_version": tandem.__version__,
        }
        (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
    return folder


def clear_data_folder(path: str | Path) -> list[Path]:
    """Remove what tandem wrote in the data folder `path` (catalog, report, plots); return what went.

    The folder, its marker and every other entry stay. A missing folder is nothing to clear.
    Refuses (`DataFolderError`) a folder that is not a tandem data folder, and one whose catalog a
    Tiled server still serves.
    """
    folder = Path(path)
    if not folder.exists():
        return []
    if not is_data_folder(folder):
        check_data_folder(folder)  # raises the error that says why (a file, or a foreign folder)
        return []  # an empty folder
    running = find_running_server(folder / "tiled")
    if running is not None:
        raise DataFolderError(
            f"a Tiled server still serves {folder / 'tiled'} at {running.url}; stop it "
            f"(`tandem data stop --directory {folder}`) before clearing the folder"
        )
    removed = []
    for name in TANDEM_ENTRIES:
        entry = folder / name
        if entry.is_symlink() or entry.is_file():
            entry.unlink()  # a link: the link only, never what it points to
        elif entry.is_dir():
            shutil.rmtree(entry)
        else:
            continue
        removed.append(entry)
    return removed


__all__ = [
    "MARKER_FILE",
    "TANDEM_ENTRIES",
    "DataFolderError",
    "check_data_folder",
    "claim_data_folder",
    "clear_data_folder",
    "is_data_folder",
    "marked_campaign",
    "read_marker",
]
