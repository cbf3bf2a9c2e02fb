"""Where loading a campaign chooses the digital twin: its instruments, its components, its truth.

The one module of `tandem.campaign.config` that names `tandem.sim`, and only
inside its functions, so that loading a campaign with instruments of its own
(`load_campaign(path, instruments=...)`) and components of its own loads no line
of the twin. Everything else here asks the campaign's instruments through
`tandem.instrument.InstrumentFacts`. (`agent_checks.check_twin` also imports
`tandem.sim.truth`, when it runs: it checks the file's `twin:` section, which is
the twin's own configuration.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tandem.components import Components
    from tandem.instrument import InstrumentFacts
    from tandem.sim.truth import GroundTruth


def twin_instruments() -> Mapping[str, InstrumentFacts]:
    """The twin's instruments by name: what a campaign's stations are checked against when given none."""
    from tandem.sim.instruments import INSTRUMENTS

    return INSTRUMENTS


def twin_components() -> Components:
    """The twin's default system's components: a campaign's components when its file names none."""
    from tandem.sim.system_phases import DEFAULT_COMPONENTS

    return DEFAULT_COMPONENTS


def twin_truth(spec: str) -> GroundTruth:
    """The twin's ground truth named by a campaign's `twin.truth`."""
    from tandem.sim.truth import load_truth

    return load_truth(spec)


def twin_phase_names(spec: str) -> tuple[str, ...]:
    """The phase names of the truth `spec` names, in its own order (for stable colours), where it
    says them: the default system does; another truth's are read from what it answers."""
    if not spec.startswith("tandem.sim.systems:"):
        return ()
    from tandem.sim.systems import phase_labels

    return tuple(phase_labels())


__all__ = ["twin_components", "twin_instruments", "twin_phase_names", "twin_truth"]
