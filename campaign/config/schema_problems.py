"""The schema's verdicts in words: `tandem.schema_problems`, where a profile's loader finds them too."""

from __future__ import annotations

from tandem.schema_problems import huge_integers, schema_problem

__all__ = ["huge_integers", "schema_problem"]
