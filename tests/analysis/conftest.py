"""Synthetic data for analysis tests: sasmodels curves and detector frames made from them.

These do not use the twin (`tandem.sim`) on purpose: they pin analysis to
sasmodels and to the reduction formula, independently of how the twin renders
frames. Tests against the twin's frames live in `test_twin.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest
from sasmodels.core import load_model
from sasmodels.direct_model import call_kernel
from sasmodels.resolution import Pinhole1D

from tandem.analysis.curves import Curve
from tandem.analysis.integration import integrator_for
from tandem.geometry import DetectorGeometry

SAXS_GEOMETRY = DetectorGeometry(
    n_pixels_x=1024,
    n_pixels_y=1024,
    pixel_size_mm=0.172,
    distance_mm=2500.0,
    beam_center_x_px=511.7,
    beam_center_y_px=530.2,
    wavelength_a=1.0332,
    beamstop_radius_mm=2.5,
)
SMALL_GEOMETRY = DetectorGeometry(
    n_pixels_x=128,
    n_pixels_y=128,
    pixel_size_mm=5.0,
    distance_mm=4000.0,
    beam_center_x_px=63.5,
    beam_center_y_px=66.0,
    wavelength_a=6.0,
    beamstop_radius_mm=20.0,
    wavelength_spread=0.1,
)

#: one clearly distinct structure per phase, with unit-free contrast of a typical surfactant in water
PHASES: dict[str, tuple[str, dict[str, float]]] = {
    "sphere": (
        "sphere",
        {
            "radius": 40.0,
            "radius_pd": 0.1,
            "radius_pd_n": 35,
            "sld": 0.4,
            "sld_solvent": 9.4,
            "scale": 0.02,
            "background": 0.01,
        },
    ),
    "cylinder": (
        "cylinder",
        {"radius": 20.0, "length": 300.0, "sld": 0.4, "sld_solvent": 9.4, "scale": 0.02, "background": 0.01},
    ),
    "lamellar": (
        "lamellar_stack_paracrystal",
        {
            "thickness": 30.0,
            "d_spacing": 120.0,
            "sigma_d": 0.05,
            "Nlayers": 20,
            "sld": 0.4,
            "sld_solvent": 9.4,
            "scale": 0.1,
            "background": 0.01,
        },
    ),
    "polymer": ("polymer_excl_volume", {"rg": 80.0, "porod_exp": 1.7, "scale": 1.0, "background": 0.01}),
}


def model_intensity(
    name: str, pars: Mapping[str, float], q: np.ndarray, dq: np.ndarray | None = None
) -> np.ndarray:
    model = load_model(name)
    resolution = Pinhole1D(q, dq) if dq is not None else None
    q_calc = resolution.q_calc if resolution is not None else q
    theory = call_kernel(model.make_kernel([q_calc]), dict(pars))
    return np.asarray(resolution.apply(theory) if resolution is not None else theory)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


@pytest.fixture
def noisy_curve(rng: np.random.Generator) -> Callable[..., Curve]:
    """A smeared sasmodels curve with Gaussian noise of `relative_error` on a log q grid."""

    def make(phase: str, relative_error: float = 0.01, q_min: float = 0.004, q_max: float = 0.5) -> Curve:
        name, pars = PHASES[phase]
        q = np.geomspace(q_min, q_max, 200)
        dq = 0.015 * q
        intensity = model_intensity(name, pars, q, dq)
        sigma = relative_error * intensity
        return Curve(q, intensity + rng.normal(0.0, sigma), sigma, dq)

    return make


def expected_counts(
    geometry: DetectorGeometry,
    intensity_per_cm: Callable[[np.ndarray], np.ndarray],
    *,
    incident: float,
    transmission: float,
    thickness_mm: float,
) -> np.ndarray:
    """Mean counts per pixel: N₀ · T · d · dΣ/dΩ(q) · ΔΩ, zero behind the beam stop."""
    integ = integrator_for(geometry)
    q = integ.ai.array_from_unit(shape=geometry.shape, typ="center", unit="q_A^-1", scale=True)
    mean = incident * transmission * (thickness_mm / 10) * intensity_per_cm(q) * integ.pixel_solid_angle_sr
    g = geometry
    rows, cols = np.indices(g.shape)
    r_mm = np.hypot(cols + 0.5 - g.beam_center_x_px, rows + 0.5 - g.beam_center_y_px) * g.pixel_size_mm
    return np.where(r_mm < g.beamstop_radius_mm, 0.0, mean)


@pytest.fixture
def saxs_geometry() -> DetectorGeometry:
    return SAXS_GEOMETRY


@pytest.fixture
def small_geometry() -> DetectorGeometry:
    return SMALL_GEOMETRY


@pytest.fixture
def counts_for() -> Callable[..., np.ndarray]:
    return expected_counts


@pytest.fixture
def phase_intensity() -> Callable[[str, np.ndarray], np.ndarray]:
    """dΣ/dΩ(q) of a phase, unsmeared, at any array of q (a detector's q map included)."""

    def intensity(phase: str, q: np.ndarray) -> np.ndarray:
        name, pars = PHASES[phase]
        flat = np.asarray(q, dtype=np.float64).ravel()
        order = np.argsort(flat)
        grid = np.geomspace(max(flat.min(), 1e-4), flat.max(), 2000)
        values = np.interp(flat, grid, model_intensity(name, pars, grid))
        return values.reshape(np.shape(q)) if order.size else values

    return intensity


@pytest.fixture
def make_curve(rng: np.random.Generator) -> Callable[..., Curve]:
    """Any sasmodels model as a noisy, smeared curve: make_curve(model, pars, q_min=..., q_max=...)."""

    def make(
        name: str,
        pars: Mapping[str, float],
        *,
        relative_error: float = 0.01,
        q_min: float = 0.004,
        q_max: float = 0.5,
        n: int = 150,
    ) -> Curve:
        q = np.geomspace(q_min, q_max, n)
        dq = 0.015 * q
        intensity = model_intensity(name, pars, q, dq)
        sigma = relative_error * intensity
        return Curve(q, intensity + rng.normal(0.0, sigma), sigma, dq)

    return make


@pytest.fixture
def twin_run() -> Callable[..., str]:
    from tandem.sim.raw_run import write_twin_run

    return write_twin_run
