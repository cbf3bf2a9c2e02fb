"""YAML with line marks, as the campaign reads it: `tandem.yaml_marks`, raising `CampaignConfigError`.

The reader lives in the core (instrument profiles are read below the campaign too); here its
problems become the campaign's error, which the campaign's checks collect.
"""

from __future__ import annotations

from typing import Any

from tandem.file_problems import FileProblemsError
from tandem.yaml_marks import Marks
from tandem.yaml_marks import read_yaml as _read_yaml

from .problems import CampaignConfigError


def read_yaml(text: str, source: str) -> tuple[Any, Marks]:
    """The YAML's data and its marks; a `CampaignConfigError` for bad syntax or a key given twice."""
    try:
        return _read_yaml(text, source)
    except FileProblemsError as exc:
        raise CampaignConfigError(exc.problems) from None


__all__ = ["read_yaml"]
