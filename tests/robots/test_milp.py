"""The HiGHS wrapper under the recipe solver: right answers, typed errors, and nothing on stdout."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fixtures_deck import COMPONENTS, D2O, make_deck, solution, stock
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem import Composition
from tandem.errors import TandemError
from tandem.robots.deck import Deck, Pipette
from tandem.robots.milp import InvalidProgramError, ProgramStatus, solve_program
from tandem.robots.recipe import solve_recipe

HIGHS_DEBUG_LINE = "HighsMipSolverData::transformNewIntegerFeasibleSolution"


def sans_like_deck() -> Deck:
    """D2O, SDS 30 wt %, PEG 40 wt % and NaCl 20 wt % stocks; p20, p300 and p1000: the demo's SANS lab."""
    return make_deck(
        [
            stock("d2o", Composition.pure(D2O)),
            stock("sds_30wt", solution({"sds": 0.3}, "d2o")),
            stock("peg_40wt", solution({"peg": 0.4}, "d2o")),
            stock("nacl_20wt", solution({"nacl": 0.2}, "d2o")),
        ],
        pipettes=(
            Pipette("p20", 1.0, 20.0, "tip_20ul"),
            Pipette("p300", 20.0, 300.0, "tip_300ul"),
            Pipette("p1000", 100.0, 1000.0, "tip_1000ul"),
        ),
    )


def in_d2o(fractions: dict[str, float]) -> Composition:
    return Composition.from_mass_fractions(
        [COMPONENTS[n] for n in [*fractions, "d2o"]], fractions, balance="d2o"
    )


