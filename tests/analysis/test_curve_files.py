"""Curve files (NXcanSAS, text) and the composition table: the input layer of `tandem map`."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from tandem.analysis.curve_files import (
    CurveFileError,
    read_composition_table,
    read_curve,
    resolve_curve_file,
    write_curve_text,
    write_nxcansas,
)
from tandem.analysis.curves import Curve
from tandem.errors import TandemError


def _curve(n: int = 40, dq: bool = False) -> Curve:
    q = np.geomspace(0.005, 0.4, n)
    intensity = 0.1 / (1 + (30 * q) ** 2) + 0.016
    return Curve(q, intensity, 0.03 * intensity, 0.01 * q if dq else np.zeros(n), {"x": 1})


def _same(a: Curve, b: Curve) -> None:
    for name in ("q_inv_a", "intensity_per_cm", "sigma_per_cm", "dq_inv_a"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, err_msg=name)


def _write_nxcansas_raw(path: Path, q: np.ndarray, i: np.ndarray, q_units: str, i_units: str) -> None:
    """An NXcanSAS file as another facility writes it: no `default` attributes, its own units."""
    with h5py.File(path, "w") as f:
        entry = f.create_group("run_17")
        entry.attrs.update(NX_class="NXentry", canSAS_class="SASentry", version="1.1")
        entry["definition"] = "NXcanSAS"
        data = entry.create_group("reduced")
        data.attrs.update(NX_class="NXdata", canSAS_class="SASdata", signal="I", I_axes="Q")
        # a transmission spectrum is NXdata too: it must not be taken for the curve
        spectrum = entry.create_group("trans")
        spectrum.attrs.update(NX_class="NXdata", canSAS_class="SAStransmission_spectrum")
        data.create_dataset("Q", data=q).attrs.update(units=q_units, resolutions="Qdev")
        data.create_dataset("I", data=i).attrs.update(units=i_units, uncertainties="Idev")
        data.create_dataset("Idev", data=0.05 * i).attrs["units"] = i_units
        data.create_dataset("Qdev", data=0.02 * q).attrs["units"] = q_units


# -- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dq", [False, True])
def test_text_round_trip_is_exact(tmp_path: Path, dq: bool) -> None:
    curve = _curve(dq=dq)
    write_curve_text(curve, tmp_path / "c.txt")
    back = read_curve(tmp_path / "c.txt")
    _same(curve, back)
    assert back.metadata["format"] == "text"
    assert back.metadata["resolution"] == ("file" if dq else "none")
    assert back.metadata["units_assumed"] is False


@pytest.mark.parametrize("dq", [False, True])
def test_nxcansas_round_trip_keeps_title_and_composition(tmp_path: Path, dq: bool) -> None:
    curve = _curve(dq=dq)
    write_nxcansas(curve, tmp_path / "c.h5", title="S12", composition={"SDS": 0.05, "NaCl": 0.01})
    back = read_curve(tmp_path / "c.h5")
    _same(curve, back)
    assert back.metadata["title"] == "S12"
    assert back.metadata["composition"] == {"SDS": 0.05, "NaCl": 0.01}
    assert back.metadata["resolution"] == ("file" if dq else "none")
    assert back.metadata["intensity_scale"] == "absolute"


def test_curve_source_curves_survive_both_formats(tmp_path: Path) -> None:
    from tandem.sim.curve_source import simulate_curve
    from tandem.sim.systems import default_system

    curve = simulate_curve(default_system, {"SDS": 0.05}, "neutron", np.random.default_rng(0))
    write_nxcansas(curve, tmp_path / "s.nxs", title="s", composition=curve.metadata["composition"])
    write_curve_text(curve, tmp_path / "s.dat")
    _same(curve, read_curve(tmp_path / "s.nxs"))
    _same(curve, read_curve(tmp_path / "s.dat"))


# -- units -------------------------------------------------------------------------------------------


def test_nxcansas_in_inverse_nm_and_metres_is_converted(tmp_path: Path) -> None:
    q_nm = np.linspace(0.1, 2.0, 20)
    i_m = np.linspace(500.0, 100.0, 20)
    _write_nxcansas_raw(tmp_path / "nm.h5", q_nm, i_m, "1/nm", "1/m")
    curve = read_curve(tmp_path / "nm.h5")
    np.testing.assert_allclose(curve.q_inv_a, q_nm / 10)
    np.testing.assert_allclose(curve.intensity_per_cm, i_m / 100)
    np.testing.assert_allclose(curve.sigma_per_cm, 0.05 * i_m / 100)
    np.testing.assert_allclose(curve.dq_inv_a, 0.02 * q_nm / 10)
    assert curve.metadata["entry"] == "/run_17"


@pytest.mark.parametrize(
    ("q_unit", "factor"),
    [("1/angstrom", 1.0), ("A^-1", 1.0), ("Å^{-1}", 1.0), ("nm^-1", 0.1), ("1/m", 1e-10)],
)
def test_q_units_written_in_many_ways(tmp_path: Path, q_unit: str, factor: float) -> None:
    q = np.linspace(1.0, 2.0, 10)
    _write_nxcansas_raw(tmp_path / "u.h5", q, np.ones(10), q_unit, "cm^-1 sr^-1")
    np.testing.assert_allclose(read_curve(tmp_path / "u.h5").q_inv_a, q * factor)


def test_unknown_units_and_arbitrary_intensity(tmp_path: Path) -> None:
    q = np.linspace(0.01, 0.2, 10)
    _write_nxcansas_raw(tmp_path / "bad.h5", q, np.ones(10), "degrees", "1/cm")
    with pytest.raises(CurveFileError, match=r"'degrees' is not an inverse length; valid: 1/Å"):
        read_curve(tmp_path / "bad.h5")
    _write_nxcansas_raw(tmp_path / "au.h5", q, np.ones(10), "1/A", "a.u.")
    assert read_curve(tmp_path / "au.h5").metadata["intensity_scale"] == "arbitrary"


def test_text_units_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "nm.csv"
    path.write_text(
        "Sample 4, 25 C\nq (1/nm), I (1/m), dI (1/m)\n"
        + "".join(f"{q},{100 * q},{q}\n" for q in (0.1, 0.2, 0.3, 0.4, 0.5))
    )
    curve = read_curve(path)
    np.testing.assert_allclose(curve.q_inv_a, [0.01, 0.02, 0.03, 0.04, 0.05])
    np.testing.assert_allclose(curve.intensity_per_cm, [0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(curve.sigma_per_cm, [0.001, 0.002, 0.003, 0.004, 0.005])


def test_text_without_header_is_in_inverse_angstrom_and_per_cm(tmp_path: Path) -> None:
    path = tmp_path / "plain.dat"
    path.write_text(
        "# from beamtime 2024\n0.01 5 0.1\n0.02 4 0.1  # a note\n\n0.03 3 0.1\n0.04 2 0.1\n0.05 1 0.1\n"
    )
    curve = read_curve(path)
    np.testing.assert_allclose(curve.q_inv_a, [0.01, 0.02, 0.03, 0.04, 0.05])
    assert curve.metadata["units_assumed"] is True


def test_semicolon_separated_text_with_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("q;I\n" + "".join(f"0,0{k};{k},5\n" for k in range(1, 7)))
    curve = read_curve(path)
    np.testing.assert_allclose(curve.q_inv_a, [0.01 * k for k in range(1, 7)])
    np.testing.assert_allclose(curve.intensity_per_cm, [k + 0.5 for k in range(1, 7)])


def test_two_columns_get_an_estimated_relative_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    q = np.geomspace(0.01, 0.3, 200)
    truth = 1.0 / (1 + (20 * q) ** 2) + 0.02
    noisy = truth * (1 + 0.03 * rng.standard_normal(q.size))
    path = tmp_path / "two.txt"
    np.savetxt(path, np.column_stack([q, noisy]))
    curve = read_curve(path)
    assert "estimated" in curve.metadata["sigma"]
    assert np.median(curve.sigma_per_cm / curve.intensity_per_cm) == pytest.approx(0.03, rel=0.2)


# -- cleaning ----------------------------------------------------------------------------------------


def test_descending_q_is_sorted_and_non_finite_points_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "desc.txt"
    path.write_text(
        "q I dI\n0.06 1 0.1\n0.05 nan 0.1\n0.04 3 0.1\n0.03 4 0.1\n0.02 5 0.1\n0.01 6 0.1\n0 7 0.1\n"
    )
    curve = read_curve(path)
    np.testing.assert_allclose(curve.q_inv_a, [0.01, 0.02, 0.03, 0.04, 0.06])
    np.testing.assert_allclose(curve.intensity_per_cm, [6, 5, 4, 3, 1])
    assert curve.metadata["dropped_points"] == 2
    assert curve.metadata["reordered"] is True


def test_nxcansas_mask_drops_points(tmp_path: Path) -> None:
    write_nxcansas(_curve(), tmp_path / "m.h5", title="m")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        mask = np.zeros(40, dtype=bool)
        mask[:3] = True  # the beam stop's shadow
        f["sasentry01/sasdata01"].create_dataset("Mask", data=mask)
    assert len(read_curve(tmp_path / "m.h5")) == 37


# -- bad files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("0.1\n0.2\n0.3\n", "line 1: 1 column"),
        (
            "q I dI\n0.01 1 nan\n0.02 2 nan\n0.03 3 nan\n0.04 4 nan\n0.05 5 nan\n",
            "sigma column has no finite",
        ),
        (
            "0.01 1\n0.02 1\n0.02 1\n0.03 1\n0.04 1\n0.05 1\n",
            r"q = 0.02 1/Å appears twice \(line 2 and line 3\)",
        ),
        ("0.01 1\n0.02 1\n0.03 1 0.1\n", "line 3: 3 column"),
        ("0.01 1\n0.02 1\ntrailing words\n", "line 3: 'trailing words' is not numbers"),
        ("0.01 1\n0.02 2\n", "only 2 point"),
        ("0.01 1 0.1 0.001 7\n", "5 column"),
        ("q(degrees) I\n0.01 1\n", "not an inverse length"),
    ],
)
def test_bad_text_files_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(CurveFileError, match=message) as info:
        read_curve(path)
    assert "bad.txt" in str(info.value)
    assert isinstance(info.value, TandemError)
    assert isinstance(info.value, ValueError)


def test_truncated_and_fake_hdf5_are_refused(tmp_path: Path) -> None:
    write_nxcansas(_curve(), tmp_path / "full.h5", title="full")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((tmp_path / "full.h5").read_bytes()[:1500])
    with pytest.raises(CurveFileError, match="not a readable HDF5 file"):
        read_curve(truncated)
    fake = tmp_path / "fake.h5"
    fake.write_text("0.1 1\n")
    with pytest.raises(CurveFileError, match="not a readable HDF5 file"):
        read_curve(fake)


def test_hdf5_that_is_not_a_1d_nxcansas_curve(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.ones(10)
    with pytest.raises(CurveFileError, match="no SASentry group"):
        read_curve(other)
    image = tmp_path / "image.h5"
    _write_nxcansas_raw(image, np.ones((4, 4)), np.ones((4, 4)), "1/A", "1/cm")
    with pytest.raises(CurveFileError, match="a 1-D curve"):
        read_curve(image)


def test_several_entries_need_a_choice(tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    _write_nxcansas_raw(path, np.linspace(0.01, 0.2, 10), np.ones(10), "1/A", "1/cm")
    with h5py.File(path, "a") as f:
        f.copy("run_17", "run_18")
        f["run_18/reduced/I"][...] = 2.0
    with pytest.raises(CurveFileError, match=r"several SASentry groups.*entry="):
        read_curve(path)
    assert read_curve(path, entry="run_18").intensity_per_cm[0] == 2.0
    assert read_curve(path, entry="run_17/reduced").intensity_per_cm[0] == 1.0


def test_missing_file_directory_and_size_cap(tmp_path: Path) -> None:
    with pytest.raises(CurveFileError, match="no such file"):
        read_curve(tmp_path / "nope.txt")
    with pytest.raises(CurveFileError, match="not a regular file"):
        read_curve(tmp_path)
    path = tmp_path / "big.txt"
    write_curve_text(_curve(), path)
    with pytest.raises(CurveFileError, match="more than the 100 a 1-D curve file may have"):
        read_curve(path, max_bytes=100)


# -- composition table -------------------------------------------------------------------------------


def _curve_files(folder: Path, *names: str) -> None:
    for name in names:
        write_curve_text(_curve(), folder / name)


def test_composition_table_by_path_and_by_stem(tmp_path: Path) -> None:
    (tmp_path / "run2").mkdir()
    _curve_files(tmp_path, "s1.txt", "run2/s2.dat")
    table = tmp_path / "compositions.csv"
    table.write_text("# SDS/NaCl series\nfile,SDS,NaCl\ns1,0.05,0.0\nrun2/s2.dat, 0.10 , 0.01\n")
    assert read_composition_table(table) == {
        "s1": {"SDS": 0.05, "NaCl": 0.0},
        "run2/s2.dat": {"SDS": 0.1, "NaCl": 0.01},
    }
    assert resolve_curve_file(table, "s1") == tmp_path / "s1.txt"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("file,SDS\ns1,abc\n", r"line 2: SDS = 'abc' is not a number"),
        ("file,SDS\ns1,\n", "write 0 for an absent component"),
        ("file,SDS\ns1,5\n", r"not in \[0, 1\] \(percent\?"),
        ("file,SDS\ns1,-0.1\n", r"not in \[0, 1\]"),
        ("file,SDS,PPG\ns1,0.6,0.5\n", "sum to 1.1"),
        ("file,SDS\ns1,0.1\ns1,0.2\n", "line 3: 's1' appears twice"),
        ("file,SDS\ns1,0.1\ns1.txt,0.2\n", "same file as 's1'"),
        ("file,SDS,SDS\ns1,0.1,0.1\n", "SDS named twice"),
        ("file,SDS\ns1,0.1,0.3\n", "3 cells where the header has 2"),
        ("file,SDS\ns9,0.1\n", "no curve file 's9'"),
        ("file,SDS\n", "at least one row"),
        ("file\ns1\n", "a name for every component"),
    ],
)
def test_composition_table_errors(tmp_path: Path, body: str, message: str) -> None:
    _curve_files(tmp_path, "s1.txt")
    table = tmp_path / "t.csv"
    table.write_text(body)
    with pytest.raises(CurveFileError, match=message):
        read_composition_table(table)


def test_composition_table_missing_or_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(CurveFileError, match="no such composition table"):
        read_composition_table(tmp_path / "absent.csv")
    _curve_files(tmp_path, "s1.txt", "s1.dat")
    table = tmp_path / "t.csv"
    table.write_text("file;SDS\ns1;0,1\n")
    with pytest.raises(CurveFileError, match=r"could be s1\.txt, s1\.dat"):
        read_composition_table(table)
    assert read_composition_table(table, check_files=False) == {"s1": {"SDS": 0.1}}
