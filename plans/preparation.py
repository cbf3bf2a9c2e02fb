"""Plans of the formulation lab: prepare a sample, load it into the cell, rinse the cell.

Every plan takes JSON-serialisable arguments, so the queue server can validate
and run it unchanged; devices are parameters annotated with the Protocols of
their seams (`tandem.protocols`: `LiquidHandlerDevice`, `CellLoaderDevice`),
which each plan checks first (`tandem.plans.device_check`): a device that lacks
what the plan calls is refused with a `WrongDeviceError` before anything moves.
The queue server is given the device names a parameter accepts by the station's
startup (``profiles/queueserver/startup.py``).

How a target composition crosses the plan boundary: as mass fractions, the
canonical basis of `tandem.composition`, keyed by component name —

* ``target={"sds": 0.02, "nacl": 0.005}, balance="water"``: the balance takes the
  rest (how a person writes it);
* ``target=composition.to_dict()["mass_fraction"]`` (every component, summing to
  one), no balance (how an agent's `Suggestion` carries it).

The components are looked up on the liquid handler's deck; a name it does not
know, fractions out of range or not summing to one fail with a typed error
before any robot command.

Pipetting happens *before* the run opens, so that the run's start document can
carry the realized composition (target, recipe, realized, sample uid); the
realized composition is also recorded as the first event, so it stays on record
if loading or rinsing fails later in the run. A preparation that itself fails is
recorded as a run of its own that ends with exit status "fail".
"""

# No `from __future__ import annotations` here: bluesky-queueserver reads the plans'
# annotations as objects.
import uuid
from collections.abc import Generator, Mapping
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import FailedStatus, Msg

from tandem.components import Components
from tandem.composition import Composition
from tandem.errors import InvalidCompositionError, TandemError
from tandem.plans import device_check
from tandem.protocols import CellLoaderDevice, LiquidHandlerDevice
from tandem.robots.cell_loader import Dry, Load, Rinse
from tandem.robots.deck import Deck
from tandem.robots.inventory import check_recipe
from tandem.robots.recipe import Recipe, solve_recipe
from tandem.samples import Sample, SampleState

Plan = Generator[Msg, Any, Any]

#: Event streams the plans write, one per step.
PREPARATION_STREAM = "preparation"
LOAD_STREAM = "load"
RINSE_STREAM = "rinse"


def target_composition(
    liquid_handler: LiquidHandlerDevice[Deck], target: Mapping[str, float], balance: str | None = None
) -> Composition:
    """The composition a plan's JSON `target` (mass fractions) and `balance` describe."""
    if not isinstance(target, Mapping) or not target:
        raise InvalidCompositionError(
            f"target must be a non-empty mapping of component name to mass fraction, got {target!r}"
        )
    components = liquid_handler.deck.components
    for name in (*target, *([balance] if balance else [])):
        components[name]  # raises UnknownComponentError naming the deck's components
    fractions = {name: float(w) for name, w in target.items()}
    names = [*fractions, *([balance] if balance and balance not in fractions else [])]
    return Composition.from_mass_fractions(
        Components(components[n] for n in names), fractions, balance=balance
    )


# -- stubs: no run of their own, for composing ---------------------------------------------------


def plan_recipe(
    liquid_handler: LiquidHandlerDevice[Deck],
    target: Composition,
    total_volume_ul: float,
    *,
    destination: str | None = None,
    tolerance: float = 1e-3,
    allow_dilution: bool = False,
) -> Recipe:
    """Solve and check the recipe against the handler's inventory; raises typed errors, sends nothing."""
    recipe = solve_recipe(
        liquid_handler.deck,
        target,
        total_volume_ul=total_volume_ul,
        destination=destination,
        tolerance=tolerance,
        allow_dilution=allow_dilution,
    )
    check_recipe(liquid_handler.deck, recipe)
    return recipe


def pipette_stub(liquid_handler: LiquidHandlerDevice[Deck], recipe: Recipe) -> Plan:
    """Execute `recipe` and return the realized composition."""
    yield from _set_and_wait(liquid_handler, recipe)
    return liquid_handler.realized()