def test_a_recipe_that_made_highs_1_12_print_writes_nothing_to_stdout(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """600 µL of 5 wt % PEG with a trace (0.01 wt %) of SDS, below the tolerance.

    Through scipy 1.17's `milp` (HiGHS 1.12.0) this solve printed the HiGHS debug line
    to file descriptor 1 six times; `capfd` sees the C level, not only `sys.stdout`.
    """
    capfd.readouterr()
    recipe = solve_recipe(sans_like_deck(), in_d2o({"sds": 1e-4, "peg": 0.05}), total_volume_ul=600.0)
    out, err = capfd.readouterr()
    assert HIGHS_DEBUG_LINE not in out + err
    assert out == ""
    # one SDS transfer (>= 1 µL of 30 wt %) would overshoot by 4e-4: leaving SDS out is optimal
    assert set(recipe.volumes_by_source()) == {"d2o", "peg_40wt"}
    assert sum(recipe.volumes_by_source().values()) == pytest.approx(600.0)
    assert recipe.deviation == pytest.approx(1e-4, rel=1e-6)


def test_recipes_solved_on_two_threads_at_once_match_the_serial_answers(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The campaign solves recipes on two station threads: each solve has its own HiGHS instance."""
    deck = sans_like_deck()
    targets = [
        in_d2o({"sds": s, "peg": p, "nacl": n})
        for s, p, n in itertools.product((1e-4, 0.02, 0.1), (5e-5, 0.05), (0.0, 0.03))
    ]

    def volumes(target: Composition) -> dict[str, float]:
        return solve_recipe(deck, target, total_volume_ul=600.0).volumes_by_source()

    capfd.readouterr()
    serial = [volumes(t) for t in targets]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(3):
            assert list(pool.map(volumes, targets)) == serial
    assert capfd.readouterr().out == ""


def test_a_linear_program_worked_by_hand() -> None:
    """max x + y with x + 2y <= 4, 3x + y <= 6: the vertex (8/5, 6/5)."""
    res = solve_program(
        [-1.0, -1.0],
        [[1.0, 2.0], [3.0, 1.0]],
        [-np.inf, -np.inf],
        [4.0, 6.0],
        lower=[0, 0],
        upper=[np.inf, np.inf],
    )
    assert res.status is ProgramStatus.OPTIMAL
    assert res.optimal
    assert res.x is not None
    assert res.x == pytest.approx([1.6, 1.2])
    assert res.objective == pytest.approx(-2.8)
    with pytest.raises(ValueError, match="read-only"):
        res.x[0] = 0.0  # the answer is a value: read-only


def test_integrality_changes_the_answer() -> None:
    """The same program with x integral: x = 1, y = 1.5 (objective -2.5); with both integral, -2."""
    a, lo, hi = [[1.0, 2.0], [3.0, 1.0]], [-np.inf, -np.inf], [4.0, 6.0]
    res = solve_program([-1.0, -1.0], a, lo, hi, lower=[0, 0], upper=[9, 9], integral=[True, False])
    assert res.x is not None
    assert res.objective == pytest.approx(-2.5)
    assert res.x == pytest.approx([1.0, 1.5])
    both = solve_program([-1.0, -1.0], a, lo, hi, lower=[0, 0], upper=[9, 9], integral=[1, 1])
    assert both.objective == pytest.approx(-2.0)


def test_an_infeasible_program_has_no_answer() -> None:
    res = solve_program([1.0], [[1.0]], [2.0], [np.inf], lower=[0.0], upper=[1.0])
    assert res.status is ProgramStatus.INFEASIBLE
    assert res.x is None
    assert res.objective is None
    assert not res.optimal
    assert "infeasible" in res.message.lower()


def test_an_unbounded_program_says_so() -> None:
    res = solve_program([-1.0], [[1.0]], [0.0], [np.inf], lower=[0.0], upper=[np.inf])
    assert res.status is ProgramStatus.UNBOUNDED
    assert res.x is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cost": []}, "at least one variable"),
        ({"cost": [1.0, np.nan]}, "cost must be finite"),
        ({"cost": [[1.0, 1.0]]}, "cost must be 1-D"),
        ({"cost": ["a", "b"]}, "cost must be numbers"),
        ({"a": [[1.0, 1.0, 1.0]]}, "one column per variable"),
        ({"a": [1.0, 1.0]}, "one column per variable"),
        ({"a": [[1.0, np.inf]]}, "a must be finite"),
        ({"row_lower": [0.0, 0.0]}, "row_lower must hold 1 values"),
        ({"row_upper": [np.nan]}, "row_upper must not hold NaN"),
        ({"row_lower": [5.0]}, "row 0 has lower bound 5.0 above its upper bound 4.0"),
        ({"lower": [0.0, 3.0]}, "variable 1 has lower bound 3.0 above its upper bound 2.0"),
        ({"upper": [1.0]}, "upper must hold 2 values"),
        ({"integral": [True]}, "one boolean"),
        ({"integral": [0.5, 1.0]}, "one boolean"),
        ({"integral": [2, 0]}, "one boolean"),
    ],
)
def test_a_malformed_program_is_refused_with_what_would_be_valid(
    kwargs: dict[str, object], match: str
) -> None:
    args: dict[str, object] = {
        "cost": [1.0, 1.0],
        "a": [[1.0, 1.0]],
        "row_lower": [1.0],
        "row_upper": [4.0],
        "lower": [0.0, 0.0],
        "upper": [2.0, 2.0],
        "integral": None,
    }
    args.update(kwargs)
    with pytest.raises(InvalidProgramError, match=match) as info:
        solve_program(
            args["cost"],  # type: ignore[arg-type]
            args["a"],  # type: ignore[arg-type]
            args["row_lower"],  # type: ignore[arg-type]
            args["row_upper"],  # type: ignore[arg-type]
            lower=args["lower"],  # type: ignore[arg-type]
            upper=args["upper"],  # type: ignore[arg-type]
            integral=args["integral"],  # type: ignore[arg-type]
        )
    assert isinstance(info.value, TandemError)
    assert isinstance(info.value, ValueError)


coefficients = st.integers(-4, 4).map(float)


@st.composite
def integer_programs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 3))
    m = draw(st.integers(0, 3))
    cost = np.array(draw(st.lists(coefficients, min_size=n, max_size=n)))
    a = np.array(
        draw(st.lists(st.lists(coefficients, min_size=n, max_size=n), min_size=m, max_size=m))
    ).reshape(m, n)
    row_lo = np.array([draw(st.sampled_from([-np.inf, *range(-6, 7)])) for _ in range(m)], dtype=float)
    # an interval above a finite lower bound, or any upper bound (also none) below -inf
    row_hi = np.array(
        [
            draw(st.sampled_from([-2.0, 0.0, 4.0, np.inf]))
            if lo == -np.inf
            else lo + draw(st.sampled_from([0, 1, 3, np.inf]))
            for lo in row_lo
        ],
        dtype=float,
    )
    upper = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=float)
    return cost, a, row_lo, row_hi, upper


@settings(max_examples=150, deadline=None)
@given(integer_programs())
def test_integer_programs_agree_with_enumerating_every_point(
    program: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    cost, a, row_lo, row_hi, upper = program
    n = cost.size
    best: float | None = None
    for point in itertools.product(*(range(int(u) + 1) for u in upper)):
        x = np.array(point, dtype=float)
        activity = a @ x
        if np.all(activity >= row_lo) and np.all(activity <= row_hi):
            value = float(cost @ x)
            best = value if best is None else min(best, value)
    res = solve_program(
        cost, a, row_lo, row_hi, lower=np.zeros(n), upper=upper, integral=np.ones(n, dtype=bool)
    )
    if best is None:
        assert res.status is ProgramStatus.INFEASIBLE
    else:
        assert res.status is ProgramStatus.OPTIMAL
        assert res.objective == pytest.approx(best, abs=1e-9)
        assert res.x is not None
        assert np.allclose(res.x, np.round(res.x), atol=1e-9)
        assert float(cost @ res.x) == pytest.approx(best, abs=1e-9)
