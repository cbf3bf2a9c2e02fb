"""The files a user names: reading them safely, and values made ready to write as JSON.

Reading: the small text files a user names (campaign, deck, daemon and calibration files).

`read_text` refuses what would hang or exhaust the process before reading a byte: a path that
is not a regular file (``/dev/zero``, a FIFO, a terminal) or one larger than any such file
could sensibly be. It raises `InputFileError`, an `OSError` too, so that callers that already
turn a failed read into their own typed error keep doing so.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tandem.errors import TandemError

#: the largest configuration file tandem reads (the demo's campaign file and decks are a few kB)
MAX_INPUT_BYTES = 4 * 1024 * 1024


class InputFileError(TandemError, OSError):
    """A file that tandem will not read: not a regular file, or too large. Nothing was read."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cannot read the file"


def read_text(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", max_bytes: int = MAX_INPUT_BYTES
) -> str:
    """The text of the regular file `path`; `InputFileError` for anything else or anything larger.

    An `OSError` of the read itself (missing, no permission) passes through unchanged.
    """
    p = Path(path)
    info = p.stat()  # follows links: a link to a regular file is read
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(
            f"{p} is not a regular file ({_kind(info.st_mode)}); give the path of a text file"
        )
    if info.st_size > max_bytes:
        raise InputFileError(
            f"{p} is {info.st_size:,} bytes, more than the {max_bytes:,} a configuration file may have"
        )
    with p.open("rb") as handle:
        # at most one byte more than allowed: a file that grows while read is caught too
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputFileError(f"{p} grew beyond the {max_bytes:,} bytes a configuration file may have")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{p} is not a text file ({encoding}): byte {exc.start} is not text") from None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def json_ready(value: Any) -> Any:
    """`value` as strict JSON takes it: NaN and infinities become null (JSON has neither), numpy
    scalars and arrays plain numbers and lists, paths text, mapping keys text."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


__all__ = ["MAX_INPUT_BYTES", "InputFileError", "json_ready", "read_text"]
