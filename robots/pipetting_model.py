"""How a pipetting robot errs and how long it takes: one model for every backend that needs one.

A robot without a balance or a liquid-level sensor cannot say how much liquid it
really moved. Where tandem must pretend it can (the digital twin's simulated
robot, a PyLabRobot chatterbox standing in for a real deck), it draws the moved
volume from the pipette's own accuracy: `Pipette.systematic_error` (relative
bias) plus `Pipette.random_error` (relative standard deviation) times a standard
normal draw from a seeded generator. Both `tandem.sim.liquid_handler` and
`tandem.robots.pylabrobot_backend` use this one implementation, so a seed gives
the same sample through either.

`PipettingTimes` is the station time of each motion, for backends that report a
modelled duration instead of a measured one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tandem.robots.deck import Pipette


@dataclass(frozen=True)
class PipettingTimes:
    """Station time of each motion, in s; a transfer is move + aspirate + move + dispense."""

    pick_up_tip_s: float = 5.0
    drop_tip_s: float = 4.0
    move_s: float = 3.0
    aspirate_overhead_s: float = 2.0
    dispense_overhead_s: float = 2.0
    flow_rate_ul_per_s: float = 100.0

    def aspirate_s(self, volume_ul: float) -> float:
        return self.move_s + self.aspirate_overhead_s + volume_ul / self.flow_rate_ul_per_s

    def dispense_s(self, volume_ul: float) -> float:
        return self.move_s + self.dispense_overhead_s + volume_ul / self.flow_rate_ul_per_s


class PipettingErrorModel:
    """The volume a pipette really moves when asked for `volume_ul`: bias and scatter, seeded.

    Stateful (it owns its random generator): one draw per aspiration, in command
    order, so the same seed and the same commands give the same volumes.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def moved_ul(self, pipette: Pipette, volume_ul: float) -> float:
        """What `pipette` moves when asked for `volume_ul` (never below zero)."""
        # one draw per call even for an error-free pipette, so that adding noise to one
        # pipette does not shift the draws every other pipette gets
        error = pipette.systematic_error + pipette.random_error * float(self._rng.standard_normal())
        return max(0.0, volume_ul * (1.0 + error))


__all__ = ["PipettingErrorModel", "PipettingTimes"]
