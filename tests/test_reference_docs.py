"""docs/reference/ is generated from the code (scripts/reference.py): it must say what the code says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference", ROOT / "scripts" / "reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_pages_are_what_the_code_generates() -> None:
    generator = _generator()
    for name, text in generator.pages().items():
        page = ROOT / "docs" / "reference" / name
        assert page.exists(), f"{page} is missing: run `.venv/bin/python scripts/reference.py`"
        assert page.read_text() == text, f"{page} is stale: run `.venv/bin/python scripts/reference.py`"
        # a default computed from this checkout's location would make the page differ on every clone
        assert str(ROOT) not in text, f"{name} names a path of this checkout ({ROOT})"


def test_every_command_and_every_key_is_in_the_reference() -> None:
    pages = _generator().pages()
    for command in (
        "tandem campaign",
        "tandem campaign demo",
        "tandem agent run",
        "tandem station start",
        "tandem map",
    ):
        assert f"`{command}`" in pages["cli.md"]
    for key in ("max_station_hours", "set_aside_after_failures", "sample_volume_ul", "grid_points_per_axis"):
        assert f"`{key}`" in pages["campaign-file.md"]
    for key in ("dead_volume_ul", "tip_type", "balance"):
        assert f"`{key}`" in pages["deck-file.md"]
    for key in (
        "q_range_inv_a",
        "exposure_limits_s",
        "cell_loader_prefix",
        "beamstop_radius_mm",
        "calibration",
    ):
        assert f"`{key}`" in pages["instrument-profile.md"]
    for path in ("raw/<run uid>", "campaigns/<campaign id>/samples", "campaigns/<campaign id>/queue"):
        assert f"`{path}`" in pages["tiled-layout.md"]