def load_stub(cell_loader: CellLoaderDevice, volume_ul: float, timeout_s: float = 120.0) -> Plan:
    """Load the cell and record the loader's readings in the `load` stream."""
    yield from _set_and_wait(cell_loader, Load(volume_ul=volume_ul, timeout_s=timeout_s))
    yield from bps.trigger_and_read([cell_loader], name=LOAD_STREAM)


def rinse_stub(cell_loader: CellLoaderDevice, n_cycles: int = 2, dry_s: float = 30.0) -> Plan:
    """Rinse and dry the cell and record the loader's readings in the `rinse` stream."""
    yield from _set_and_wait(cell_loader, Rinse(n_cycles=n_cycles))
    if dry_s > 0:
        yield from _set_and_wait(cell_loader, Dry(duration_s=dry_s))
    yield from bps.trigger_and_read([cell_loader], name=RINSE_STREAM)


def _set_and_wait(device: Any, value: Any) -> Plan:
    """`abs_set(..., wait=True)` that re-raises the device's own typed error, not `FailedStatus`."""
    try:
        yield from bps.abs_set(device, value, wait=True)
    except FailedStatus as failed:
        if isinstance(failed.__cause__, TandemError):
            raise failed.__cause__ from failed
        raise


# -- plans ---------------------------------------------------------------------------------------


def prepare_sample(
    liquid_handler: LiquidHandlerDevice[Deck],
    target: dict[str, float],
    total_volume_ul: float,
    *,
    balance: str | None = None,
    campaign_id: str = "manual",
    sample_uid: str | None = None,
    destination: str | None = None,
    tolerance: float = 1e-3,
    allow_dilution: bool = False,
    md: dict[str, Any] | None = None,
) -> Plan:
    """Pipette `total_volume_ul` of `target` and record it as a run; returns the `Sample`.

    The start document carries the sample (uid, campaign, target, realized,
    location), the recipe, target and realized compositions; the `preparation`
    stream holds the liquid handler's readings (realized composition, deviation,
    step timings).
    """
    lh = device_check.liquid_handler(liquid_handler)
    sample = _new_sample(
        lh, target, total_volume_ul, balance=balance, campaign_id=campaign_id, sample_uid=sample_uid
    )
    recipe = plan_recipe(
        lh,
        sample.target,
        total_volume_ul,
        destination=destination,
        tolerance=tolerance,
        allow_dilution=allow_dilution,
    )
    sample = yield from _pipette_recorded(lh, sample, recipe, "prepare_sample", md)

    @bpp.run_decorator(md=_start_md("prepare_sample", sample, recipe, md))
    def inner() -> Plan:
        yield from bps.trigger_and_read([lh], name=PREPARATION_STREAM)

    yield from inner()
    return sample


def load_sample(
    cell_loader: CellLoaderDevice,
    volume_ul: float,
    *,
    sample: dict[str, Any] | None = None,
    timeout_s: float = 120.0,
    md: dict[str, Any] | None = None,
) -> Plan:
    """Push `volume_ul` of the prepared sample into the cell, as a run.

    `sample` is a `Sample.to_dict()` (as `prepare_sample` leaves it); its uid and
    compositions go into the start document.
    """
    loader = device_check.cell_loader(cell_loader)
    start = {"plan_name": "load_sample", "volume_ul": volume_ul, **_sample_md(sample), **(md or {})}

    @bpp.run_decorator(md=start)
    def inner() -> Plan:
        yield from load_stub(loader, volume_ul, timeout_s)

    yield from inner()


def rinse_cell(
    cell_loader: CellLoaderDevice,
    n_cycles: int = 2,
    dry_s: float = 30.0,
    *,
    md: dict[str, Any] | None = None,
) -> Plan:
    """Rinse the cell `n_cycles` times and dry it for `dry_s` seconds, as a run."""
    loader = device_check.cell_loader(cell_loader)
    start = {"plan_name": "rinse_cell", "n_cycles": n_cycles, "dry_s": dry_s, **(md or {})}

    @bpp.run_decorator(md=start)
    def inner() -> Plan:
        yield from rinse_stub(loader, n_cycles, dry_s)

    yield from inner()


