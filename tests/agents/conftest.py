"""The agents' test bench: the twin's default system as ground truth, labels straight from it.

Until analysis labels runs, an observation's label is the twin's phase as the
probe can tell it: X-rays cannot tell the two polymer phases apart (the
neutron-only boundary), so SAXS reports them under one merged label.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from tandem.agents.region import FeasibleRegion, region_from_bounds
from tandem.observations import AnalysisStatus, Observation
from tandem.sim.system_phases import (
    D2O,
    DEFAULT_BOUNDS,
    DEFAULT_COMPONENTS,
    H2O,
    NEUTRON_ONLY_BOUNDARY,
    SOLUTE_NAMES,
)
from tandem.sim.systems import phases_of
from tandem.stations import SANS, SAXS, Probe

XRAY_BLIND_LABEL = "polymer (x-ray blind)"


def probe_label(phase: str, probe: Probe) -> str:
    if probe is Probe.XRAY and phase in NEUTRON_ONLY_BOUNDARY:
        return XRAY_BLIND_LABEL
    return phase


def default_region(**kwargs: object) -> FeasibleRegion:
    return region_from_bounds(
        DEFAULT_COMPONENTS,
        DEFAULT_BOUNDS,
        H2O,
        solvents={SAXS: H2O, SANS: D2O},
        **kwargs,  # type: ignore[arg-type]
    )


_counter = itertools.count()


def observe(
    fractions: Sequence[float] | np.ndarray,
    probe: Probe = Probe.NEUTRON,
    *,
    station: str | None = None,
    label: str | None = None,
    status: AnalysisStatus = AnalysisStatus.OK,
    features: dict[str, float] | None = None,
    sample_uid: str | None = None,
) -> Observation:
    """An observation of the twin at `fractions` (SDS, PPG, NaCl mass fractions)."""
    fractions = np.asarray(fractions, dtype=np.float64)
    phase = str(phases_of(fractions[None])[0])
    return Observation(
        sample_uid=sample_uid or f"sample-{next(_counter)}",
        run_uid=str(uuid.uuid4()),
        campaign_id="test",
        station=station or (SAXS if probe is Probe.XRAY else SANS),
        probe=probe,
        composition=dict(zip(SOLUTE_NAMES, map(float, fractions), strict=True)),
        status=status,
        exposure_s=1.0,
        label=label if label is not None else probe_label(phase, probe),
        features=features or {},
    )


def grid(region: FeasibleRegion, per_axis: int = 12) -> np.ndarray:
    axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(region.lower, region.upper, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, region.dim)


def accuracy(predicted: Sequence[str | None], points: np.ndarray) -> float:
    truth = phases_of(points)
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


@pytest.fixture
def region() -> FeasibleRegion:
    return default_region()


@pytest.fixture
def observe_twin() -> Callable[..., Observation]:
    return observe


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
