"""NIST AFL-agent 1.3.1 as a phase-mapping peer, spoken to over JSON lines (bench only).

Run by the AFL venv's python, never by tandem's (``bash bench/peers/setup_afl.sh`` makes it):

    bench/.venv-afl/bin/python bench/peers/afl_peer.py

On start it writes one line ``{"ready": true, "afl_agent": "1.3.1", ...}``. Then, for every request
line on stdin, one reply line on stdout (see README.md beside this file for the full protocol)::

    {"compositions": [[...], ...], "curves": [{"q": [...], "I": [...]}, ...], "components": [...],
     "grid": [[...], ...], "candidates": [[...], ...], "seed": 0}
    -> {"labels": [...], "n_phases": k, "grid_labels": [...], "next": [...], "next_index": i,
        "seconds": s, "pipeline_seconds": s_afl, "silhouette": {"2": avg, ...} | null,
        "note": "..." (only when something was not AFL's own answer)}
    or {"error": "..."}

Optional request keys: ``"n_phases": k`` runs the clustering with a fixed count and no silhouette
(which is what the prefab's JSON ships with: ``use_silhouette: false, n_phases: 2``).

How AFL is called: the ``find_boundaries`` prefab is loaded with ``AFL.double_agent.prefab.
load_prefab`` and run with ``Pipeline.calculate`` as shipped (Standardize x2 -> SavgolFilter
log-derivative -> Similarity (laplacian, gamma 1e-4) -> SpectralClustering -> GaussianProcess
Classifier (Matern nu 1.5) -> MaxValueAF on ``extrap_entropy``). Only three things are set on the
loaded ops, all of which the prefab leaves to its user (its tutorial edits them the same way):

* the two ``Standardize`` ops get ``min_val``/``max_val`` per component from the bounds of the
  request's space (the prefab ships bounds for components named A in 0..10 and B in 0..25);
* ``SpectralClustering.use_silhouette = True`` so the data chooses the phase count (the prefab's
  JSON has it False with ``n_phases: 2``; send ``n_phases`` to get that shipped behaviour);
* the dataset's variable names are the prefab's: ``composition`` (sample, component),
  ``composition_grid`` (grid, component) and ``measurement`` (sample, x) with ``x`` = q.

``composition_grid`` is the request's *candidates*: MaxValueAF picks the point of highest GP-class
entropy from that discrete set (randomly among those within 5 % of the maximum; numpy's global RNG,
seeded from the request's seed). The prefab has no exclusion of measured points, so the caller
should leave measured compositions out of the candidates. The map on the request's *grid* comes
from a second ``GaussianProcessClassifier`` op, built with the prefab's own GP arguments, fitted on
the same labels and evaluated on the grid (skipped when grid and candidates are the same points).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings

# Keep stdout for the protocol alone: whatever AFL, sklearn, tqdm or a C library prints goes to
# stderr. The protocol writes to a duplicate of the original stdout.
_PROTOCOL_OUT = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from AFL.double_agent.Extrapolator import GaussianProcessClassifier  # noqa: E402
from AFL.double_agent.Labeler import SpectralClustering  # noqa: E402
from AFL.double_agent.prefab import load_prefab  # noqa: E402
from AFL.double_agent.Preprocessor import SavgolFilter, Standardize  # noqa: E402

try:
    from importlib.metadata import version as _version

    AFL_VERSION = _version("afl-agent")
except Exception:  # pragma: no cover - only when run outside the venv setup_afl.sh makes
    AFL_VERSION = "unknown"

PREFAB = "find_boundaries"


class RequestError(ValueError):
    """A request the peer cannot answer; its message goes back as {"error": ...}."""


def _matrix(value: object, name: str, width: int | None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise RequestError(f"{name} must be a list of lists of numbers") from None
    if arr.size == 0:
        arr = arr.reshape(0, width or 0)
    if arr.ndim != 2 or (width is not None and arr.shape[1] != width):
        raise RequestError(f"{name} must be n x {width if width is not None else 'd'}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise RequestError(f"{name} holds a value that is not a finite number")
    return arr


def common_q_grid(curves: list[dict], npts: int) -> tuple[np.ndarray, np.ndarray]:
    """All curves on one shared q grid, as AFL's ops expect one ``x`` coordinate for every sample.

    The grid is `npts` points evenly spaced in log q over the range every curve covers (from the
    largest of the curves' smallest q to the smallest of their largest q): no curve is extrapolated.
    Each curve is interpolated linearly in (log q, log I) through its positive-intensity points;
    `npts` is the prefab SavgolFilter's own ``npts`` (250), so its resampling onto an even log-q grid
    is then one to one.
    """
    qs, logis = [], []
    for i, curve in enumerate(curves):
        if not isinstance(curve, dict) or "q" not in curve or "I" not in curve:
            raise RequestError(f"curves[{i}] must be an object with 'q' and 'I'")
        q = np.asarray(curve["q"], dtype=float)
        inten = np.asarray(curve["I"], dtype=float)
        if q.ndim != 1 or q.shape != inten.shape:
            raise RequestError(f"curves[{i}]: q and I must be 1-D lists of the same length")
        keep = np.isfinite(q) & np.isfinite(inten) & (q > 0) & (inten > 0)
        if keep.sum() < 2:
            raise RequestError(f"curves[{i}] has fewer than 2 points with q > 0 and I > 0")
        order = np.argsort(q[keep])
        qs.append(np.log10(q[keep][order]))
        logis.append(np.log10(inten[keep][order]))
    lo = max(lq[0] for lq in qs)
    hi = min(lq[-1] for lq in qs)
    if not hi > lo:
        raise RequestError(
            f"the curves share no q range (largest q_min {10**lo:.4g} >= smallest q_max {10**hi:.4g})"
        )
    log_q = np.linspace(lo, hi, npts)
    measured = np.stack([10 ** np.interp(log_q, lq, li) for lq, li in zip(qs, logis, strict=True)])
    return 10**log_q, measured


def _pipeline(components: list[str], bounds: np.ndarray, n_phases: int | None):
    pipeline = load_prefab(PREFAB)
    lo = {c: float(b) for c, b in zip(components, bounds[0], strict=True)}
    hi = {c: float(b) for c, b in zip(components, bounds[1], strict=True)}
    savgol = spectral = gp = None
    for op in pipeline.ops:
        if isinstance(op, Standardize):
            op.min_val, op.max_val = dict(lo), dict(hi)
        elif isinstance(op, SavgolFilter):
            savgol = op
        elif isinstance(op, SpectralClustering):
            spectral = op
        elif isinstance(op, GaussianProcessClassifier):
            gp = op
    if savgol is None or spectral is None or gp is None:
        raise RuntimeError(
            f"prefab {PREFAB!r} of afl-agent {AFL_VERSION} is not the pipeline this peer knows"
        )
    if n_phases is None:
        spectral.use_silhouette = True
    else:
        spectral.use_silhouette = False
        spectral.params["n_phases"] = int(n_phases)
    return pipeline, savgol, spectral, gp


def _map_on_grid(
    result: xr.Dataset,
    gp: GaussianProcessClassifier,
    grid: np.ndarray,
    components: list[str],
    bounds: np.ndarray,
) -> np.ndarray:
    """The map on the prediction grid: the prefab's GaussianProcessClassifier (same arguments)
    fitted on the same labels, evaluated on the grid (the prefab's own GP runs on the candidates)."""
    extra = xr.Dataset({"prediction_grid": (("pgrid", "component"), grid)}, coords={"component": components})
    ds2 = result.drop_dims("grid").merge(extra)
    std = Standardize(
        input_variable="prediction_grid",
        output_variable="normalized_prediction_grid",
        dim="pgrid",
        component_dim="component",
        min_val=dict(zip(components, bounds[0].tolist(), strict=True)),
        max_val=dict(zip(components, bounds[1].tolist(), strict=True)),
    )
    std.calculate(ds2)
    ds2 = std.add_to_dataset(ds2)
    gp2 = GaussianProcessClassifier(
        feature_input_variable=gp.feature_input_variable,
        predictor_input_variable=gp.predictor_input_variable,
        output_prefix="map",
        grid_variable="normalized_prediction_grid",
        grid_dim="pgrid",
        sample_dim=gp.sample_dim,
        kernel=gp.kernel,
        kernel_kwargs=dict(gp.kernel_kwargs),
        optimizer=gp.optimizer,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp2.calculate(ds2)
    return np.asarray(gp2.output["map_mean"].values).astype(int)


def _parse(req: object) -> tuple[list[str], np.ndarray, list, np.ndarray, np.ndarray]:
    """The request's components, compositions, curves, grid and candidates, checked."""
    if not isinstance(req, dict):
        raise RequestError("a request is a JSON object")
    missing = [k for k in ("compositions", "curves", "components", "grid", "candidates") if k not in req]
    if missing:
        raise RequestError(f"request lacks {', '.join(missing)}")
    components = [str(c) for c in req["components"]]
    d = len(components)
    if d == 0 or len(set(components)) != d:
        raise RequestError("components must be a non-empty list of distinct names")
    comps = _matrix(req["compositions"], "compositions", d)
    grid = _matrix(req["grid"], "grid", d)
    cands = _matrix(req["candidates"], "candidates", d)
    curves = req["curves"]
    if not isinstance(curves, list) or len(curves) != len(comps):
        raise RequestError(f"curves must be a list of {len(comps)} curves, one per composition")
    if len(cands) == 0:
        raise RequestError("candidates is empty: the acquisition has nothing to choose from")
    return components, comps, curves, grid, cands


def answer(req: dict) -> dict:
    t0 = time.perf_counter()
    components, comps, curves, grid, cands = _parse(req)
    d = len(components)
    seed = int(req.get("seed", 0))
    n_fixed = req.get("n_phases")
    np.random.seed(seed % 2**32)  # MaxValueAF draws among near-ties with numpy's global RNG

    # Standardize bounds: the space the request spans (grid, candidates and measured points).
    every = np.concatenate([a for a in (grid, cands, comps) if len(a)])
    bounds = np.stack([every.min(0), every.max(0)])
    flat = bounds[1] - bounds[0] <= 0
    bounds[1, flat] = bounds[0, flat] + 1.0  # a constant component: any non-zero span will do

    n = len(comps)
    if n == 0:
        i = int(np.random.randint(len(cands)))
        return {
            "labels": [],
            "n_phases": 0,
            "grid_labels": [0] * len(grid),
            "next": cands[i].tolist(),
            "next_index": i,
            "seconds": time.perf_counter() - t0,
            "silhouette": None,
            "note": "no measurement yet: AFL has nothing to run on; next is a random candidate",
        }

    pipeline, savgol, spectral, gp = _pipeline(components, bounds, n_fixed)
    q, measured = common_q_grid(curves, int(savgol.npts))
    ds = xr.Dataset(
        {
            "composition": (("sample", "component"), comps),
            "composition_grid": (("grid", "component"), cands),
            "measurement": (("sample", "x"), measured),
        },
        coords={"component": components, "x": q},
    )
    note = None
    t_pipe = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = pipeline.calculate(ds, disable_progress_bar=True)
        t_pipe = time.perf_counter() - t_pipe
        labels = np.asarray(result["labels"].values).astype(int)
        cand_labels = np.asarray(result["extrap_mean"].values).astype(int)
        next_point = np.asarray(result["next_sample"].values).reshape(-1, d)[0]
    except Exception as exc:
        if n >= 3:
            raise
        # Fewer than 3 curves: with the silhouette AFL itself calls it one phase (it tries 2..n-1
        # clusters, an empty range); a fixed count larger than n makes sklearn's clustering fail.
        # Either way: one phase, and MaxValueAF on a flat entropy is a random candidate.
        note = f"AFL's clustering could not run on {n} curve(s) ({type(exc).__name__}: {exc}); all labels 0"
        labels = np.zeros(n, dtype=int)
        cand_labels = np.zeros(len(cands), dtype=int)
        next_point = cands[int(np.random.randint(len(cands)))]
        result = None
        t_pipe = time.perf_counter() - t_pipe
    k = len(np.unique(labels))
    if k == 1:
        # AFL's GP op in the one-label case fills its map with ones (a label no sample has): the
        # map is that single phase, label 0.
        labels = np.zeros(n, dtype=int)
        cand_labels = np.zeros(len(cands), dtype=int)

    if k == 1:
        grid_labels = np.zeros(len(grid), dtype=int)
    elif grid.shape == cands.shape and np.array_equal(grid, cands):
        grid_labels = cand_labels
    else:
        grid_labels = _map_on_grid(result, gp, grid, components, bounds)

    dist = np.abs(cands - next_point[None, :]).max(1)
    next_index = int(np.argmin(dist))
    silh = getattr(spectral, "silh_dict", None) if n_fixed is None else None
    reply = {
        "labels": labels.tolist(),
        "n_phases": k,
        "grid_labels": np.asarray(grid_labels).tolist(),
        "next": cands[next_index].tolist(),
        "next_index": next_index,
        "seconds": time.perf_counter() - t0,
        "pipeline_seconds": t_pipe,
        "silhouette": (
            {str(int(m)): float(v) for m, v in zip(silh["n_phases"], silh["avg_scores"], strict=True)}
            if silh
            else None
        ),
    }
    if note:
        reply["note"] = note
    return reply


def main() -> int:
    _PROTOCOL_OUT.write(
        json.dumps({"ready": True, "afl_agent": AFL_VERSION, "prefab": PREFAB, "pid": os.getpid()}) + "\n"
    )
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        try:
            reply = answer(json.loads(line))
        except RequestError as exc:
            reply = {"error": str(exc)}
        except json.JSONDecodeError as exc:
            reply = {"error": f"request is not JSON: {exc}"}
        except Exception as exc:  # AFL failed: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            reply = {"error": f"AFL failed: {type(exc).__name__}: {exc}"}
        _PROTOCOL_OUT.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