def prepare_load_rinse(
    liquid_handler: LiquidHandlerDevice[Deck],
    cell_loader: CellLoaderDevice,
    target: dict[str, float],
    total_volume_ul: float,
    load_volume_ul: float,
    *,
    balance: str | None = None,
    campaign_id: str = "manual",
    sample_uid: str | None = None,
    destination: str | None = None,
    tolerance: float = 1e-3,
    n_rinse_cycles: int = 2,
    dry_s: float = 30.0,
    load_timeout_s: float = 120.0,
    md: dict[str, Any] | None = None,
) -> Plan:
    """The formulation lab's part of a sample, in one run: pipette, load the cell, rinse it.

    Streams: `preparation` (realized composition, written first), `load`, `rinse`.
    The measurement plans of the station go between load and rinse; they compose
    the same stubs.
    """
    lh = device_check.liquid_handler(liquid_handler)
    loader = device_check.cell_loader(cell_loader)
    sample = _new_sample(
        lh, target, total_volume_ul, balance=balance, campaign_id=campaign_id, sample_uid=sample_uid
    )
    recipe = plan_recipe(lh, sample.target, total_volume_ul, destination=destination, tolerance=tolerance)
    sample = yield from _pipette_recorded(lh, sample, recipe, "prepare_load_rinse", md)
    start = _start_md("prepare_load_rinse", sample, recipe, md)
    start["load_volume_ul"] = load_volume_ul

    @bpp.run_decorator(md=start)
    def inner() -> Plan:
        yield from bps.trigger_and_read([lh], name=PREPARATION_STREAM)
        yield from load_stub(loader, load_volume_ul, load_timeout_s)
        yield from rinse_stub(loader, n_rinse_cycles, dry_s)

    yield from inner()
    return sample.moved("cell/rinsed", SampleState.DISCARDED)


# -- helpers -------------------------------------------------------------------------------------


def _new_sample(
    lh: LiquidHandlerDevice[Deck],
    target: Mapping[str, float],
    total_volume_ul: float,
    *,
    balance: str | None,
    campaign_id: str,
    sample_uid: str | None,
) -> Sample:
    composition = target_composition(lh, target, balance).with_total_volume(total_volume_ul)
    sample = Sample.new(campaign_id, composition)
    return Sample(uid=sample_uid, campaign_id=campaign_id, target=composition) if sample_uid else sample


def _pipette_recorded(
    lh: LiquidHandlerDevice[Deck], sample: Sample, recipe: Recipe, plan_name: str, md: dict[str, Any] | None
) -> Plan:
    """Pipette; if that fails, record a failed run with what was attempted, then re-raise."""
    try:
        realized = yield from pipette_stub(lh, recipe)
    except Exception as exc:
        failed_md = _start_md(plan_name, sample.moved("deck", SampleState.FAILED), recipe, md)
        failed_md["failure"] = f"{type(exc).__name__}: {exc}"
        yield from bpp.run_wrapper(_raise(exc), md=failed_md)
        raise  # pragma: no cover - run_wrapper re-raises
    return sample.prepared(realized, f"{lh.name}/{recipe.destination}")


def _raise(exc: BaseException) -> Plan:
    raise exc
    yield  # pragma: no cover - makes this a generator


def _start_md(plan_name: str, sample: Sample, recipe: Recipe, md: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "plan_name": plan_name,
        **_sample_md(sample.to_dict()),
        "recipe": recipe.to_dict(),
        **(md or {}),
    }


def _sample_md(sample: Mapping[str, Any] | None) -> dict[str, Any]:
    if not sample:
        return {}
    return {
        "sample_uid": sample.get("sample_uid") or str(uuid.uuid4()),
        "campaign_id": sample.get("campaign_id"),
        "sample": dict(sample),
        "target": sample.get("target"),
        "realized": sample.get("realized"),
    }


__all__ = [
    "LOAD_STREAM",
    "PREPARATION_STREAM",
    "RINSE_STREAM",
    "load_sample",
    "load_stub",
    "pipette_stub",
    "plan_recipe",
    "prepare_load_rinse",
    "prepare_sample",
    "rinse_cell",
    "rinse_stub",
    "target_composition",
]
