"""A campaign's station names its instrument: a known name, a profile file, or a profile inline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from text_edits import line_of, replaced_once
from text_edits import refused_campaign as refused

from tandem.campaign import load_campaign, load_campaign_data
from tandem.campaign.bundled import DEMO_FOLDER
from tandem.geometry import HC_KEV_A, DetectorGeometry
from tandem.instrument_profile import ProfileFacts
from tandem.instrument_profile_file import BUNDLED_PROFILES, bundled_profile
from tandem.sim.instruments import INSTRUMENTS, Instrument
from tandem.stations import Probe

DEMO_TEXT = (DEMO_FOLDER / "demo.yaml").read_text()
SAXS_PROFILE = (BUNDLED_PROFILES / "saxs.yaml").read_text()
#: the demo's components, named in the file, so that loading it needs none of the twin's
COMPONENTS = """components:
  - {name: H2O, formula: H2O, density_g_per_ml: 0.997, role: liquid}
  - {name: D2O, formula: D2O, density_g_per_ml: 1.104, role: liquid}
  - {name: SDS, formula: C12H25NaO4S, density_g_per_ml: 1.15, role: solute}
  - {name: PPG, formula: C51H104O18, density_g_per_ml: 1.005, role: solute}
  - {name: NaCl, formula: NaCl, density_g_per_ml: 2.165, role: solute}
