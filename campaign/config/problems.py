"""What is wrong with a campaign file and where: `Problem`, and `CampaignConfigError` that carries them.

Every check of a campaign file (the YAML, the schema, what the schema cannot see)
reports a `Problem` at a `KeyPath` in the document; the loader collects them all
into one `CampaignConfigError`, so a user fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tandem.errors import TandemError

#: a place in a campaign document: the keys and list indices from its root
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file: where, what, and what to change."""

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


class CampaignConfigError(TandemError, ValueError):
    """A campaign file that cannot run; `problems` holds every problem found, each with its place."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        n = len(self.problems)
        head = "the campaign file has 1 problem" if n == 1 else f"the campaign file has {n} problems"
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


__all__ = ["CampaignConfigError", "KeyPath", "Problem"]
