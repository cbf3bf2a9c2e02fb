"""NIST AFL-agent as a peer, driven from tandem's own venv (bench only; tandem never imports this).

AFL-agent lives in its own virtual environment, ``bench/.venv-afl`` (``bash bench/peers/setup_afl.sh``),
and runs as a subprocess, ``afl_peer.py``, that answers JSON lines (protocol: README.md beside this file)::

    from afl import AFLPeer            # with bench/peers on sys.path
    with AFLPeer() as afl:
        reply = afl.step(compositions, curves, components, grid, candidates, seed=0)
        reply["labels"], reply["n_phases"], reply["grid_labels"], reply["next"], reply["seconds"]

Self-check (a closed loop on a toy 2-D system: spheres below the line A + B = 1, cylinders above)::

    SAS_DLL_PATH=$PWD/.venv/sasmodels-kernels .venv/bin/python bench/peers/afl.py [--steps 20] [--seed 0]
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PEERS = Path(__file__).resolve().parent
VENV = PEERS.parent / ".venv-afl"
SCRIPT = PEERS / "afl_peer.py"
SETUP = "bench/peers/setup_afl.sh"


class AFLPeerError(RuntimeError):
    """The AFL peer could not answer (it said why, died, or took too long)."""


class AFLVenvMissingError(AFLPeerError):
    """The AFL venv is not there: run bench/peers/setup_afl.sh."""


def _curve(c: Any) -> dict[str, list[float]]:
    if isinstance(c, dict):
        q, i = c["q"], c["I"]
    else:  # (q, I) pair
        q, i = c
    return {"q": np.asarray(q, dtype=float).tolist(), "I": np.asarray(i, dtype=float).tolist()}


class AFLPeer:
    """A running ``afl_peer.py`` under the AFL venv's python; a context manager.

    `timeout_s` bounds the wait for each reply (and for the start, which imports AFL: ~3-5 s).
    The peer's stderr (AFL's warnings, tracebacks) goes to a temporary file whose tail is put in
    any error raised.
    """

    def __init__(self, venv: str | os.PathLike[str] | None = None, *, timeout_s: float = 300.0) -> None:
        self.venv = Path(venv) if venv is not None else VENV
        self.python = self.venv / "bin" / "python"
        self.timeout_s = timeout_s
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> AFLPeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self._proc is not None:
            return
        if not self.python.exists():
            raise AFLVenvMissingError(
                f"the AFL-agent peer needs its own venv at {self.venv}, which is missing: "
                f"run `bash {SETUP}` (about 2 minutes and 2 GB) and try again"
            )
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the peer
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)  # tandem's paths must not leak into AFL's interpreter
        self._proc = subprocess.Popen(
            [str(self.python), str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            env=env,
        )
        try:
            hello = self._read(self.timeout_s)
            if not hello.get("ready"):
                raise AFLPeerError(f"the AFL peer did not say it was ready: {hello}")
            self.info = hello
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # -- talking -----------------------------------------------------------------------------------
    def _stderr_tail(self, n: int = 15) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        lines = self._stderr.read().splitlines()[-n:]
        return ("\n--- AFL peer stderr (tail) ---\n" + "\n".join(lines)) if lines else ""

    def _read(self, timeout_s: float) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        if not ready:
            raise AFLPeerError(f"the AFL peer gave no answer within {timeout_s:g} s{self._stderr_tail()}")
        line = proc.stdout.readline()
        if not line:
            code = proc.poll()
            raise AFLPeerError(f"the AFL peer exited (code {code}){self._stderr_tail()}")
        try:
            return dict(json.loads(line))
        except json.JSONDecodeError:
            raise AFLPeerError(f"the AFL peer wrote a line that is not JSON: {line[:200]!r}") from None

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request object, return the reply; an {"error": ...} reply raises AFLPeerError."""
        if self._proc is None:
            raise AFLPeerError("the AFL peer is not running: use `with AFLPeer() as afl:`")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(payload) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise AFLPeerError(f"the AFL peer is gone{self._stderr_tail()}") from None
        reply = self._read(self.timeout_s)
        if "error" in reply:
            raise AFLPeerError(f"AFL peer: {reply['error']}")
        return reply

    def step(
        self,
        compositions: Sequence[Sequence[float]],
        curves: Sequence[Any],
        components: Sequence[str],
        grid: Sequence[Sequence[float]],
        candidates: Sequence[Sequence[float]],
        *,
        seed: int = 0,
        n_phases: int | None = None,
    ) -> dict[str, Any]:
        """One AFL decision: labels of the measured curves, the map on `grid`, the next candidate.

        `curves` are {"q": ..., "I": ...} dicts or (q, I) pairs, one per composition, on any q grids
        that overlap. `n_phases` fixes the cluster count (no silhouette), as the prefab ships.
        """
        payload: dict[str, Any] = {
            "compositions": np.asarray(compositions, dtype=float).reshape(len(compositions), -1).tolist()
            if len(compositions)
            else [],
            "curves": [_curve(c) for c in curves],
            "components": [str(c) for c in components],
            "grid": np.asarray(grid, dtype=float).tolist(),
            "candidates": np.asarray(candidates, dtype=float).tolist(),
            "seed": int(seed),
        }
        if n_phases is not None:
            payload["n_phases"] = int(n_phases)
        return self.request(payload)


