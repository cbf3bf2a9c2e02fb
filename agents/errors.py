"""The typed errors of the agents."""

from __future__ import annotations

from tandem.errors import TandemError


class AgentError(TandemError, ValueError):
    """Bad input to an agent: a malformed region, state or request."""


class InvalidRegionError(AgentError):
    """A feasible region that cannot describe any composition space."""


class NoFeasibleCandidateError(AgentError):
    """Every candidate the agent considered is one the stocks cannot make."""


class AgentStateError(AgentError):
    """A saved agent state (or decision record) that cannot be restored."""


class ModelFitError(TandemError, RuntimeError):
    """Fitting a model's hyperparameters failed (the agent falls back to its last good state)."""
