"""`twin_curve` on any zoo system: the station's instrument takes the system's components."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.sim.reduced_curve import twin_curve
from tandem.sim.zoo import zoo_system


@pytest.mark.parametrize("station", ["saxs", "sans"])
def test_twin_curve_of_a_zoo_system(station: str) -> None:
    system = zoo_system("polymer_surfactant")
    composition = {"C12E8": 0.05, "PPG": 0.15}
    exposure = 10.0 if station == "saxs" else 300.0
    curve, point = twin_curve(
        station, composition, exposure, seed=3, truth=system, components=system.components
    )
    assert point == system(composition, "xray" if station == "saxs" else "neutron")
    assert np.all(np.isfinite(curve.intensity_per_cm))
    assert curve.q_inv_a.size > 50
    again, _ = twin_curve(station, composition, exposure, seed=3, truth=system, components=system.components)
    np.testing.assert_array_equal(curve.intensity_per_cm, again.intensity_per_cm)


def test_twin_curve_defaults_to_the_default_system() -> None:
    _, point = twin_curve("saxs", {"SDS": 0.084, "PPG": 0.06, "NaCl": 0.0}, 10.0)
    assert point.phase == "spherical_micelles"
