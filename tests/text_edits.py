"""Helpers of the tests that edit a good file into a bad one and look for the line an error names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.campaign import CampaignConfigError, load_campaign


def replaced_once(text: str, old: str, new: str) -> str:
    """`text` with its one `old` replaced by `new` (a test's edit must not hit two places)."""
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line holding `needle`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def refused_campaign(path: Path) -> CampaignConfigError:
    """The error loading the campaign file at `path` raises (it must raise one)."""
    with pytest.raises(CampaignConfigError) as info:
        load_campaign(path)
    return info.value
