"""Instrument profiles (tandem.instrument_profile): the bundled ones read; bad ones refused at their line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from text_edits import line_of, replaced_once

from tandem.file_problems import Problem
from tandem.instrument import InstrumentFacts, TimeCostFacts
from tandem.instrument_profile import (
    CELL_LOADER_PREFIX,
    ROBOT_BACKENDS,
    STATION_PREFIX,
    InstrumentProfile,
    ProfileFacts,
    default_prefixes,
)
from tandem.instrument_profile_file import (
    BUNDLED_PROFILES,
    InstrumentProfileError,
    bundled_profile,
    bundled_profile_names,
    read_profile,
)
from tandem.stations import Probe

SAXS_TEXT = (BUNDLED_PROFILES / "saxs.yaml").read_text()


def edited(old: str, new: str, text: str = SAXS_TEXT) -> str:
    return replaced_once(text, old, new)


def refused(folder: Path, text: str) -> tuple[Problem, ...]:
    path = folder / "line.yaml"
    path.write_text(text)
    with pytest.raises(InstrumentProfileError) as info:
        read_profile(path)
    assert all(p.source == str(path) for p in info.value.problems)
    assert "the instrument profile has" in str(info.value)
    return info.value.problems


def test_the_bundled_profiles_are_the_twins_two_stations() -> None:
    assert bundled_profile_names() == ("sans", "saxs")
    for name in bundled_profile_names():
        facts = bundled_profile(name)
        assert isinstance(facts, InstrumentFacts)
        assert isinstance(facts.time_costs, TimeCostFacts)
        assert facts.station == name
        assert facts.backend == "twin"
        assert facts.profile.robot.backend in ROBOT_BACKENDS
        for config in facts.configurations:
            lo, hi = facts.profile.q_range_inv_a(config)
            geometry = facts.profile.geometry(config)
            assert geometry.q_min_inv_a * 0.999 <= lo < hi <= geometry.q_max_inv_a * 1.001
    saxs = bundled_profile("saxs")
    assert saxs.probe is Probe.XRAY
    assert saxs.profile.beam_wavelength_a == pytest.approx(12.398419843320026 / 12.0)
    assert saxs.prefixes() == ("TANDEM:SAXS:", "TANDEM:SAXS:CL:")
    assert saxs.prefixes("saxs2") == ("TANDEM:SAXS2:", "TANDEM:SAXS2:CL:")


def test_the_epics_prefixes_default_to_tandems() -> None:
    assert default_prefixes("saxs2") == ("TANDEM:SAXS2:", "TANDEM:SAXS2:CL:")
    assert STATION_PREFIX.format(station="SAXS2") == "TANDEM:SAXS2:"
    assert CELL_LOADER_PREFIX.format(station="SAXS2") == "TANDEM:SAXS2:CL:"


def test_every_robot_backend_tandem_can_make_is_a_name_a_profile_may_give() -> None:
    from tandem.robots.pylabrobot_registry import BACKENDS

    assert set(BACKENDS) <= set(ROBOT_BACKENDS)


def test_a_real_stations_profile_with_prefixes_robot_and_calibrations(tmp_path: Path) -> None:
    (tmp_path / "cal").mkdir()
    calibration = {"line": {"detector_efficiency": 0.95, "open_beam_ratio": 2e-3, "path_length_mm": 1.0}}
    (tmp_path / "cal" / "short.json").write_text(json.dumps(calibration))
    text = (
        edited("name: saxs", "name: line")
        .replace("backend: twin", "backend: epics\nepics: {station_prefix: 'BL12:SAXS:'}")
        .replace("robot: {backend: chatterbox}", "robot: {backend: opentrons_ot2, options: {host: 10.0.0.2}}")
        .replace("    q_range_inv_a: [0.0092, 0.74]", "    calibration: cal/short.json")
    )
    (tmp_path / "line.yaml").write_text(text)
    facts = read_profile(tmp_path / "line.yaml")
    assert facts.backend == "epics"
    assert facts.prefixes() == ("BL12:SAXS:", "TANDEM:LINE:CL:")
    assert facts.profile.robot.options == {"host": "10.0.0.2"}
    assert facts.calibration_path("short") == tmp_path / "cal" / "short.json"
    assert facts.calibration_path("long") is None
    # `tandem analyze --calibration` reads the same file
    from tandem.cli.analyze import load_calibrations

    assert load_calibrations(tmp_path / "cal" / "short.json")["line"].detector_efficiency == 0.95
    # stored as data, the calibration's path is absolute and the profile reads back the same
    again = InstrumentProfile.model_validate(facts.as_data())
    assert ProfileFacts(again).calibration_path("short") == tmp_path / "cal" / "short.json"
    assert again.model_dump(exclude={"configurations"}) == facts.profile.model_dump(
        exclude={"configurations"}
    )


@pytest.mark.parametrize(
    ("old", "new", "key", "needle", "expected"),
    [
        ("probe: xray", "probe: xrays", "probe", "probe:", "'xray' or 'neutron'"),
        (
            "exposure_limits_s: [0.001, 600.0]",
            "exposure_limits_s: [600.0, 0.001]",
            "exposure_limits_s",
            "exposure_limits_s",
            "is empty: give [min, max]",
        ),
        (
            "q_range_inv_a: [0.0092, 0.74]",
            "q_range_inv_a: [0.5, 0.1]",
            "configurations.short.q_range_inv_a",
            "q_range_inv_a: [0.5",
            "the q range [0.5, 0.1] is empty",
        ),
        (
            "q_range_inv_a: [0.0092, 0.74]",
            "q_range_inv_a: [0.0092, 2.0]",
            "configurations.short.q_range_inv_a",
            "q_range_inv_a: [0.0092, 2.0]",
            "beyond what its geometry covers",
        ),
        (
            "robot: {backend: chatterbox}",
            "robot: {backend: hamilton}",
            "robot.backend",
            "robot:",
            "unknown robot backend 'hamilton'; known: chatterbox, opentrons_ot2",
        ),
        ("energy_kev: 12.0", "energy_kev: '12'", "energy_kev", "energy_kev", "valid number"),
        (
            "energy_kev: 12.0",
            "wavelength_a: 1.0\nenergy_kev: 12.0",
            "wavelength_a",
            "wavelength_a",
            "exactly one",
        ),
        (
            "default_configuration: short",
            "default_configuration: medium",
            "default_configuration",
            "default_",
            "medium",
        ),
        ("  readout_s: 0.003\n", "", "time_costs.readout_s", "time_costs:", "required key 'readout_s'"),
        ("backend: twin", "backend: tango", "backend", "backend: tango", "'twin' or 'epics'"),
    ],
)
def test_bad_profiles_are_refused_at_their_line(
    tmp_path: Path, *, old: str, new: str, key: str, needle: str, expected: str
) -> None:
    text = edited(old, new)
    (problem,) = refused(tmp_path, text)
    assert problem.key == key
    assert problem.line == line_of(text, needle)
    assert expected in problem.message


def test_a_calibration_file_that_is_not_there_or_not_for_this_station_is_refused(tmp_path: Path) -> None:
    text = edited("    q_range_inv_a: [0.0092, 0.74]", "    calibration: cal/short.json")
    (problem,) = refused(tmp_path, text)
    assert problem.key == "configurations.short.calibration"
    assert problem.line == line_of(text, "calibration:")
    assert "cannot read the calibration file" in problem.message
    assert str(tmp_path / "cal" / "short.json") in problem.message
    assert "tandem analyze --calibration" in problem.hint

    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "short.json").write_text(json.dumps({"sans": {"path_length_mm": 2.0}}))
    (problem,) = refused(tmp_path, text)
    assert "holds no calibration for 'saxs' (it holds: sans)" in problem.message


def test_a_beam_stop_hiding_the_detector_covers_no_q(tmp_path: Path) -> None:
    long = "      beamstop_radius_mm: 1.5\n    q_range_inv_a: [0.0031, 0.249]"
    text = edited(long, "      beamstop_radius_mm: 500.0")
    problems = refused(tmp_path, text)
    assert [p.key for p in problems] == ["configurations.long.detector.beamstop_radius_mm"]
    assert "covers no q range" in problems[0].message


def test_a_neutron_station_names_a_wavelength_not_an_energy(tmp_path: Path) -> None:
    text = (BUNDLED_PROFILES / "sans.yaml").read_text().replace("wavelength_a: 6.0", "energy_kev: 6.0")
    keys = {p.key: p.message for p in refused(tmp_path, text)}
    assert "a neutron station has no X-ray energy" in keys["energy_kev"]
    assert "needs its wavelength_a" in keys["wavelength_a"]


def test_every_problem_of_a_profile_is_reported_at_once(tmp_path: Path) -> None:
    text = edited("probe: xray", "probe: gamma").replace(
        "robot: {backend: chatterbox}", "robot: {backend: x}"
    )
    assert {p.key for p in refused(tmp_path, text)} == {"probe", "robot.backend"}


def test_a_profile_file_that_is_not_there_or_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InstrumentProfileError) as info:
        read_profile(tmp_path / "missing.yaml")
    (problem,) = info.value.problems
    assert "cannot read the instrument profile" in problem.message
    (problem,) = refused(tmp_path, "- just\n- a list\n")
    assert "is a mapping of keys" in problem.message
    assert problem.line == 1
    (problem,) = refused(tmp_path, "name: a\nname: b\n")
    assert problem.message == "this key appears twice"
    assert problem.line == 2
