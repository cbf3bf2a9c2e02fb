"""Names shared by every part that talks about a station and what it measures with."""

from __future__ import annotations

from enum import StrEnum


class Probe(StrEnum):
    """What a station scatters: it sets the contrast (X-ray or neutron SLDs)."""

    XRAY = "xray"
    NEUTRON = "neutron"


#: The two stations of the default linked lab. Station ids are plain strings so
#: that a facility can name more; these are the ones the twin and demo know.
SAXS = "saxs"
SANS = "sans"
