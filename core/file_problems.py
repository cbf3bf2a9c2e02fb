"""What is wrong with a file a user writes and where: `Problem`, and `FileProblemsError` that carries them.

Every check of a campaign file or an instrument profile (the YAML, the schema, what
the schema cannot see) reports a `Problem` at a `KeyPath` in the document; the
loader collects them all into one error (`tandem.campaign.CampaignConfigError`,
`tandem.instrument_profile.InstrumentProfileError`), so a user fixes a file in one
pass. It lives in the core because files are read by every layer: a profile by the
twin and the devices as much as by the campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from tandem.errors import TandemError

#: a place in a document: the keys and list indices from its root
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where, what, and what to change."""

    source: str
    key: str
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        hint = f" — {self.hint}" if self.hint else ""
        return f"{where}: {self.key or '(top level)'}: {self.message}{hint}"


class FileProblemsError(TandemError, ValueError):
    """A file that cannot be used; `problems` holds every problem found, each with its place."""

    #: what the file is, as the message names it
    what: ClassVar[str] = "file"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"the {self.what} has 1 problem" if n == 1 else f"the {self.what} has {n} problems"
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


__all__ = ["FileProblemsError", "KeyPath", "Problem"]
