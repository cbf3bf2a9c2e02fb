"""tandem: self-driving formulation labs at linked SAXS and SANS stations.

The package root holds what every part shares: the vocabulary (components,
compositions, samples, suggestions), configuration models, the catalog (Tiled)
access layer and the command-line interface. The parts live in subpackages:
`tandem.robots`, `tandem.devices`, `tandem.plans`, `tandem.analysis`,
`tandem.agents` and the digital twin, `tandem.sim` (see DESIGN.md).
"""

from tandem.components import Component, Components, Role
from tandem.composition import Amount, Basis, Composition
from tandem.errors import TandemError
from tandem.samples import Sample, SampleState
from tandem.stations import Probe
from tandem.suggestions import ScanParameters, Suggestion

__version__ = "0.1.0"

__all__ = [
    "Amount",
    "Basis",
    "Component",
    "Components",
    "Composition",
    "Probe",
    "Role",
    "Sample",
    "SampleState",
    "ScanParameters",
    "Suggestion",
    "TandemError",
    "__version__",
]
