"""The components and the composition space: known names, sensible bounds, constraints that leave room.

Checked first: a campaign whose components cannot be built stops here, and one
whose space is empty or ill-formed skips the checks that need its corners (what
the stocks can reach, the twin at the centre of the space).
"""

from __future__ import annotations

from tandem.components import Component, Components
from tandem.errors import TandemError
from tandem.file_problems import KeyPath

from .checker import Checker
from .profiles import station_instrument
from .schema import StationSpec
from .twin import twin_components


def check_components(checker: Checker) -> Components | None:
    """The campaign's components (the file's, else the twin's), or None when one cannot be built."""
    if checker.spec.components is None:
        return twin_components()
    built: list[Component] = []
    for i, c in enumerate(checker.spec.components):
        try:
            built.append(Component(c.name, c.formula, c.density_g_per_ml, c.role))
        except TandemError as exc:
            checker.add(("components", i), str(exc), "fix this component")
    try:
        return Components(built) if len(built) == len(checker.spec.components) else None
    except TandemError as exc:
        checker.add(("components",), str(exc), "give each component once")
        return None


def check_space(checker: Checker, components: Components) -> bool:
    """Whether the bounds and constraints make a space with room in it (each reason not is a problem)."""
    ok = True
    solvents = {_solvent_name(checker, sid, s) for sid, s in checker.spec.stations.items()}
    for name, (lo, hi) in checker.spec.space.bounds.items():
        path: KeyPath = ("space", "bounds", name)
        if name not in components:
            checker.add(
                path,
                f"unknown component {name!r}",
                f"known components: {', '.join(components)}",
                key=True,
            )
            ok = False
        elif name in solvents:
            checker.add(
                path,
                f"{name!r} is a station's solvent: it takes the rest of every sample and has no bounds",
                "remove it from the bounds",
                key=True,
            )
            ok = False
        if not (0.0 <= lo < hi <= 1.0):
            checker.add(
                path, f"bounds must satisfy 0 <= lower < upper <= 1, got [{lo:g}, {hi:g}]", "change them"
            )
            ok = False
    for i, constraint in enumerate(checker.spec.space.constraints):
        path = ("space", "constraints", i)
        if constraint.min is None and constraint.max is None:
            checker.add(path, "a constraint needs a 'min' or a 'max'", "add one", key=True)
            ok = False
        for name in constraint.coefficients:
            if name not in checker.spec.space.bounds:
                checker.add(
                    (*path, "coefficients", name),
                    f"{name!r} has no bounds in space.bounds",
                    f"constrain only bounded components: {', '.join(checker.spec.space.bounds)}",
                    key=True,
                )
                ok = False
    if ok and not checker.vertices():
        checker.add(
            ("space",),
            "the constraints leave no composition inside the bounds (and the solutes below 1 in total)",
            "loosen the constraints or widen the bounds",
            key=True,
        )
        ok = False
    return ok


def _solvent_name(checker: Checker, sid: str, spec: StationSpec) -> str:
    """The solvent a station's file names, else its instrument's; empty when the instrument is unknown."""
    if spec.solvent is not None:
        return spec.solvent
    instrument = station_instrument(checker, sid, spec)
    return instrument.solvent.name if instrument is not None else ""


__all__ = ["check_components", "check_space"]
