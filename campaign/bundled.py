"""The campaign that ships with tandem: `tandem campaign demo` runs it, and a new campaign starts as a copy.

It is package data, so an installed tandem finds it as a checkout does.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: the demo campaign file; its two decks lie beside it
DEMO_CAMPAIGN = Path(str(files("tandem.campaign") / "demo" / "demo.yaml"))
#: the folder holding the demo campaign and its decks
DEMO_FOLDER = DEMO_CAMPAIGN.parent
