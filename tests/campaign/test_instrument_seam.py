"""A campaign's stations are checked against the instruments it is given (the twin's by default)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tandem.campaign import CampaignConfigError, load_campaign
from tandem.campaign.bundled import DEMO_FOLDER
from tandem.components import Component, Components
from tandem.instrument import InstrumentFacts, TimeCostFacts
from tandem.sim.instruments import INSTRUMENTS, Instrument
from tandem.sim.system_phases import DEFAULT_COMPONENTS
from tandem.stations import Probe

CONFIG = Path(__file__).parents[2] / "campaign" / "config"


@dataclass(frozen=True)
class Costs:
    sample_load_s: float = 30.0
    transmission_s: float = 5.0
    readout_s: float = 0.1
    shutter_s: float = 0.05


@dataclass(frozen=True)
class Profile:
    """An instrument that is not the twin's: only the facts a campaign asks for."""

    station: str
    probe: Probe
    solvent: Component
    configurations: tuple[str, ...]
    default_configuration: str
    exposure_limits_s: tuple[float, float]
    temperature_limits_c: tuple[float, float]
    time_costs: Costs = Costs()

    def for_campaign(self, components: Components, solvent: Component) -> Profile:
        return self


PROFILES = {
    "saxs": Profile(
        "saxs", Probe.XRAY, DEFAULT_COMPONENTS["H2O"], ("short", "long"), "short", (0.01, 100.0), (5.0, 80.0)
    ),
    "sans": Profile(
        "sans",
        Probe.NEUTRON,
        DEFAULT_COMPONENTS["D2O"],
        ("short", "middle", "long"),
        "middle",
        (1.0, 1000.0),
        (5.0, 80.0),
    ),
}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    for path in DEMO_FOLDER.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / "demo.yaml"


def test_the_twins_instrument_has_the_facts_a_campaign_asks() -> None:
    for instrument in INSTRUMENTS.values():
        assert isinstance(instrument, Instrument)
        assert isinstance(instrument, InstrumentFacts)
        assert isinstance(instrument.time_costs, TimeCostFacts)
        assert instrument.default_configuration in instrument.configurations
        assert isinstance(instrument.for_campaign(instrument.components, instrument.solvent), Instrument)
    assert isinstance(PROFILES["saxs"], InstrumentFacts)


def test_without_instruments_the_twins_are_used(demo: Path) -> None:
    campaign = load_campaign(demo)
    assert all(isinstance(s.instrument, Instrument) for s in campaign.stations.values())


def test_a_campaign_is_checked_against_the_instruments_it_is_given(demo: Path) -> None:
    # the demo's SANS exposures reach 1800 s; this SANS allows 1000 s at most
    with pytest.raises(CampaignConfigError) as info:
        load_campaign(demo, instruments=PROFILES)
    (problem,) = info.value.problems
    assert problem.key == "stations.sans.scan.exposure_s.max"
    assert "1800 s is outside what 'sans' allows (1 to 1000 s)" in problem.message

    longer = {**PROFILES, "sans": replace(PROFILES["sans"], exposure_limits_s=(1.0, 7200.0))}
    campaign = load_campaign(demo, instruments=longer)
    assert campaign.stations["sans"].instrument is longer["sans"]
    assert campaign.stations["sans"].default_configuration == "middle"
    assert campaign.stations["saxs"].probe is Probe.XRAY


def test_a_station_naming_no_known_instrument_says_which_are_known(demo: Path) -> None:
    with pytest.raises(CampaignConfigError) as info:
        load_campaign(demo, instruments={"saxs": PROFILES["saxs"]})
    messages = [p.message for p in info.value.problems]
    assert "no instrument named 'sans'; known: saxs" in messages


def _sim_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tandem.sim"):
            found.append(node.module or "")
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("tandem.sim")]
    return found


def test_only_the_twin_wiring_module_names_the_twin() -> None:
    naming = {p.name for p in CONFIG.glob("*.py") if _sim_imports(p)}
    # agent_checks checks the file's `twin:` section, the twin's own configuration
    assert naming == {"twin.py", "agent_checks.py"}
    assert set(_sim_imports(CONFIG / "agent_checks.py")) <= {"tandem.sim.truth", "tandem.sim.scattering"}


def test_importing_the_campaign_checks_loads_no_line_of_the_twin() -> None:
    code = (
        "import sys, tandem.campaign.config; "
        "print(sorted(m for m in sys.modules if m.startswith('tandem.sim')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
