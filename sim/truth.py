"""The ground-truth contract of the digital twin.

A ground truth is any callable

    truth(composition: Mapping[str, float], probe: Probe) -> TruthPoint

where `composition` maps each non-solvent component to its mass fraction (the
solvent is the rest) and `probe` is `Probe.XRAY` or `Probe.NEUTRON`. It returns
the phase label, the sasmodels model that describes the structure there, and
that model's parameters, with SLDs for the given probe (contrast is physics, so
the same composition may look different to X-rays and neutrons).

A campaign names its truth as `module:callable` (see `load_truth`); the default
system is `tandem.sim.systems:default_system`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tandem.errors import TandemError
from tandem.stations import Probe


class TruthError(TandemError, ValueError):
    """A ground truth that cannot be loaded or that answered nonsense."""


@dataclass(frozen=True)
class TruthPoint:
    """The structure at one composition as one probe sees it.

    `parameters` are sasmodels parameters of `model` (SLDs in 1e-6/Å²,
    lengths in Å) including `scale` (volume fraction of scatterers) and
    `background` (1/cm) where relevant.
    """

    phase: str
    model: str
    parameters: Mapping[str, float] = field(default_factory=dict)


class GroundTruth(Protocol):
    def __call__(self, composition: Mapping[str, float], probe: Probe, /) -> TruthPoint: ...


def load_truth(spec: str) -> GroundTruth:
    """Import `module:callable` and check that it is callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TruthError(f"a ground truth is named as 'module:callable', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TruthError(f"cannot import ground-truth module {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise TruthError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise TruthError(f"{spec!r} is not callable")
    fn: Callable[[Mapping[str, float], Probe], TruthPoint] = target
    return fn
