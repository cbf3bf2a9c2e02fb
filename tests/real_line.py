"""A real SAXS line for tests: a campaign whose station names a profile file with `backend: epics`
(its PV prefixes, a robot, a calibration file), and the IOCs that stand in for the line's hardware."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tandem.campaign.bundled import DEMO_FOLDER
from tandem.campaign.session_config import EpicsPrefixes
from tandem.instrument_profile_file import BUNDLED_PROFILES
from tandem.sim.calibration import twin_calibration
from tandem.sim.instruments import INSTRUMENTS

_lines = itertools.count(1)

COMPONENTS = [
    {"name": "H2O", "formula": "H2O", "density_g_per_ml": 0.997, "role": "liquid"},
    {"name": "SDS", "formula": "C12H25NaO4S", "density_g_per_ml": 1.15, "role": "solute"},
    {"name": "PPG", "formula": "C51H104O18", "density_g_per_ml": 1.005, "role": "solute"},
    {"name": "NaCl", "formula": "NaCl", "density_g_per_ml": 2.165, "role": "solute"},
]


def line_prefixes() -> EpicsPrefixes:
    """Prefixes of a line no other test uses (nothing serves them until `serve_line`)."""
    line = next(_lines)
    return EpicsPrefixes(f"TST:SESLINE{line}:SAXS:", f"TST:SESLINE{line}:SAXS:CL:")


def write_line(folder: Path, prefixes: EpicsPrefixes, robot: dict[str, Any] | None = None) -> Path:
    """A campaign whose one station, saxs, is a real line: a profile file with `backend: epics`, its
    prefixes, a robot (the chatterbox by default) and a calibration file (the twin's numbers)."""
    shutil.copy(DEMO_FOLDER / "saxs_deck.yaml", folder / "saxs_deck.yaml")
    profile = yaml.safe_load((BUNDLED_PROFILES / "saxs.yaml").read_text())
    profile.update(
        name="saxs_line",
        backend="epics",
        epics={"station_prefix": prefixes.station, "cell_loader_prefix": prefixes.cell_loader},
        robot=robot or {"backend": "chatterbox"},
    )
    calibration = {"saxs_line": twin_calibration(INSTRUMENTS["saxs"]).to_dict()}
    (folder / "saxs_line_calibration.json").write_text(json.dumps(calibration))
    for configuration in profile["configurations"].values():
        configuration["calibration"] = "saxs_line_calibration.json"
    (folder / "saxs_line.yaml").write_text(yaml.safe_dump(profile))
    demo = yaml.safe_load((DEMO_FOLDER / "demo.yaml").read_text())
    station = demo["stations"]["saxs"]
    station.pop("probe")
    station["instrument"] = "saxs_line.yaml"
    demo["stations"] = {"saxs": station}
    demo.pop("twin")
    demo.update(id="saxs-line", components=COMPONENTS, agent={"kind": "space_filling", "seed": 3})
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    return path


@contextlib.contextmanager
def serve_line(ioc_factory: Any) -> Iterator[EpicsPrefixes]:
    """A SAXS line's IOCs on loopback (beamline and cell loader, never waiting); stopped on exit."""
    prefixes = line_prefixes()
    with (
        ioc_factory.serve(
            "tandem.sim.beamline_ioc:BeamlineIOC",
            prefix=prefixes.station,
            options={"station": "saxs", "time_scale": 0, "seed": 5},
        ),
        ioc_factory.serve(
            "tandem.sim.cell_loader_ioc:CellLoaderIOC", prefix=prefixes.cell_loader, options={"time_scale": 0}
        ),
    ):
        yield prefixes


__all__ = ["COMPONENTS", "line_prefixes", "serve_line", "write_line"]
