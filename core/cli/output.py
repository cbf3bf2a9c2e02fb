"""What the commands print: consoles that show user text as text, on any terminal encoding.

Rich reads `[...]` in a string as markup and `:name:` as an emoji code, so a campaign named
``SDS [/] PPG`` raised `MarkupError` and ``:x:`` became ❌. Every command prints through
`console()` (emoji codes off) and passes every string that came from the user — file
contents, names, ids, paths, error messages that quote them — through `esc`; a string a
command spells out itself may carry markup.

A terminal that cannot show a character (``PYTHONIOENCODING=ascii``, an old locale) gets an
ASCII stand-in ("µL" as "uL", "Å" as "A") instead of a `UnicodeEncodeError`:
`degrade_unencodable_output` installs that on stdout and stderr when the command starts.
"""

from __future__ import annotations

import codecs
import sys
import unicodedata
from typing import Any

from rich.console import Console
from rich.markup import escape

#: the name of the codec error handler that writes ASCII stand-ins
ERROR_HANDLER = "tandem.ascii-stand-in"
#: stand-ins for the symbols tandem prints, where a plain decomposition finds none
_STAND_INS = {
    "µ": "u",
    "μ": "u",
    "Å": "A",
    "°": "deg",
    "²": "^2",
    "³": "^3",
    "·": "-",
    "—": "-",
    "–": "-",
    "…": "...",
    "×": "x",
    "•": "*",
    "Δ": "d",
    "σ": "sigma",
    "χ": "chi",
    "ᵣ": "r",
    "±": "+/-",
    "≤": "<=",
    "≥": ">=",
    "→": "->",
    "←": "<-",
    "✓": "ok",
    "━": "-",
    "─": "-",
    "│": "|",
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
}


def esc(value: object) -> str:
    """`value` as a string that rich shows as it is (its `[` never read as markup)."""
    return escape(str(value))


def console(*, stderr: bool = False, **options: Any) -> Console:
    """A rich console for a command's output: emoji codes off (user text keeps its `:x:`)."""
    return Console(stderr=stderr, emoji=False, **options)


def ascii_stand_in(char: str) -> str:
    """What to print for `char` where it cannot be encoded: a stand-in, its letters, or '?'."""
    if char in _STAND_INS:
        return _STAND_INS[char]
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
    return plain or "?"


def _stand_in(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(ascii_stand_in(c) for c in text), error.end


def degrade_unencodable_output() -> None:
    """Make stdout and stderr print a stand-in for every character their encoding lacks."""
    try:
        codecs.lookup_error(ERROR_HANDLER)
    except LookupError:
        codecs.register_error(ERROR_HANDLER, _stand_in)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:  # a real text stream (not a test's capture buffer)
            reconfigure(errors=ERROR_HANDLER)


__all__ = ["ERROR_HANDLER", "ascii_stand_in", "console", "degrade_unencodable_output", "esc"]
