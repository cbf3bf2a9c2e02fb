"""Phase identity from the data: which runs share a phase, found by comparing their curves.

A phase is a region of composition space where the curves agree in shape. Each run's
curve becomes a model-free shape descriptor (`descriptors`: log-log slopes of its
structure above a fitted flat background, on one log-q grid); curves are grouped by
their shape distances relative to their neighbourhoods, and the data choose how many
groups (`grouping`); groups keep stable names across regroupings, and every merge,
split or move of an earlier run is an event (`identity`); the probes' phases are
matched through the sites both measured (`probes`). `PhaseFinder` runs all of it as
runs arrive. Morphology fits describe a phase (its name where they agree); they do
not decide its identity.
"""

from tandem.analysis.phases.descriptors import (
    CurveRefusedError,
    DescriptorSettings,
    Exclusion,
    ShapeDescriptor,
    describe,
)
from tandem.analysis.phases.finder import (
    PhaseFinder,
    PhaseFinding,
    PhaseFindingError,
    PhaseInput,
    PhaseSettings,
)
from tandem.analysis.phases.grouping import GroupingSettings, distances_to, group
from tandem.analysis.phases.identity import PhaseBook, PhaseEvent, PhaseNames

__all__ = [
    "CurveRefusedError",
    "DescriptorSettings",
    "Exclusion",
    "GroupingSettings",
    "PhaseBook",
    "PhaseEvent",
    "PhaseFinder",
    "PhaseFinding",
    "PhaseFindingError",
    "PhaseInput",
    "PhaseNames",
    "PhaseSettings",
    "ShapeDescriptor",
    "describe",
    "distances_to",
    "group",
]
