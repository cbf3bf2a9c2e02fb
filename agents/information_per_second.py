"""What a measurement costs on each station, and the information per second it buys.

Acquisition of `tandem.agents.multi_probe.MultiProbeAgent` (information per second): at a
composition ``x``

* ``U(x)`` is the BALD of the reference-probe label: how much the map still
  stands to learn there;
* one measurement with probe ``t`` and exposure ``e`` shrinks each class'
  reference latent variance ``v_c`` by ``cov(f_c^ref, f_c^t)² / (var f_c^t + σ²_c(e))``,
  where ``σ²_c(e)`` is the Dirichlet noise of the label expected there, inflated by
  counting noise ``(1 + e_ref / e)`` at short exposures; ``U_t(x, e)`` is the BALD
  left with those variances (the means move too, but by zero on average);
* the value of measuring ``x`` on station ``t`` for ``e`` seconds is
  ``(U(x) - U_t(x, e)) / (overhead_t + e)``: the expected drop in the map's
  uncertainty per second. Informing classes that are not in doubt at ``x`` buys
  nothing, so SAXS results that only rule out micelles do not count at the
  neutron-only polymer boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.utils.transforms import t_batch_mode_transform

from tandem.agents.errors import AgentError
from tandem.agents.gp import CachedGP
from tandem.agents.gp_hyperparameters import DTYPE
from tandem.agents.phase_mapping import bald, class_probabilities
from tandem.stations import Probe


@dataclass(frozen=True)
class StationCost:
    """What a measurement costs on one station, in station seconds.

    `overhead_s` is everything but the exposure (load, transmission, readout,
    rinse); `exposures_s` are the exposures the agent may choose from;
    `reference_exposure_s` is the exposure at which counting noise on a label
    is as large as the label's own ambiguity (shorter: noisier labels).
    `relative_price` weighs a second of this station against the others' (a
    facility may price SANS hours above SAXS hours beyond their length).
    The campaign fills these from the instrument models.
    """

    station: str
    probe: Probe
    overhead_s: float
    exposures_s: tuple[float, ...]
    reference_exposure_s: float
    configuration: str = "default"
    relative_price: float = 1.0

    def __post_init__(self) -> None:
        if not self.exposures_s or any(not (e > 0) for e in self.exposures_s):
            raise AgentError(
                f"station {self.station!r}: exposures must be positive seconds, got {self.exposures_s}"
            )
        if not (self.relative_price > 0):
            raise AgentError(
                f"station {self.station!r}: relative price must be > 0, got {self.relative_price!r}"
            )
        if not (self.overhead_s >= 0 and self.reference_exposure_s > 0):
            raise AgentError(
                f"station {self.station!r}: overhead must be >= 0 s and the reference exposure > 0 s, "
                f"got {self.overhead_s!r}, {self.reference_exposure_s!r}"
            )
        object.__setattr__(self, "probe", Probe(self.probe))
        object.__setattr__(self, "exposures_s", tuple(sorted(float(e) for e in self.exposures_s)))

    def cost_s(self, exposure_s: float) -> float:
        """Station seconds of one measurement (overhead plus exposure)."""
        return self.overhead_s + exposure_s

    def price(self, exposure_s: float) -> float:
        """What the agent divides information by: station seconds times the relative price."""
        return self.cost_s(exposure_s) * self.relative_price

    def noise_factor(self, exposure_s: float) -> float:
        """How much counting noise inflates a label's noise variance at `exposure_s`."""
        return 1.0 + self.reference_exposure_s / exposure_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "probe": self.probe.value, "exposures_s": list(self.exposures_s)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StationCost:
        return cls(**{**data, "probe": Probe(data["probe"]), "exposures_s": tuple(data["exposures_s"])})


class InformationPerSecond(AcquisitionFunction):
    """``max_e U(x) r_t(x, e) / cost_t(e)`` for one station (q = 1)."""

    def __init__(
        self,
        model: CachedGP,
        base_samples: torch.Tensor,
        *,
        reference_task: int,
        task: int,
        cost: StationCost,
        hit_noise: float,
        miss_noise: float,
    ) -> None:
        super().__init__(model=model)
        self.base_samples = base_samples
        self.reference_task = reference_task
        self.task = task
        self.cost = cost
        self.hit_noise = hit_noise
        self.miss_noise = miss_noise

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per exposure: ``value`` (``b x E``), and the ``bald`` and ``share`` behind it."""
        model: CachedGP = self.model  # type: ignore[assignment]
        ref = torch.cat([x, torch.full_like(x[..., :1], float(self.reference_task))], -1)
        obs = torch.cat([x, torch.full_like(x[..., :1], float(self.task))], -1)
        mean, cov = model.joint(torch.stack([ref, obs], dim=-2))  # m x b x 2, m x b x 2 x 2
        mean_ref = mean[..., 0].T  # b x m
        var_ref = cov[..., 0, 0].clamp_min(1e-12).T
        u = bald(mean_ref, var_ref, self.base_samples)  # b
        p = class_probabilities(mean[..., 1].T, cov[..., 1, 1].clamp_min(1e-12).T, self.base_samples)
        label_noise = p * self.hit_noise + (1 - p) * self.miss_noise  # b x m
        exposures = torch.as_tensor(self.cost.exposures_s, dtype=DTYPE)
        factors = torch.tensor([self.cost.noise_factor(e) for e in self.cost.exposures_s], dtype=DTYPE)
        noise = label_noise.unsqueeze(-1) * factors  # b x m x E
        cross = cov[..., 0, 1].T.unsqueeze(-1)  # b x m x 1
        var_obs = cov[..., 1, 1].clamp_min(1e-12).T.unsqueeze(-1)
        # latent variance of the reference labels left after the measurement (its mean moves
        # too, but by zero on average): BALD there is what would still be unknown
        var_after = (var_ref.unsqueeze(-1) - cross.pow(2) / (var_obs + noise)).clamp_min(1e-12)
        u_after = torch.stack(
            [bald(mean_ref, var_after[..., e], self.base_samples) for e in range(len(exposures))], -1
        )
        gain = (u.unsqueeze(-1) - u_after).clamp_min(0.0)  # b x E
        costs = (self.cost.overhead_s + exposures) * self.cost.relative_price
        return {"value": gain / costs, "bald": u, "share": gain / u.clamp_min(1e-12).unsqueeze(-1)}

    @t_batch_mode_transform(expected_q=1)  # type: ignore[arg-type]
    def forward(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803 - BoTorch names
        return self.terms(X.squeeze(-2))["value"].max(-1).values
