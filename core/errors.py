"""The typed errors every part of tandem raises for bad input.

Each error says what was wrong and what would have been valid. They derive from
`ValueError` so that callers who only know "bad value" can still catch them, and
from `TandemError` so that the CLI can turn any of them into a clean message.
"""

from __future__ import annotations

from collections.abc import Iterable


class TandemError(Exception):
    """Base of every error tandem raises on purpose."""


class InvalidComponentError(TandemError, ValueError):
    """A component definition is malformed (bad formula, density, role)."""


class UnknownComponentError(TandemError, KeyError):
    """A name refers to a component that is not defined."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown component {self.name!r}; known components: {', '.join(self.known) or '(none)'}"


class InvalidCompositionError(TandemError, ValueError):
    """A composition is malformed or cannot be resolved in the requested basis."""
