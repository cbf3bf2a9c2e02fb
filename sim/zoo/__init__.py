"""A zoo of formulation systems for the digital twin, each written from physics.

Every system is a `ZooSystem`: a ground truth (`tandem.sim.truth`) that also
knows its composition space, its phases, what each probe can tell apart and a
vectorised phase map. `ZOO` holds them by name; each is also a module-level
callable here, so a campaign names it as `tandem.sim.zoo:<name>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tandem.sim.zoo.base import UnknownSystemError, ZooSystem
from tandem.sim.zoo.crossover import Crossover
from tandem.sim.zoo.default import Default
from tandem.sim.zoo.mesophases import Mesophases
from tandem.sim.zoo.polymer_surfactant import PolymerSurfactant
from tandem.sim.zoo.size_only import SizeOnly
from tandem.sim.zoo.surfactant_salt import SurfactantSalt
from tandem.sim.zoo.ternary import Ternary

__all__ = [
    "ZOO",
    "UnknownSystemError",
    "ZooSystem",
    "crossover",
    "default",
    "mesophases",
    "polymer_surfactant",
    "size_only",
    "surfactant_salt",
    "ternary",
    "zoo_system",
]

default = Default()
ternary = Ternary()
surfactant_salt = SurfactantSalt()
polymer_surfactant = PolymerSurfactant()
mesophases = Mesophases()
size_only = SizeOnly()
crossover = Crossover()

ZOO: Mapping[str, ZooSystem] = MappingProxyType(
    {
        system.name: system
        for system in (
            default,
            ternary,
            surfactant_salt,
            polymer_surfactant,
            mesophases,
            size_only,
            crossover,
        )
    }
)


def zoo_system(name: str) -> ZooSystem:
    """The zoo system called `name`."""
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownSystemError(name, tuple(ZOO)) from None
