"""Station limits: every parameter out of range is refused with its own typed error and a clear message."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.devices.limits import (
    ExposureOutOfRangeError,
    ScanLimitError,
    StationLimits,
    TemperatureOutOfRangeError,
    TooManyFramesError,
    UnknownConfigurationError,
)
from tandem.errors import TandemError
from tandem.suggestions import InvalidScanError, ScanParameters

LIMITS = StationLimits(
    station="saxs", exposure_s=(0.001, 600.0), temperature_c=(5.0, 90.0), configurations=("short", "long")
)


def test_a_scan_inside_every_range_passes() -> None:
    LIMITS.check(ScanParameters(exposure_s=1.0, configuration="long", temperature_c=90.0, n_frames=100))
    LIMITS.check(ScanParameters(exposure_s=600.0, configuration="short", temperature_c=None))


@pytest.mark.parametrize(
    ("scan", "error", "words"),
    [
        (ScanParameters(exposure_s=601.0, configuration="short"), ExposureOutOfRangeError, "[0.001, 600] s"),
        (ScanParameters(exposure_s=1e-4, configuration="short"), ExposureOutOfRangeError, "exposure"),
        (ScanParameters(exposure_s=1.0, configuration="medium"), UnknownConfigurationError, "short, long"),
        (
            ScanParameters(exposure_s=1.0, configuration="short", temperature_c=95.0),
            TemperatureOutOfRangeError,
            "[5, 90] °C",
        ),
        (
            ScanParameters(exposure_s=1.0, configuration="short", temperature_c=-20.0),
            TemperatureOutOfRangeError,
            "-20",
        ),
        (
            ScanParameters(exposure_s=1.0, configuration="short", n_frames=101),
            TooManyFramesError,
            "at most 100",
        ),
    ],
)
def test_out_of_range_is_refused_with_a_message_that_says_what_would_do(
    scan: ScanParameters, error: type[ScanLimitError], words: str
) -> None:
    with pytest.raises(error) as info:
        LIMITS.check(scan)
    assert isinstance(info.value, TandemError)
    assert isinstance(info.value, ValueError)
    assert words in str(info.value)
    assert "'saxs'" in str(info.value)


def test_a_negative_exposure_never_becomes_scan_parameters() -> None:
    with pytest.raises(InvalidScanError, match="positive"):
        ScanParameters(exposure_s=-1.0, configuration="short")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"exposure_s": (10.0, 1.0)},
        {"temperature_c": (math.nan, 5.0)},
        {"configurations": ()},
        {"max_frames": 0},
    ],
)
def test_limits_that_no_station_could_have_are_refused(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "station": "x",
        "exposure_s": (1.0, 2.0),
        "temperature_c": (5.0, 6.0),
        "configurations": ("a",),
    }
    with pytest.raises(ScanLimitError):
        StationLimits(**{**base, **kwargs})  # type: ignore[arg-type]


@given(
    exposure_s=st.floats(min_value=1e-6, max_value=1e4),
    temperature_c=st.floats(min_value=-100, max_value=200),
)
def test_check_accepts_exactly_the_closed_ranges(exposure_s: float, temperature_c: float) -> None:
    scan = ScanParameters(exposure_s=exposure_s, configuration="short", temperature_c=temperature_c)
    inside = 0.001 <= exposure_s <= 600.0 and 5.0 <= temperature_c <= 90.0
    if inside:
        LIMITS.check(scan)
    else:
        with pytest.raises((ExposureOutOfRangeError, TemperatureOutOfRangeError)):
            LIMITS.check(scan)
