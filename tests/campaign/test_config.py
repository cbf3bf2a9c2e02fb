"""Campaign files: the demo loads; bad input is refused, pointing at its line and saying what to change."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from text_edits import line_of, replaced_once
from text_edits import refused_campaign as refused

from tandem.campaign import load_campaign, load_campaign_data
from tandem.campaign.bundled import DEMO_FOLDER
from tandem.campaign.config import AgentKind
from tandem.errors import TandemError
from tandem.reach import Halfspace, closest_mixture, polytope_vertices
from tandem.stations import Probe

EXAMPLES = DEMO_FOLDER
DEMO_TEXT = (EXAMPLES / "demo.yaml").read_text()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the example campaign folder (campaign file and its two deck files)."""
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def write(folder: Path, text: str, name: str = "campaign.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def edited(old: str, new: str, text: str = DEMO_TEXT) -> str:
    return replaced_once(text, old, new)


# --- the good campaign ------------------------------------------------------------------------


def test_the_demo_campaign_loads_with_decks_instruments_and_defaults() -> None:
    campaign = load_campaign(EXAMPLES / "demo.yaml")
    assert campaign.id == "demo-sds-ppg-nacl"
    assert campaign.solutes == ("SDS", "PPG", "NaCl")
    assert set(campaign.components) == {"H2O", "D2O", "SDS", "PPG", "NaCl"}  # the twin's, by default
    assert campaign.max_total == pytest.approx(0.25)
    saxs, sans = campaign.stations["saxs"], campaign.stations["sans"]
    assert (saxs.probe, saxs.solvent.name) == (Probe.XRAY, "H2O")
    assert (sans.probe, sans.solvent.name) == (Probe.NEUTRON, "D2O")
    assert {s.name for s in saxs.deck.stocks} == {"h2o", "sds_30wt", "ppg_40wt", "nacl_20wt"}
    assert saxs.deck_path == (EXAMPLES / "saxs_deck.yaml").resolve()
    scan = sans.scan_parameters()
    assert (scan.exposure_s, scan.configuration, scan.temperature_c) == (300, "middle", 25)
    assert sans.exposure_range_s == (60, 1800)
    assert sans.exposure_choices_s == (60, 186, 300, 579, 1800)  # min, default, max, a geometric ladder
    assert campaign.agent.kind is AgentKind.MULTI_PROBE
    assert campaign.stop.max_samples == 60
    assert campaign.twin.time_scale == 0
    assert callable(campaign.truth())


def test_the_grid_covers_the_bounds_and_respects_the_constraints() -> None:
    campaign = load_campaign(EXAMPLES / "demo.yaml")
    grid = campaign.grid(6)
    assert grid.shape[1] == 3
    assert np.all(grid.sum(axis=1) <= 0.25 + 1e-12)
    assert 0 < len(grid) < 6**3  # the sum cap cuts the box's richest corner off
    for k, name in enumerate(campaign.solutes):
        lo, hi = campaign.space.bounds[name]
        assert grid[:, k].min() == pytest.approx(lo)
        assert grid[:, k].max() == pytest.approx(hi)
    assert campaign.constraint_violation({"SDS": 0.15, "PPG": 0.1, "NaCl": 0.01}) is not None
    assert campaign.constraint_violation({"SDS": 0.1, "PPG": 0.1, "NaCl": 0.05}) is None


def test_a_campaign_round_trips_through_its_self_contained_dict(folder: Path) -> None:
    campaign = load_campaign(folder / "demo.yaml")
    data = campaign.to_dict()
    assert isinstance(data["stations"]["saxs"]["deck"], dict)  # the deck travels with the campaign
    again = load_campaign_data(data)
    assert again.spec.model_dump(exclude={"stations", "components"}) == campaign.spec.model_dump(
        exclude={"stations", "components"}
    )
    assert again.stations["sans"].deck == campaign.stations["sans"].deck
    assert again.components == campaign.components


def test_a_deck_may_be_inline(folder: Path) -> None:
    inline = """{components: [{name: H2O, formula: H2O, density_g_per_ml: 0.997},
           {name: SDS, formula: C12H25NaO4S, density_g_per_ml: 1.15, role: solute},
           {name: PPG, formula: C51H104O18, density_g_per_ml: 1.005, role: solute},
           {name: NaCl, formula: NaCl, density_g_per_ml: 2.165, role: solute}],
      pipettes: [{name: p20, min_volume_ul: 1, max_volume_ul: 20, tip_type: t20},
                 {name: p300, min_volume_ul: 20, max_volume_ul: 300, tip_type: t300}],
      tip_racks: [{slot: "7", tip_type: t20}, {slot: "8", tip_type: t300}],
      stocks: [{name: w, slot: "1", volume_ul: 40000, capacity_ul: 50000, balance: H2O},
               {name: s, slot: "2", volume_ul: 40000, capacity_ul: 50000,
                composition: {SDS: 30 wt%}, balance: H2O},
               {name: p, slot: "3", volume_ul: 40000, capacity_ul: 50000,
                composition: {PPG: 40 wt%}, balance: H2O},
               {name: n, slot: "5", volume_ul: 40000, capacity_ul: 50000,
                composition: {NaCl: 20 wt%}, balance: H2O}],
      plates: [{slot: "4", rows: 8, columns: 12, well_capacity_ul: 2000}]}"""
    path = write(folder, edited("deck: saxs_deck.yaml", f"deck: {inline}"))
    campaign = load_campaign(path)
    assert campaign.stations["saxs"].deck_path is None
    assert {s.name for s in campaign.stations["saxs"].deck.stocks} == {"w", "s", "p", "n"}


def test_the_feasible_region_carries_bounds_cap_solvents_and_constraints() -> None:
    campaign = load_campaign(EXAMPLES / "demo.yaml")
    calls: list[str] = []

    def stocks(station: str, target: object) -> str | None:
        calls.append(station)
        return None

    region = campaign.feasible_region(stocks)
    assert region.names == ("SDS", "PPG", "NaCl")
    assert region.max_total == pytest.approx(0.25)
    assert region.solvent_for("sans").name == "D2O"
    assert region.why_infeasible(np.array([0.05, 0.05, 0.01]), "saxs") is None
    assert calls == ["saxs"]
    assert region.why_infeasible(np.array([0.15, 0.10, 0.01]), "saxs") is not None


# --- bad input: the schema --------------------------------------------------------------------


def test_an_unknown_key_is_refused_with_its_line_and_the_allowed_keys(folder: Path) -> None:
    text = edited("  batch_size: 1\n", "  batch_size: 1\n  bach: 3\n")
    path = write(folder, text)
    error = refused(path)
    (problem,) = error.problems
    assert problem.key == "agent.bach"
    assert problem.line == line_of(text, "bach: 3")
    assert problem.column == 3
    assert "unknown key 'bach'" in problem.message
    assert "batch_size" in problem.hint
    assert "settings" in problem.hint
    assert f"{path}:{problem.line}:3: agent.bach: unknown key 'bach'" in str(error)


def test_a_misspelt_key_gets_a_suggestion(folder: Path) -> None:
    text = edited(
        "      temperature_c: 25\n    costs: {per_station_hour: 10}",
        "      temprature_c: 25\n    costs: {per_station_hour: 10}",
    )
    error = refused(write(folder, text))
    (problem,) = error.problems
    assert problem.key == "stations.sans.scan.temprature_c"
    assert problem.line == line_of(text, "temprature_c")
    assert "did you mean 'temperature_c'" in problem.hint


def test_a_missing_section_and_a_bad_value_are_both_reported(folder: Path) -> None:
    text = edited("stop:\n  max_samples: 60\n  max_station_hours: 48\n", "")
    text = edited("  seed: 1\n", "  seed: one\n", text)
    error = refused(write(folder, text))
    by_key = {p.key: p for p in error.problems}
    assert "required key 'stop' is missing" in by_key["stop"].message
    assert "add 'stop'" in by_key["stop"].hint
    assert by_key["agent.seed"].line == line_of(text, "seed: one")
    assert "'one'" in by_key["agent.seed"].message


def test_a_bad_enum_value_names_the_valid_ones(folder: Path) -> None:
    text = edited("kind: multi_probe", "kind: bayesian_magic")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "agent.kind"
    assert "multi_probe" in problem.message
    assert "random" in problem.message
    assert problem.line == line_of(text, "bayesian_magic")


def test_broken_yaml_and_duplicate_keys_point_at_their_line(folder: Path) -> None:
    text = edited("  seed: 1\n", "  seed: [1\n")
    (problem,) = refused(write(folder, text)).problems
    assert "not valid YAML" in problem.message
    assert problem.line is not None

    text = edited("  seed: 1\n", "  seed: 1\n  seed: 2\n")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "agent.seed"
    assert problem.line == line_of(text, "seed: 2")
    assert "twice" in problem.message


def test_a_file_that_is_not_a_mapping_or_not_there_is_refused(folder: Path) -> None:
    assert "mapping" in str(refused(write(folder, "- just\n- a list\n")))
    assert "cannot read" in str(refused(folder / "nothing_here.yaml"))


# --- bad input: stocks and bounds -------------------------------------------------------------


def test_a_deck_lacking_a_component_the_bounds_need_is_refused(folder: Path) -> None:
    deck = (folder / "sans_deck.yaml").read_text()
    (folder / "sans_deck.yaml").write_text(
        "\n".join(line for line in deck.splitlines() if "ppg_40wt" not in line)
    )
    error = refused(folder / "demo.yaml")
    (problem,) = error.problems
    assert problem.key == "stations.sans.deck"
    assert problem.line == line_of(DEMO_TEXT, "deck: sans_deck.yaml")
    assert "no stock on this deck holds 'PPG'" in problem.message
    assert "add a stock with 'PPG'" in problem.hint


def test_bounds_beyond_the_richest_stock_name_the_corner_and_the_stock(folder: Path) -> None:
    text = edited("SDS: [0.0, 0.15]", "SDS: [0.0, 0.35]")
    text = edited(
        "    - {coefficients: {SDS: 1, PPG: 1, NaCl: 1}, max: 0.25}\n",
        "    - {coefficients: {SDS: 1, PPG: 1, NaCl: 1}, max: 0.4}\n",
        text,
    )
    error = refused(write(folder, text))
    saxs = [p for p in error.problems if p.key == "stations.saxs.deck"]
    assert saxs, str(error)
    first = saxs[0]  # the corners missed by the most come first
    assert "corner (SDS=0.35, " in first.message
    assert "'sds_30wt', holds only 0.3" in first.message
    assert "add a stock with more than 0.35 SDS or lower the bounds of SDS" in first.hint
    assert any(p.key == "stations.sans.deck" and "sds_30wt_d2o" in p.message for p in error.problems)


def test_a_corner_the_stocks_are_too_dilute_for_is_refused(folder: Path) -> None:
    # every component is there, but SDS 0.2 + PPG 0.1 + NaCl 0.05 from these stocks overfills the sample
    text = edited("SDS: [0.0, 0.15]", "SDS: [0.0, 0.20]")
    text = edited(
        "    - {coefficients: {SDS: 1, PPG: 1, NaCl: 1}, max: 0.25}\n",
        "    - {coefficients: {SDS: 1}, max: 0.2}\n",
        text,
    )
    error = refused(write(folder, text))
    (saxs,) = [p for p in error.problems if p.key == "stations.saxs.deck"]
    assert "corner (SDS=0.2, PPG=0.1, NaCl=0.05)" in saxs.message
    assert "117% of the sample" in saxs.message
    assert "'sds_30wt'" in saxs.message
    assert "space.constraints" in saxs.hint


def test_a_stock_that_brings_an_unwanted_component_is_named(folder: Path) -> None:
    deck = (folder / "saxs_deck.yaml").read_text()
    deck = edited("composition: {SDS: 30 wt%}", "composition: {SDS: 30 wt%, NaCl: 2 wt%}", deck)
    (folder / "saxs_deck.yaml").write_text(deck)
    error = refused(folder / "demo.yaml")
    assert any(
        "holds no NaCl" in p.message and "'sds_30wt'" in p.message and p.key == "stations.saxs.deck"
        for p in error.problems
    ), str(error)


def test_constraints_that_leave_nothing_and_bounds_on_a_solvent_are_refused(folder: Path) -> None:
    text = edited("max: 0.25}", "min: 0.5}")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "space"
    assert "no composition" in problem.message

    text = edited("    NaCl: [0.0, 0.05]\n", "    NaCl: [0.0, 0.05]\n    H2O: [0.5, 1.0]\n")
    problems = refused(write(folder, text)).problems
    assert any(p.key == "space.bounds.H2O" and "solvent" in p.message for p in problems)

    text = edited("SDS: [0.0, 0.15]", "SDS: [0.2, 0.15]")
    problems = refused(write(folder, text)).problems
    assert any(p.key == "space.bounds.SDS" and "lower < upper" in p.message for p in problems)


def test_an_unknown_component_in_the_bounds_lists_the_known_ones(folder: Path) -> None:
    text = edited("    NaCl: [0.0, 0.05]\n", "    NaCl: [0.0, 0.05]\n    CTAB: [0.0, 0.01]\n")
    problems = refused(write(folder, text)).problems
    (problem,) = [p for p in problems if p.key == "space.bounds.CTAB"]
    assert problem.line == line_of(text, "CTAB")
    assert "SDS" in problem.hint


def test_a_deck_file_error_points_into_the_deck_file(folder: Path) -> None:
    deck = (folder / "sans_deck.yaml").read_text()
    deck = edited(
        "dead_volume_ul: 1000, balance: D2O}", "dead_volume_ul: 1000, balance: D2O, colour: blue}", deck
    )
    (folder / "sans_deck.yaml").write_text(deck)
    (problem,) = refused(folder / "demo.yaml").problems
    assert problem.source == str((folder / "sans_deck.yaml").resolve())
    assert problem.key == "stocks[0].colour"
    assert problem.line == line_of(deck, "colour: blue")


def test_a_deck_defining_a_component_differently_is_refused(folder: Path) -> None:
    deck = (folder / "saxs_deck.yaml").read_text()
    deck = edited(
        "{name: SDS, formula: C12H25NaO4S, density_g_per_ml: 1.15",
        "{name: SDS, formula: C12H25NaO4S, density_g_per_ml: 1.01",
        deck,
    )
    (folder / "saxs_deck.yaml").write_text(deck)
    problems = refused(folder / "demo.yaml").problems
    assert any("defines 'SDS'" in p.message and "same formula, density" in p.hint for p in problems)


# --- bad input: instruments, truth, agent, stop -----------------------------------------------


def test_an_exposure_beyond_the_instrument_limits_says_what_is_allowed(folder: Path) -> None:
    text = edited("max: 1800, default: 300", "max: 9000, default: 300")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "stations.sans.scan.exposure_s.max"
    assert problem.line == line_of(text, "max: 9000")
    assert "9000 s is outside what 'sans' allows (1 to 7200 s)" in problem.message
    assert "between 1 and 7200" in problem.hint


def test_a_default_exposure_outside_its_range_and_a_temperature_beyond_limits(folder: Path) -> None:
    text = edited("{min: 0.1, max: 10, default: 1}", "{min: 0.1, max: 10, default: 20}")
    text = edited(
        "      temperature_c: 25\n    costs: {per_station_hour: 1}",
        "      temperature_c: 95\n    costs: {per_station_hour: 1}",
        text,
    )
    keys = {p.key for p in refused(write(folder, text)).problems}
    assert keys == {"stations.saxs.scan.exposure_s.default", "stations.saxs.scan.temperature_c"}


def test_exposure_choices_are_kept_within_the_range(folder: Path) -> None:
    text = edited("{min: 0.1, max: 10, default: 1}", "{min: 0.1, max: 10, default: 1, choices: [0.5, 2, 20]}")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "stations.saxs.scan.exposure_s.choices[2]"
    assert "20 s lies outside [0.1, 10] s" in problem.message
    good = load_campaign(write(folder, edited("[0.5, 2, 20]", "[2, 0.5]", text)))
    assert good.stations["saxs"].exposure_choices_s == (0.5, 2)


def test_an_unknown_configuration_lists_the_instruments(folder: Path) -> None:
    text = edited("configurations: [short, middle, long]", "configurations: [short, middle, huge]")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "stations.sans.scan.configurations[2]"
    assert "no configuration 'huge'" in problem.message
    assert "short, middle, long" in problem.hint


def test_an_unknown_station_or_a_wrong_probe_is_refused(folder: Path) -> None:
    text = edited("    probe: xray\n", "    probe: neutron\n")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "stations.saxs.probe"
    assert "uses xray" in problem.message

    text = edited("  saxs:\n", "  waxs:\n")
    problems = refused(write(folder, text)).problems
    assert any(p.key == "stations.waxs" and "saxs, sans" in p.hint for p in problems)


@pytest.mark.parametrize(
    ("truth", "expected"),
    [
        ("tandem.sim.systems:no_such_truth", "has no attribute 'no_such_truth'"),
        ("tandem_no_such_module:truth", "cannot import ground-truth module"),
        ("default_system", "module:callable"),
        ("math:pi", "is not callable"),
        ("builtins:len", "fails at the centre of the space"),
    ],
)
def test_a_ground_truth_that_cannot_be_used_is_refused(folder: Path, truth: str, expected: str) -> None:
    text = edited("truth: tandem.sim.systems:default_system", f"truth: {truth}")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "twin.truth"
    assert problem.line == line_of(text, "truth:")
    assert expected in problem.message
    assert "module:callable" in problem.hint or "TruthPoint" in problem.hint


def test_agent_settings_objective_and_budget_are_checked(folder: Path) -> None:
    text = edited("  batch_size: 1\n", "  batch_size: 1\n  settings: {n_inital: 4}\n")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "agent.settings.n_inital"
    assert "did you mean 'n_initial'" in problem.hint

    text = edited("kind: multi_probe", "kind: optimisation")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "agent"
    assert "objective" in problem.message

    text = edited("  max_samples: 60\n  max_station_hours: 48\n", "  target_confidence: 0.9\n")
    (problem,) = refused(write(folder, text)).problems
    assert problem.key == "stop"
    assert "never ends" in problem.message


def test_every_problem_comes_in_one_typed_error(folder: Path) -> None:
    text = edited("max: 1800, default: 300", "max: 9000, default: 300")
    text = edited("truth: tandem.sim.systems:default_system", "truth: tandem.sim.systems:nothing", text)
    text = edited("configurations: [short, long]", "configurations: [short, far]", text)
    error = refused(write(folder, text))
    assert isinstance(error, TandemError)
    assert isinstance(error, ValueError)
    assert len(error.problems) == 3
    assert str(error).startswith("the campaign file has 3 problems:")


# --- the geometry behind the reach check ------------------------------------------------------


def test_the_vertices_of_a_box_and_of_a_capped_box() -> None:
    bounds = {"a": (0.0, 0.2), "b": (0.0, 0.1)}
    assert len(polytope_vertices(["a", "b"], bounds)) == 4
    capped = polytope_vertices(["a", "b"], bounds, [Halfspace({"a": 1, "b": 1}, 0.25)])
    as_tuples = sorted((round(v["a"], 9), round(v["b"], 9)) for v in capped)
    assert as_tuples == [(0.0, 0.0), (0.0, 0.1), (0.15, 0.1), (0.2, 0.0), (0.2, 0.05)]
    assert polytope_vertices(["a", "b"], bounds, [Halfspace({"a": -1, "b": -1}, -0.5)]) == []


def test_the_closest_mixture_is_exact_inside_the_hull_and_measured_outside() -> None:
    stocks = {"water": {"w": 1.0}, "salt": {"s": 0.2, "w": 0.8}}
    inside = closest_mixture(stocks, {"s": 0.05, "w": 0.95})
    assert inside.distance == pytest.approx(0.0, abs=1e-9)
    assert inside.shares == pytest.approx({"water": 0.75, "salt": 0.25})
    outside = closest_mixture(stocks, {"s": 0.3, "w": 0.7})
    assert outside.distance == pytest.approx(0.1)
    assert outside.worst({"s": 0.3, "w": 0.7}) in {"s", "w"}