"""


def _saxs_geometry(distance_mm: float) -> DetectorGeometry:
    return DetectorGeometry(981, 1043, 0.172, distance_mm, 490.5, 521.5, HC_KEV_A / 12.0, 1.5, 1.4e-4)


def _sans_geometry(distance_mm: float) -> DetectorGeometry:
    return DetectorGeometry(128, 128, 7.0, distance_mm, 64.5, 63.5, 6.0, 40.0, 0.10)


#: what the twin's instruments were before they came from profiles (tandem.sim.instruments, issue 14)
TWIN_FACTS = {
    "saxs": {
        "probe": Probe.XRAY,
        "energy_kev": 12.0,
        "wavelength_a": HC_KEV_A / 12.0,
        "solvent": ("H2O", "H2O", 0.997),
        "geometries": {"short": _saxs_geometry(1000.0), "long": _saxs_geometry(3000.0)},
        "default_configuration": "short",
        "exposure_limits_s": (0.001, 600.0),
        "temperature_limits_c": (5.0, 90.0),
        "time_costs": (30.0, 60.0, 1.0, 0.003, 0.05, 5.0, 60.0),
    },
    "sans": {
        "probe": Probe.NEUTRON,
        "energy_kev": None,
        "wavelength_a": 6.0,
        "solvent": ("D2O", "D2O", 1.104),
        "geometries": {
            "short": _sans_geometry(1500.0),
            "middle": _sans_geometry(5000.0),
            "long": _sans_geometry(12000.0),
        },
        "default_configuration": "middle",
        "exposure_limits_s": (1.0, 7200.0),
        "temperature_limits_c": (5.0, 80.0),
        "time_costs": (45.0, 300.0, 60.0, 2.0, 1.0, 2.0, 300.0),
    },
}
TIME_COSTS = (
    "sample_load_s",
    "configuration_change_s",
    "transmission_s",
    "readout_s",
    "shutter_s",
    "temperature_rate_c_per_min",
    "temperature_settle_s",
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for path in DEMO_FOLDER.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def edited(old: str, new: str, text: str = DEMO_TEXT) -> str:
    return replaced_once(text, old, new)


def test_the_bundled_profiles_give_exactly_the_facts_the_twin_had() -> None:
    for name, expected in TWIN_FACTS.items():
        for instrument in (INSTRUMENTS[name], bundled_profile(name)):
            assert instrument.probe is expected["probe"]
            assert (
                instrument.solvent.name,
                instrument.solvent.formula,
                instrument.solvent.density_g_per_ml,
            ) == (expected["solvent"])
            assert list(instrument.configurations) == list(expected["geometries"])
            assert instrument.default_configuration == expected["default_configuration"]
            assert instrument.exposure_limits_s == expected["exposure_limits_s"]
            assert instrument.temperature_limits_c == expected["temperature_limits_c"]
            assert tuple(getattr(instrument.time_costs, k) for k in TIME_COSTS) == expected["time_costs"]
        twin, profile = INSTRUMENTS[name], bundled_profile(name).profile
        assert (twin.energy_kev, twin.wavelength_a) == (expected["energy_kev"], expected["wavelength_a"])
        assert profile.beam_wavelength_a == expected["wavelength_a"]
        for config, geometry in expected["geometries"].items():
            assert twin.configuration(config).geometry == geometry
            assert profile.geometry(config) == geometry


def test_the_demo_loads_unchanged_on_the_twins_instruments() -> None:
    campaign = load_campaign(DEMO_FOLDER / "demo.yaml")
    for sid, station in campaign.stations.items():
        assert isinstance(station.instrument, Instrument)
        assert station.instrument.station == sid
        assert station.instrument.configurations == INSTRUMENTS[sid].configurations
    assert "instrument" not in campaign.to_dict()["stations"]["saxs"]


def _profile_file(folder: Path, name: str = "line.yaml", **changes: str) -> Path:
    text = SAXS_PROFILE
    for old, new in changes.items():
        text = text.replace(old, new)
    (folder / "profiles").mkdir(exist_ok=True)
    path = folder / "profiles" / name
    path.write_text(text)
    return path


def test_a_station_names_a_profile_file_relative_to_the_campaign(folder: Path) -> None:
    _profile_file(
        folder,
        **{"name: saxs": "name: line", "exposure_limits_s: [0.001, 600.0]": "exposure_limits_s: [0.01, 60]"},
    )
    text = edited(
        "  saxs:\n    probe: xray\n", "  saxs:\n    instrument: profiles/line.yaml\n    probe: xray\n"
    )
    (folder / "campaign.yaml").write_text(text)
    campaign = load_campaign(folder / "campaign.yaml")
    instrument = campaign.stations["saxs"].instrument
    assert isinstance(instrument, ProfileFacts)
    assert instrument.station == "line"
    assert instrument.exposure_limits_s == (0.01, 60.0)
    assert isinstance(campaign.stations["sans"].instrument, Instrument)
    # stored as data (as Tiled keeps it), the profile is inline and reads back anywhere
    data = campaign.to_dict()
    assert data["stations"]["saxs"]["instrument"]["name"] == "line"
    again = load_campaign_data(data, base=folder.parent)
    assert again.stations["saxs"].instrument.profile == instrument.profile


def test_a_station_inlines_its_profile(folder: Path) -> None:
    inline = yaml.safe_load(SAXS_PROFILE.replace("name: saxs", "name: inline"))
    flow = yaml.safe_dump(inline, default_flow_style=True, width=10**6).strip()
    text = edited("  saxs:\n    probe: xray\n", f"  saxs:\n    instrument: {flow}\n    probe: xray\n")
    (folder / "campaign.yaml").write_text(text)
    campaign = load_campaign(folder / "campaign.yaml")
    assert campaign.stations["saxs"].instrument.station == "inline"
    assert campaign.stations["saxs"].configurations == ("short", "long")


def test_a_bad_inline_profile_is_refused_at_its_line_in_the_campaign(folder: Path) -> None:
    text = edited(
        "  saxs:\n    probe: xray\n",
        "  saxs:\n    instrument:\n      name: inline\n      probe: gamma\n    probe: xray\n",
    )
    (folder / "campaign.yaml").write_text(text)
    problems = {p.key: p for p in refused(folder / "campaign.yaml").problems}
    assert problems["stations.saxs.instrument.probe"].line == line_of(text, "probe: gamma")
    assert "'xray' or 'neutron'" in problems["stations.saxs.instrument.probe"].message
    # the keys it lacks are named too, each where it should be
    assert "stations.saxs.instrument.configurations" in problems
    assert all(p.source == str(folder / "campaign.yaml") for p in problems.values())


def test_a_bad_profile_file_is_refused_at_its_line_in_the_profile(folder: Path) -> None:
    path = _profile_file(folder, **{"robot: {backend: chatterbox}": "robot: {backend: beckman_biomek}"})
    text = edited(
        "  saxs:\n    probe: xray\n", "  saxs:\n    instrument: profiles/line.yaml\n    probe: xray\n"
    )
    (folder / "campaign.yaml").write_text(text)
    (problem,) = refused(folder / "campaign.yaml").problems
    assert problem.source == str(path)
    assert problem.key == "robot.backend"
    assert problem.line == line_of(path.read_text(), "robot:")
    assert "unknown robot backend 'beckman_biomek'" in problem.message


def test_a_profile_file_that_is_not_there_is_refused_at_the_campaigns_line(folder: Path) -> None:
    text = edited(
        "  saxs:\n    probe: xray\n", "  saxs:\n    instrument: profiles/nowhere.yaml\n    probe: xray\n"
    )
    (folder / "campaign.yaml").write_text(text)
    (problem,) = refused(folder / "campaign.yaml").problems
    assert problem.key == "stations.saxs.instrument"
    assert problem.line == line_of(text, "nowhere.yaml")
    assert f"no instrument profile at {str(folder / 'profiles' / 'nowhere.yaml')!r}" in problem.message
    assert "relative to the campaign file" in problem.hint


def test_a_station_probe_that_contradicts_its_profile_is_refused(folder: Path) -> None:
    _profile_file(folder)
    text = edited(
        "  saxs:\n    probe: xray\n", "  saxs:\n    instrument: profiles/line.yaml\n    probe: neutron\n"
    )
    (folder / "campaign.yaml").write_text(text)
    (problem,) = refused(folder / "campaign.yaml").problems
    assert problem.key == "stations.saxs.probe"
    assert problem.line == line_of(text, "instrument: profiles/line.yaml") + 1
    assert "instrument 'saxs' uses xray, not neutron" in problem.message


def test_an_unknown_instrument_name_lists_the_known_and_the_other_ways(folder: Path) -> None:
    text = edited("  saxs:\n    probe: xray\n", "  saxs:\n    instrument: waxs\n    probe: xray\n")
    (folder / "campaign.yaml").write_text(text)
    (problem,) = refused(folder / "campaign.yaml").problems
    assert problem.message == "no instrument named 'waxs'; known: saxs, sans"
    assert "a profile file" in problem.hint


def _epics_campaign(folder: Path) -> Path:
    for station in ("saxs", "sans"):
        text = (BUNDLED_PROFILES / f"{station}.yaml").read_text()
        text = text.replace(f"name: {station}", f"name: {station}_line").replace(
            "backend: twin", "backend: epics"
        )
        (folder / f"{station}_line.yaml").write_text(text)
    text = edited("space:\n", COMPONENTS + "\nspace:\n")
    text = edited("    probe: xray\n", "    instrument: saxs_line.yaml\n", text)
    text = edited("    probe: neutron\n", "    instrument: sans_line.yaml\n", text)
    path = folder / "campaign.yaml"
    path.write_text(text)
    return path


def test_a_campaign_on_epics_profiles_loads_no_line_of_the_twin(folder: Path) -> None:
    path = _epics_campaign(folder)
    code = (
        "import sys; from tandem.campaign import load_campaign; "
        f"campaign = load_campaign({str(path)!r}); "
        "assert {s.instrument.backend for s in campaign.stations.values()} == {'epics'}; "
        "print(sorted(m for m in sys.modules if m.startswith('tandem.sim')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_profiles_calibration_is_read_as_tandem_analyze_reads_it(folder: Path) -> None:
    path = _profile_file(folder, **{"    q_range_inv_a: [0.0092, 0.74]": "    calibration: short.json"})
    (folder / "profiles" / "short.json").write_text('{"saxs": {"detector_efficiency": 1.5}}')
    text = edited(
        "  saxs:\n    probe: xray\n", "  saxs:\n    instrument: profiles/line.yaml\n    probe: xray\n"
    )
    (folder / "campaign.yaml").write_text(text)
    (problem,) = refused(folder / "campaign.yaml").problems
    assert problem.source == str(path)
    assert problem.key == "configurations.short.calibration"
    assert problem.line == line_of(path.read_text(), "calibration: short.json")
    assert "detector efficiency is at most 1" in problem.message

    (folder / "profiles" / "short.json").write_text('{"saxs": {"detector_efficiency": 0.9}}')
    campaign = load_campaign(folder / "campaign.yaml")
    assert (
        campaign.stations["saxs"].instrument.calibration_path("short") == folder / "profiles" / "short.json"
    )
