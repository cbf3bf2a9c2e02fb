"""Properties of the recipe solver over random stocks, decks and targets.

A returned recipe is replayed here with its own mass balance (not the solver's):
it must make its predicted composition, stay within tolerance of the target, and
break no volume limit. And a target made, by construction, from pipettable volumes
of the stocks must be found.
"""

from __future__ import annotations

import math

from fixtures_deck import COMPONENTS, make_deck, stock
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tandem import Components, Composition
from tandem.robots.deck import Deck, Pipette, Well
from tandem.robots.recipe import Recipe, solve_recipe
from tandem.robots.recipe_feasibility import InfeasibleRecipeError
from tandem.robots.recipe_solver import mix

LIQUIDS = ("water", "d2o", "ethanol")
SOLUTES = ("sds", "peg", "nacl")
PIPETTE_SETS = (
    (Pipette("p300", 20.0, 200.0, "tip_300ul"), Pipette("p1000", 100.0, 1000.0, "tip_1000ul")),
    (Pipette("p20", 2.0, 20.0, "tip_20ul"), Pipette("p300", 20.0, 300.0, "tip_300ul")),
    (Pipette("p1000", 100.0, 1000.0, "tip_1000ul"),),
)


@st.composite
def stock_compositions(draw: st.DrawFn) -> Composition:
    liquid = draw(st.sampled_from(LIQUIDS))
    extra = draw(st.lists(st.sampled_from(LIQUIDS + SOLUTES), max_size=2, unique=True))
    names = [liquid, *(n for n in extra if n != liquid)]
    raw = [draw(st.floats(0.05, 1.0)) for _ in names]
    # solutes stay below 40 % by mass, like real stocks
    weights = {n: (w * 0.4 if n in SOLUTES else w) for n, w in zip(names, raw, strict=True)}
    total = sum(weights.values())
    return Composition(Components(COMPONENTS[n] for n in names), tuple(weights[n] / total for n in names))


@st.composite
def decks(draw: st.DrawFn) -> Deck:
    comps = draw(st.lists(stock_compositions(), min_size=1, max_size=5))
    stocks = [
        stock(
            f"s{i}",
            comp,
            volume_ul=draw(st.floats(0.0, 20000.0)),
            dead_volume_ul=draw(st.sampled_from([0.0, 100.0, 500.0])),
        )
        for i, comp in enumerate(comps)
    ]
    wells = [Well(f"W{i}", draw(st.sampled_from([300.0, 2000.0, 5000.0])), 10.0) for i in range(4)]
    return make_deck(
        stocks, wells=wells, pipettes=draw(st.sampled_from(PIPETTE_SETS)), tips=draw(st.integers(0, 20))
    )


def replay(deck: Deck, recipe: Recipe) -> dict[str, dict[str, float]]:
    """Component masses (mg) in every well the recipe fills, from its transfers alone."""
    wells: dict[str, dict[str, float]] = {}
    for t in recipe.transfers:
        if deck.has_stock(t.source):
            comp = deck.stock(t.source).composition
            fractions, density = comp.mass_fractions, comp.density_g_per_ml
        else:
            masses = wells[t.source]
            total = sum(masses.values())
            fractions = {n: m / total for n, m in masses.items()}
            volume = sum(
                m / COMPONENTS[n].density_g_per_ml for n, m in masses.items() if COMPONENTS[n].is_liquid
            )
            density = total / volume
        into = wells.setdefault(t.destination, {})
        for name, w in fractions.items():
            into[name] = into.get(name, 0.0) + w * density * t.volume_ul
    return wells


def liquid_volume(masses: dict[str, float]) -> float:
    return sum(m / COMPONENTS[n].density_g_per_ml for n, m in masses.items() if COMPONENTS[n].is_liquid)


