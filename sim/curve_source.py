"""A second source of reduced 1-D curves, independent of the twin's frame path.

The twin makes its curves by rendering 2-D detector frames (`sim.detector_image`) and reducing them
with our own `analysis.reduction`; an analysis tuned on those alone could lean on quirks of our
reduction (its q binning, its resolution, its solvent subtraction). Real curves from another facility
or a past beamtime arrive differently, and this module imitates that delivery:

- I(q) straight from sasmodels (`tandem.sim.scattering.intensity`) on the other pipeline's own q grid
  per probe (log-spaced, not the twin's), optionally jittered per sample so no two curves share q;
- the solvent's flat scattering left in (not subtracted) next to the truth's own `background`, each
  varying a little from sample to sample, as when someone else's blank is not ours to subtract;
- a multiplicative scale error per sample (thickness, transmission, calibration standard);
- Poisson counting noise with σ = √counts, and no q resolution at all: the curve's `dq_inv_a` is zero
  and its metadata says `"resolution": "none"` (sasmodels' `Pinhole1D` treats zero width as no
  smearing, so fits on such a curve compare unsmeared models).

Each curve's metadata records what was drawn for it (scale factor, backgrounds, grid), never the
truth's phase: the analysis must find that itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.analysis.curves import Curve
from tandem.errors import TandemError
from tandem.sim.scattering import ScatteringError, intensity
from tandem.sim.truth import GroundTruth, TruthPoint
from tandem.stations import Probe

FloatArray = npt.NDArray[np.float64]

#: neutron SLDs (1e-6/Å²) of light and heavy water, to tell how much H a truth's solvent carries
_SLD_H2O = -0.561
_SLD_D2O = 6.393
SOURCE_NAME = "curve_source"


class CurveSourceError(TandemError, ValueError):
    """A request the curve source cannot serve (unknown probe, bad settings, bad generator)."""


@dataclass(frozen=True)
class ProbeGrid:
    """How the other facility's pipeline delivers curves of one probe.

    `counts_per_unit_intensity` turns 1/cm into expected counts per q point; it sets the noise: at
    the flat background level the relative error is 1/√(background × factor).
    """

    q_min_inv_a: float
    q_max_inv_a: float
    n_points: int
    #: flat scattering of the pure solvent left in the curve (1/cm)
    solvent_background_per_cm: float
    counts_per_unit_intensity: float

    def __post_init__(self) -> None:
        if not (0 < self.q_min_inv_a < self.q_max_inv_a and math.isfinite(self.q_max_inv_a)):
            raise CurveSourceError(
                f"a q range needs 0 < q_min < q_max (1/Å), got {self.q_min_inv_a}..{self.q_max_inv_a}"
            )
        if self.n_points < 2:
            raise CurveSourceError(f"a q grid needs at least 2 points, got {self.n_points}")
        if not (self.solvent_background_per_cm >= 0 and math.isfinite(self.solvent_background_per_cm)):
            raise CurveSourceError(
                f"the solvent background is a finite value >= 0 (1/cm), got {self.solvent_background_per_cm}"
            )
        if not (self.counts_per_unit_intensity > 0 and math.isfinite(self.counts_per_unit_intensity)):
            raise CurveSourceError(
                f"the counting factor is a finite value > 0, got {self.counts_per_unit_intensity}"
            )

    def q_inv_a(self, stretch: float = 1.0, shift: float = 1.0) -> FloatArray:
        """The log-spaced grid; `shift` moves both ends, `stretch` the top end only (per-sample jitter)."""
        return np.geomspace(self.q_min_inv_a * shift, self.q_max_inv_a * shift * stretch, self.n_points)


# X-rays: water's compressibility scattering (0.016/cm) and ~4 % error at that level (600 counts).
_XRAY_GRID = ProbeGrid(0.006, 0.45, 150, solvent_background_per_cm=0.016, counts_per_unit_intensity=4.0e4)
# Neutrons: D2O's incoherent scattering and ~4 % error at that level; a lighter solvent raises the
# flat level (see `CurveSourceSettings.h2o_background_per_cm`).
_NEUTRON_GRID = ProbeGrid(0.003, 0.35, 90, solvent_background_per_cm=0.08, counts_per_unit_intensity=8.0e3)


@dataclass(frozen=True)
class CurveSourceSettings:
    """What the other pipeline does to a curve; the defaults are typical, every one can be turned off."""

    grids: Mapping[Probe, ProbeGrid] = field(
        default_factory=lambda: {Probe.XRAY: _XRAY_GRID, Probe.NEUTRON: _NEUTRON_GRID}
    )
    #: RMS of the per-sample multiplicative scale error (log-normal, so the factor stays positive)
    scale_error_rms: float = 0.02
    #: RMS relative variation of each flat background from sample to sample
    background_variation_rms: float = 0.05
    #: RMS relative shift of a sample's q grid (0: every curve of a probe shares one grid). Each
    #: jittered grid is a new entry in `sim.scattering`'s LRU of sasmodels set-ups, so long jittered
    #: batches push out the twin's (costlier, smeared) ones; off by default for that reason
    q_jitter_rms: float = 0.0
    #: flat level (1/cm) of pure H2O for neutrons; a truth whose `sld_solvent` says its solvent holds
    #: light water gets a flat level between the grid's (D2O) and this, linear in the H fraction
    h2o_background_per_cm: float = 1.0

    def __post_init__(self) -> None:
        missing = [p.value for p in Probe if p not in self.grids]
        if missing:
            raise CurveSourceError(f"settings need a grid for every probe; missing {', '.join(missing)}")
        for name in ("scale_error_rms", "background_variation_rms", "q_jitter_rms", "h2o_background_per_cm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise CurveSourceError(f"{name} is a finite value >= 0, got {value}")
        if self.scale_error_rms > 0.5 or self.background_variation_rms > 0.5 or self.q_jitter_rms > 0.2:
            raise CurveSourceError(
                "errors this large are no longer 'a little': keep scale_error_rms and "
                "background_variation_rms <= 0.5 and q_jitter_rms <= 0.2"
            )

    def grid(self, probe: Probe) -> ProbeGrid:
        return self.grids[probe]


DEFAULT_SETTINGS = CurveSourceSettings()


def _probe(probe: Probe | str) -> Probe:
    try:
        return Probe(probe)
    except ValueError:
        raise CurveSourceError(
            f"unknown probe {probe!r}; valid probes: {', '.join(p.value for p in Probe)}"
        ) from None


def solvent_background_per_cm(point: TruthPoint, probe: Probe, settings: CurveSourceSettings) -> float:
    """The mean flat level of the solvent for `point` (before the per-sample variation).

    For neutrons the truth's `sld_solvent`, where its model has one, tells how much light water the
    medium holds (the default system's D2O gives the grid's level; an H2O system some 1/cm). A model
    without it (e.g. `polymer_excl_volume`) gets the grid's level: set the grid for such a system.
    """
    grid = settings.grid(probe)
    sld = point.parameters.get("sld_solvent")
    if probe is not Probe.NEUTRON or sld is None:
        return grid.solvent_background_per_cm
    h_fraction = min(max((_SLD_D2O - float(sld)) / (_SLD_D2O - _SLD_H2O), 0.0), 1.0)
    return (1.0 - h_fraction) * grid.solvent_background_per_cm + h_fraction * settings.h2o_background_per_cm


def simulate_curve(
    truth: GroundTruth,
    composition: Mapping[str, float],
    probe: Probe | str,
    rng: np.random.Generator,
    settings: CurveSourceSettings = DEFAULT_SETTINGS,
) -> Curve:
    """One reduced curve of `composition` as another facility's pipeline would deliver it.

    Raises the truth's own typed error for a composition it rejects, `CurveSourceError` for an
    unknown probe or a `rng` that is not a `numpy.random.Generator`.
    """
    probe = _probe(probe)
    if not isinstance(rng, np.random.Generator):
        raise CurveSourceError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    point = truth(composition, probe)
    grid = settings.grid(probe)
    # Draws in a fixed order, so one seed gives one curve whatever the settings turn off.
    shift, stretch = np.exp(rng.normal(0.0, settings.q_jitter_rms, size=2))
    scale = float(np.exp(rng.normal(0.0, settings.scale_error_rms)))
    solvent_factor, solute_factor = 1.0 + settings.background_variation_rms * rng.standard_normal(2)
    q = grid.q_inv_a(stretch=float(stretch), shift=float(shift))

    solvent_per_cm = max(solvent_background_per_cm(point, probe, settings) * solvent_factor, 0.0)
    truth_background = float(point.parameters.get("background", 0.0))
    solute_per_cm = max(truth_background * solute_factor, 0.0)
    # The truth's background is replaced by its varied value; the solvent's flat level joins it.
    structure = intensity(_with_background(point, 0.0), q)
    if not np.all(np.isfinite(structure)):
        raise ScatteringError(f"sasmodels gave non-finite I(q) for {point.model} at {dict(composition)}")
    expected_per_cm = scale * (np.maximum(structure, 0.0) + solute_per_cm + solvent_per_cm)

    factor = grid.counts_per_unit_intensity
    counts = rng.poisson(expected_per_cm * factor).astype(np.float64)
    metadata: dict[str, Any] = {
        "source": SOURCE_NAME,
        "resolution": "none",
        "probe": probe.value,
        "composition": {k: float(v) for k, v in composition.items()},
        "scale_error": scale,
        "solvent_background_per_cm": solvent_per_cm,
        "solute_background_per_cm": solute_per_cm,
        "counts_per_unit_intensity": factor,
    }
    return Curve(
        q_inv_a=q,
        intensity_per_cm=counts / factor,
        sigma_per_cm=np.sqrt(np.maximum(counts, 1.0)) / factor,
        dq_inv_a=np.zeros_like(q),
        metadata=metadata,
    )


def simulate_curves(
    truth: GroundTruth,
    compositions: Iterable[Mapping[str, float]],
    probe: Probe | str,
    rng: np.random.Generator,
    settings: CurveSourceSettings = DEFAULT_SETTINGS,
) -> list[Curve]:
    """`simulate_curve` for each composition in turn, drawing from one generator.

    A composition the truth rejects raises its error with a note naming its position in the list.
    """
    probe = _probe(probe)
    curves: list[Curve] = []
    for index, composition in enumerate(compositions):
        try:
            curves.append(simulate_curve(truth, composition, probe, rng, settings))
        except TandemError as exc:
            exc.add_note(f"while simulating composition #{index}: {dict(composition)}")
            raise
    return curves


def _with_background(point: TruthPoint, background_per_cm: float) -> TruthPoint:
    return TruthPoint(point.phase, point.model, {**point.parameters, "background": background_per_cm})
