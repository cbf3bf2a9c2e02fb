"""Linear and mixed-integer linear programs, solved by HiGHS through `highspy`, silently.

    minimise    cost · x
    subject to  row_lower <= A x <= row_upper,   lower <= x <= upper,
                x_j integral where `integral[j]`

Why not `scipy.optimize.milp`: scipy (1.17 included) vendors HiGHS 1.12.0, whose MIP
solver writes ``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();``
with a bare printf to the process's stdout whenever it repairs a solution of the presolved
problem (ERGO-Code/HiGHS#2783; jump-dev/HiGHS.jl#312, #318). No option silences a printf,
and redirecting file descriptor 1 around a solve is not safe while other threads write to
stdout. HiGHS 1.13.0 dropped the line. `highspy` 1.14.0 is avoided too: its presolve
could return a wrong "optimal" MIP solution (ERGO-Code/HiGHS#2961, fixed in 1.15.0).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass
from enum import StrEnum

import highspy
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tandem.errors import TandemError


def _silence_the_banner() -> None:
    """Build the process's first `Highs` with C stdout on /dev/null, so its banner goes nowhere.

    highspy 1.16 prints "Running HiGHS ... Copyright ..." from the constructor of the first Highs
    object in a process, before any option (`output_flag`) can be set, so every command that
    solved a recipe showed it. Later objects do not print it. This runs once, on import: module
    imports happen before the threads of a campaign or a station start, so no one else's output
    can fall into the redirection.
    """
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (embedded): nothing would show anyway
        highspy.Highs()
        return
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)  # C stdio may hold the banner in its buffer
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_silence_the_banner()


class InvalidProgramError(TandemError, ValueError):
    """The program itself is malformed (mismatched shapes, NaN, crossed bounds): nothing was solved."""


class ProgramStatus(StrEnum):
    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    #: presolve found a ray or a contradiction without telling which (the MIP solver may stop there)
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    FAILED = "failed"  # the solver stopped without an answer; `message` says why


@dataclass(frozen=True, eq=False)
class ProgramSolution:
    """What HiGHS found. `x` and `objective` are set only when `status` is OPTIMAL."""

    status: ProgramStatus
    x: NDArray[np.float64] | None
    objective: float | None
    message: str

    @property
    def optimal(self) -> bool:
        return self.status is ProgramStatus.OPTIMAL


_STATUS = {
    highspy.HighsModelStatus.kOptimal: ProgramStatus.OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: ProgramStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: ProgramStatus.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: ProgramStatus.INFEASIBLE_OR_UNBOUNDED,
}


def solve_program(
    cost: ArrayLike,
    a: ArrayLike,
    row_lower: ArrayLike,
    row_upper: ArrayLike,
    *,
    lower: ArrayLike,
    upper: ArrayLike,
    integral: ArrayLike | None = None,
) -> ProgramSolution:
    """Minimise `cost · x` over the rows of dense `a` (rows x variables) and the variable bounds.

    Bounds may be ±inf; `integral` (booleans, one per variable) marks the integer
    variables, none by default (a plain LP). Each call uses its own HiGHS instance, so
    calls from several threads do not share solver state, and the answer does not
    depend on what was solved before. Raises `InvalidProgramError` for a malformed program.
    """
    c = _vector("cost", cost)
    n = c.size
    if n == 0:
        raise InvalidProgramError("a program needs at least one variable; cost is empty")
    if not np.all(np.isfinite(c)):
        raise InvalidProgramError(f"cost must be finite, got {c.tolist()}")
    matrix = np.asarray(a, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] != n:
        raise InvalidProgramError(
            f"a must be 2-D with one column per variable ({n}), got shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)):
        raise InvalidProgramError("a must be finite (no NaN or inf coefficients)")
    m = matrix.shape[0]
    row_lo = _bounds("row_lower", row_lower, m)
    row_hi = _bounds("row_upper", row_upper, m)
    col_lo = _bounds("lower", lower, n)
    col_hi = _bounds("upper", upper, n)
    _ordered("row", row_lo, row_hi)
    _ordered("variable", col_lo, col_hi)
    if integral is None:
        is_int = np.zeros(n, dtype=bool)
    else:
        is_int = np.asarray(integral)
        if (
            is_int.shape != (n,)
            or is_int.dtype.kind not in "biu"
            or not np.all((is_int == 0) | (is_int == 1))
        ):
            raise InvalidProgramError(
                f"integral must hold one boolean (or 0/1) per variable ({n}), got {is_int.tolist()!r}"
            )
        is_int = is_int.astype(bool)

    # column-wise sparse: np.nonzero of the transpose walks columns, then rows within each
    cols, rows = np.nonzero(matrix.T)
    start = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n))]).astype(np.int32)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(
        n,
        m,
        rows.size,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        c,
        col_lo,
        col_hi,
        row_lo,
        row_hi,
        start,
        rows.astype(np.int32),
        matrix.T[cols, rows],
        np.where(is_int, int(highspy.HighsVarType.kInteger), int(highspy.HighsVarType.kContinuous)).astype(
            np.int32
        ),
    )
    h.run()
    model_status = h.getModelStatus()
    status = _STATUS.get(model_status, ProgramStatus.FAILED)
    message = h.modelStatusToString(model_status)
    if status is not ProgramStatus.OPTIMAL:
        return ProgramSolution(status, None, None, message)
    x = np.array(h.getSolution().col_value, dtype=float)
    x.flags.writeable = False
    return ProgramSolution(status, x, float(h.getInfo().objective_function_value), message)


def _vector(name: str, values: ArrayLike) -> NDArray[np.float64]:
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidProgramError(f"{name} must be numbers, got {values!r}") from exc
    if v.ndim != 1:
        raise InvalidProgramError(f"{name} must be 1-D, got shape {v.shape}")
    return v


def _bounds(name: str, values: ArrayLike, size: int) -> NDArray[np.float64]:
    v = _vector(name, values)
    if v.size != size:
        raise InvalidProgramError(f"{name} must hold {size} values, got {v.size}")
    if np.any(np.isnan(v)):
        raise InvalidProgramError(f"{name} must not hold NaN (use ±inf for no bound), got {v.tolist()}")
    return v


def _ordered(what: str, lo: NDArray[np.float64], hi: NDArray[np.float64]) -> None:
    crossed = np.flatnonzero(lo > hi)
    if crossed.size:
        i = int(crossed[0])
        raise InvalidProgramError(
            f"{what} {i} has lower bound {float(lo[i])!r} above its upper bound {float(hi[i])!r} "
            f"({crossed.size} such {what}(s)); a lower bound must not exceed the upper"
        )
