"""Absolute I(q) of a ground-truth point, with a station's resolution.

sasmodels compiles a model's C kernel on first use (cached on disk under
`SAS_DLL_PATH`); here the loaded kernels and the resolution set-ups
(`DirectModel`, whose pinhole weight matrix is the costly part) are cached in
memory, so that after warm-up an I(q) on a fixed q grid costs a kernel call.

Intensities are differential scattering cross-sections per unit volume,
dΣ/dΩ in 1/cm, including the truth's flat `background`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.sim.instruments import DetectorConfiguration, Instrument
from tandem.sim.truth import TruthError, TruthPoint

FloatArray = npt.NDArray[np.float64]

#: How many (model, q grid, resolution) set-ups to keep: a campaign uses a handful of grids.
_CALCULATOR_CACHE_SIZE = 64


class ScatteringError(TruthError):
    """A truth point that sasmodels cannot evaluate (unknown model or parameter)."""


@cache
def _kernel(model: str) -> Any:
    from sasmodels.core import load_model

    try:
        return load_model(model)
    except Exception as exc:  # sasmodels raises bare Exceptions and ImportErrors for unknown models
        raise ScatteringError(f"sasmodels has no model {model!r} ({exc})") from None


@cache
def model_parameter_names(model: str) -> frozenset[str]:
    """Every parameter `model` accepts, including polydispersity ones (`radius_pd`, ...)."""
    from sasmodels.core import load_model_info

    try:
        info = load_model_info(model)
    except Exception as exc:  # sasmodels raises several types for unknown models
        raise ScatteringError(f"sasmodels has no model {model!r} ({exc})") from None
    names = {"scale", "background"}
    for p in info.parameters.call_parameters:
        names.add(p.name)
        if p.polydisperse:
            names.update(f"{p.name}_{suffix}" for suffix in ("pd", "pd_n", "pd_nsigma", "pd_type"))
    return frozenset(names)


class _Calculators:
    """LRU of `DirectModel`s keyed by model, q grid and resolution."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str, q: FloatArray, dq: FloatArray | None) -> Any:
        digest = hashlib.blake2b(q.tobytes(), digest_size=16)
        if dq is not None:
            digest.update(dq.tobytes())
        key = (model, digest.digest())
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        calculator = _Smeared(model, q, dq) if dq is not None else _direct(model, q)
        with self._lock:
            self._items[key] = calculator
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return calculator


_CALCULATORS = _Calculators(_CALCULATOR_CACHE_SIZE)

#: The smeared model is evaluated no lower than this share of the smallest q smeared (see `_Smeared`).
LOWEST_Q_CALC_SHARE = 0.5


def _direct(model: str, q: FloatArray) -> Any:
    from sasmodels.data import Data1D
    from sasmodels.direct_model import DirectModel

    return DirectModel(Data1D(x=q), _kernel(model))


class _Smeared:
    """A model smeared by sasmodels' pinhole resolution, evaluated only where the resolution reaches.

    sasmodels extends the points it evaluates a model at down towards q = 0 for the Gaussian tails
    of the lowest q; there the paracrystal models overflow (`bcc_paracrystal` is inf at 3e-6 1/Å,
    `fcc_paracrystal` at 1e-5), and one inf, even under a weight of 0, makes every smeared value NaN.
    A real pinhole resolution is a broadened triangle that never reaches q = 0 (Barker & Pedersen
    1995, which sasmodels follows in cutting the Gaussian at 2.5 sigma), so the model is not evaluated
    below `LOWEST_Q_CALC_SHARE` of the smallest q; sasmodels renormalises each point's weights over
    what is left.
    """

    def __init__(self, model: str, q: FloatArray, dq: FloatArray) -> None:
        from sasmodels.resolution import Pinhole1D

        q_calc = Pinhole1D(q, dq).q_calc
        q_calc = np.unique(q_calc[q_calc >= LOWEST_Q_CALC_SHARE * float(q.min())])
        self._resolution = Pinhole1D(q, dq, q_calc=q_calc)
        self._model = _direct(model, q_calc)

    def __call__(self, **parameters: float) -> FloatArray:
        return np.asarray(self._resolution.apply(self._model(**parameters)), dtype=np.float64)


def check_truth_point(point: TruthPoint) -> None:
    """Refuse a truth point whose model or parameters sasmodels would not understand."""
    if not isinstance(point, TruthPoint):
        raise ScatteringError(f"a ground truth must return a TruthPoint, got {type(point).__name__}")
    known = model_parameter_names(point.model)
    unknown = sorted(set(point.parameters) - known)
    if unknown:
        raise ScatteringError(
            f"model {point.model!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(known))}"
        )
    bad = {k: v for k, v in point.parameters.items() if not np.isfinite(v)}
    if bad:
        raise ScatteringError(f"parameters of {point.model!r} must be finite numbers, got {bad}")


def intensity(point: TruthPoint, q_inv_a: npt.ArrayLike, dq_inv_a: npt.ArrayLike | None = None) -> FloatArray:
    """dΣ/dΩ (1/cm) of `point` at `q_inv_a`, smeared by a Gaussian of 1-σ width `dq_inv_a` if given."""
    check_truth_point(point)
    q = np.ascontiguousarray(q_inv_a, dtype=np.float64)
    if q.ndim != 1 or q.size == 0 or not np.all(np.isfinite(q)) or np.any(q <= 0):
        raise ScatteringError("q must be a non-empty 1-D array of positive, finite values (1/Å)")
    dq: FloatArray | None = None
    if dq_inv_a is not None:
        dq = np.ascontiguousarray(np.broadcast_to(np.asarray(dq_inv_a, dtype=np.float64), q.shape))
        if np.any(dq < 0) or not np.all(np.isfinite(dq)):
            raise ScatteringError("dq must be finite and >= 0")
        if not np.any(dq > 0):
            dq = None
    calculator = _CALCULATORS.get(point.model, q, dq)
    result = calculator(**_as_kwargs(point.parameters))
    return np.asarray(result, dtype=np.float64)


def instrument_intensity(
    point: TruthPoint,
    q_inv_a: npt.ArrayLike,
    instrument: Instrument,
    configuration: str | DetectorConfiguration | None = None,
) -> FloatArray:
    """dΣ/dΩ (1/cm) as a station would measure it: smeared with the configuration's pinhole resolution."""
    config = (
        configuration
        if isinstance(configuration, DetectorConfiguration)
        else instrument.configuration(configuration)
    )
    q = np.asarray(q_inv_a, dtype=np.float64)
    return intensity(point, q, instrument.q_resolution(config, q))


def _as_kwargs(parameters: Mapping[str, float]) -> dict[str, float]:
    return {name: float(value) for name, value in parameters.items()}