def check_recipe(deck: Deck, recipe: Recipe, volume_ul: float) -> None:
    pipettes = {p.name: p for p in deck.pipettes}
    for t in recipe.transfers:
        p = pipettes[t.pipette]
        assert p.min_volume_ul * (1 - 1e-9) <= t.volume_ul <= p.max_volume_ul * (1 + 1e-9), t
    taken: dict[str, float] = {}
    for t in recipe.transfers:
        taken[t.source] = taken.get(t.source, 0.0) + t.volume_ul
    filled = replay(deck, recipe)
    for source, v in taken.items():
        if deck.has_stock(source):
            assert v <= deck.stock(source).available_ul * (1 + 1e-9) + 1e-9, source
        else:  # an intermediate: what it holds above its dead volume
            held = liquid_volume(filled[source])
            assert v <= held - deck.well(source).dead_volume_ul + 1e-6, source
    for slot, masses in filled.items():
        well = deck.well(slot)
        assert well.is_empty
        assert liquid_volume(masses) <= well.capacity_ul * (1 + 1e-9)
    made = filled[recipe.destination]
    assert math.isclose(liquid_volume(made), volume_ul, rel_tol=1e-9)
    total = sum(made.values())
    for name in set(made) | set(recipe.target.components):
        w = made.get(name, 0.0) / total
        assert abs(w - recipe.predicted.mass_fraction(name)) < 1e-9
        assert abs(w - recipe.target.mass_fraction(name)) <= recipe.tolerance + 1e-12
    for tip, n in recipe.tips_needed.items():
        assert n <= deck.tips_left(tip)
    assert sum(recipe.tips_needed.values()) == len(recipe.transfers)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deck=decks(),
    weights=st.lists(st.floats(0.0, 1.0), min_size=5, max_size=5),
    volume_ul=st.floats(50.0, 3000.0),
    tolerance=st.sampled_from([1e-4, 1e-3, 1e-2]),
    allow_dilution=st.booleans(),
)
def test_a_returned_recipe_reproduces_its_prediction_and_keeps_every_limit(
    deck: Deck, weights: list[float], volume_ul: float, tolerance: float, allow_dilution: bool
) -> None:
    """Targets anywhere near the stocks' reach: a convex mix of them, nudged."""
    w = weights[: len(deck.stocks)]
    # a weight of 5e-324 is a target, but its mass underflows to nothing: not one worth mixing
    assume(sum(w) > 1e-9)
    parts = [(s.composition, wi) for s, wi in zip(deck.stocks, w, strict=True) if wi > 0]
    want = mix(parts)
    try:
        recipe = solve_recipe(
            deck, want, total_volume_ul=volume_ul, tolerance=tolerance, allow_dilution=allow_dilution
        )
    except InfeasibleRecipeError as error:
        codes = sorted(error.codes)
        event(f"infeasible: {', '.join(codes)}")
        assert codes, "an infeasible target must come with reasons"
        return
    event("made" + (" with dilution" if recipe.intermediates else ""))
    check_recipe(deck, recipe, volume_ul)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    comps=st.lists(stock_compositions(), min_size=1, max_size=4),
    volumes=st.lists(st.one_of(st.just(0.0), st.floats(20.0, 1500.0)), min_size=4, max_size=4),
)
def test_a_target_made_from_pipettable_volumes_is_always_found(
    comps: list[Composition], volumes: list[float]
) -> None:
    """Completeness: if pipettable stock volumes make the target, the solver finds a recipe."""
    volumes = volumes[: len(comps)]
    assume(sum(volumes) > 0)
    want = mix([(c, v) for c, v in zip(comps, volumes, strict=True) if v > 0])
    deck = make_deck(
        [stock(f"s{i}", c, volume_ul=19000.0, dead_volume_ul=100.0) for i, c in enumerate(comps)],
        wells=[Well("W", 10000.0)],
    )
    total = sum(volumes)
    recipe = solve_recipe(deck, want, total_volume_ul=total, tolerance=1e-6)
    check_recipe(deck, recipe, total)