# -- self-check ------------------------------------------------------------------------------------
def _toy_truth(a: float, b: float, drift: float = 1.0) -> Any:
    """Spheres below A + B = 1, cylinders above; sizes drift with composition (`drift` = 0: none)."""
    from tandem.sim.truth import TruthPoint

    common = {"sld": 2.0, "sld_solvent": 9.4, "background": 0.002}
    scale = 0.01 + 0.02 * a * drift
    if a + b < 1.0:
        return TruthPoint("spheres", "sphere", {**common, "scale": scale, "radius": 25.0 + 10.0 * b * drift})
    return TruthPoint(
        "cylinders",
        "cylinder",
        {**common, "scale": scale, "radius": 18.0 + 4.0 * b * drift, "length": 150.0 + 100.0 * a * drift},
    )


def _toy_curve(
    a: float, b: float, rng: np.random.Generator, drift: float = 1.0, noise: float = 0.03
) -> tuple[np.ndarray, np.ndarray, str]:
    from tandem.sim.scattering import intensity

    # every sample on a slightly different q grid, as two instruments or configurations would give
    q = np.geomspace(
        0.004 * (1 + 0.5 * rng.random()), 0.5 * (1 - 0.2 * rng.random()), int(rng.integers(150, 260))
    )
    point = _toy_truth(a, b, drift)
    i = intensity(point, q)
    i = i * (1 + noise * rng.standard_normal(q.size))  # relative Gaussian noise
    return q, np.clip(i, 1e-6, None), point.phase


def self_check(
    *,
    steps: int = 20,
    n_start: int = 3,
    seed: int = 0,
    side: int = 21,
    drift: float = 1.0,
    noise: float = 0.03,
    n_phases: int | None = None,
) -> dict[str, Any]:
    from tandem.campaign.metrics import match_labels

    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, side)
    grid = np.array([[x, y] for x in axis for y in axis])
    grid_truth = [_toy_truth(a, b).phase for a, b in grid]
    measured = list(rng.choice(len(grid), size=n_start, replace=False))
    curves, truth = [], []
    for idx in measured:
        q, i, ph = _toy_curve(*grid[idx], rng, drift, noise)
        curves.append((q, i))
        truth.append(ph)
    rows = []
    with AFLPeer() as afl:
        print(f"AFL peer up: afl-agent {afl.info.get('afl_agent')}, prefab {afl.info.get('prefab')}")
        print(" step    n  k  sample-acc  map-acc  AFL s (prefab)  silhouette avg by k")
        for step in range(steps):
            taken = set(measured)
            cand_idx = [j for j in range(len(grid)) if j not in taken]  # prefab has no exclusion
            t0 = time.perf_counter()
            r = afl.step(
                grid[measured], curves, ["A", "B"], grid, grid[cand_idx], seed=seed + step, n_phases=n_phases
            )
            wall = time.perf_counter() - t0
            s_match = match_labels([str(x) for x in r["labels"]], truth)
            s_acc = s_match.accuracy
            m_acc = match_labels([str(x) for x in r["grid_labels"]], grid_truth).accuracy
            sil = r.get("silhouette") or {}
            sil_s = " ".join(f"{k}:{v:.2f}" for k, v in list(sil.items())[:6])
            n = len(measured)
            print(
                f"{step:5d} {n:4d} {r['n_phases']:2d}  {s_acc:10.3f}  {m_acc:7.3f}  "
                f"{r['seconds']:5.2f} ({r.get('pipeline_seconds', 0.0):4.2f})  {sil_s}"
            )
            rows.append(
                {
                    "step": step,
                    "n": n,
                    "n_phases": r["n_phases"],
                    "sample_accuracy": s_acc,
                    "map_accuracy": m_acc,
                    "seconds": r["seconds"],
                    "pipeline_seconds": r.get("pipeline_seconds"),
                    "round_trip_s": wall,
                }
            )
            nxt = cand_idx[int(r["next_index"])]
            measured.append(nxt)
            q, i, ph = _toy_curve(*grid[nxt], rng, drift, noise)
            curves.append((q, i))
            truth.append(ph)
    # the last step's clusters against the truth: rows = AFL labels, columns = truth phases
    print(
        "last step, AFL label x truth:",
        s_match.truth_labels,
        dict(zip(s_match.predicted_labels, s_match.confusion.tolist(), strict=True)),
    )
    at20 = [row for row in rows if row["n"] == 20]
    summary = {
        "final": rows[-1],
        "seconds_at_n20": at20[0]["seconds"] if at20 else None,
        "pipeline_seconds_at_n20": at20[0]["pipeline_seconds"] if at20 else None,
        "mean_seconds": float(np.mean([row["seconds"] for row in rows])),
        "phase_counts": [row["n_phases"] for row in rows],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="AFL-agent peer self-check: a closed loop on a toy 2-D system")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--start", type=int, default=3, help="random measurements before the first AFL step")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drift", type=float, default=1.0, help="size drift within a phase (0: none)")
    ap.add_argument("--noise", type=float, default=0.03, help="relative Gaussian noise on I")
    ap.add_argument("--n-phases", type=int, default=None, help="fix AFL's cluster count (no silhouette)")
    args = ap.parse_args()
    self_check(
        steps=args.steps,
        n_start=args.start,
        seed=args.seed,
        drift=args.drift,
        noise=args.noise,
        n_phases=args.n_phases,
    )
