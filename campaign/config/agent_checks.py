"""The agent, the stop criteria and the twin: what each needs beyond its schema, and that the truth answers.

An optimisation agent needs an objective and no other kind takes one; an agent's
settings are checked against that agent's own settings type (when it is
installed); a campaign needs a budget to end; and the twin's ground truth must
import and answer at the centre of the space with something the twin can draw.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from tandem.file_problems import KeyPath

from .campaign import Campaign
from .checker import Checker
from .schema import DEFAULT_TRUTH, AgentKind, AgentSpec

#: each agent kind with settings, and the type that reads them (imported only when a file gives settings, so
#: loading a campaign imports no agent, and torch, unless it must)
_AGENT_SETTINGS: Mapping[AgentKind, str] = {
    AgentKind.PHASE_MAPPING: "tandem.agents.phase_mapping:PhaseMappingSettings",
    AgentKind.MULTI_PROBE: "tandem.agents.multi_probe_model:MultiProbeSettings",
    AgentKind.OPTIMISATION: "tandem.agents.optimisation:OptimisationSettings",
}


def check_agent(checker: Checker) -> None:
    """An objective where the kind needs one and nowhere else; settings the agent knows."""
    agent = checker.spec.agent
    if agent.kind is AgentKind.OPTIMISATION and agent.objective is None:
        checker.add(
            ("agent",),
            "an optimisation agent needs an objective",
            "add objective: {feature: <analysis feature>, goal: target, target: <value>}",
            key=True,
        )
    if agent.objective is not None:
        objective = agent.objective
        if agent.kind is not AgentKind.OPTIMISATION:
            checker.add(
                ("agent", "objective"),
                f"a {agent.kind.value} agent takes no objective",
                "remove it, or use kind: optimisation",
                key=True,
            )
        if objective.goal == "target" and objective.target is None:
            checker.add(
                ("agent", "objective"),
                "goal 'target' needs a target value",
                "add target: <value>",
                key=True,
            )
    if agent.settings:
        _agent_settings(checker, agent)


def _agent_settings(checker: Checker, agent: AgentSpec) -> None:
    spec = _AGENT_SETTINGS.get(agent.kind)
    path: KeyPath = ("agent", "settings")
    if spec is None:
        checker.add(path, f"a {agent.kind.value} agent has no settings", "remove 'settings'", key=True)
        return
    module_name, _, attr = spec.partition(":")
    # the agents ship with tandem: a name that does not resolve is a bug here, not the file's problem
    settings_type: Any = getattr(importlib.import_module(module_name), attr)
    fields = getattr(settings_type, "__dataclass_fields__", None) or getattr(
        settings_type, "model_fields", {}
    )
    for key in agent.settings:
        if fields and key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            checker.add(
                (*path, key),
                f"unknown setting {key!r} for a {agent.kind.value} agent",
                hint + f"allowed: {', '.join(fields)}",
                key=True,
            )
            return
    build = getattr(settings_type, "from_dict", settings_type)
    try:
        build(agent.settings) if build is not settings_type else build(**agent.settings)
    except (TypeError, ValueError) as exc:
        checker.add(path, f"bad settings for a {agent.kind.value} agent: {exc}", "change the values")


def check_stop(checker: Checker) -> None:
    """A campaign needs a budget (samples or beamtime) to end."""
    stop = checker.spec.stop
    if stop.max_samples is None and stop.max_station_hours is None:
        checker.add(
            ("stop",),
            "a campaign needs a sample budget or a beamtime budget, or it never ends",
            "add max_samples or max_station_hours",
            key=True,
        )


def check_twin(checker: Checker, campaign: Campaign) -> None:
    """The ground truth imports and, at the centre of the space, answers every probe with a drawable point."""
    # the file's `twin:` section is the twin's own configuration, so this check may name tandem.sim
    # (imported here, not when the module is: loading the checks loads no line of the twin)
    from tandem.sim.truth import TruthError

    path: KeyPath = ("twin", "truth")
    try:
        truth = campaign.truth()
    except TruthError as exc:
        checker.add(path, str(exc), "name an importable 'module:callable' such as " + DEFAULT_TRUTH)
        return
    vertices = checker.vertices()
    centre = {n: float(np.mean([v[n] for v in vertices])) for n in campaign.solutes}
    for probe in dict.fromkeys(s.probe for s in campaign.stations.values()):
        try:
            point = truth(centre, probe)
            phase = point.phase
        except Exception as exc:  # any failure of user code is a verdict on the file
            checker.add(
                path,
                f"{checker.spec.twin.truth} fails at the centre of the space ({probe.value}): "
                f"{type(exc).__name__}: {exc}",
                "check that it takes (composition mass fractions, probe) and returns a TruthPoint",
            )
            return
        if not isinstance(phase, str) or not phase:
            checker.add(
                path,
                f"{checker.spec.twin.truth} returned no phase label ({point!r})",
                "return a TruthPoint with a phase name",
            )
            return
        why = _unrenderable(point)
        if why is not None:
            checker.add(
                path,
                f"{checker.spec.twin.truth} at the centre of the space ({probe.value}): {why[0]}",
                why[1],
            )
            return


def _unrenderable(point: object) -> tuple[str, str] | None:
    """Why the twin could not draw a truth's answer (what was wrong, what would do), or None."""
    from tandem.sim.scattering import ScatteringError, model_parameter_names
    from tandem.sim.truth import TruthPoint

    if not isinstance(point, TruthPoint):
        return f"returned a {type(point).__name__}, not a TruthPoint", "return tandem.sim.truth.TruthPoint"
    try:
        known = model_parameter_names(point.model)
    except ScatteringError as exc:
        return str(exc), "name a sasmodels model, such as sphere, cylinder or core_shell_sphere"
    unknown = sorted(set(point.parameters) - known)
    if unknown:
        return (
            f"model {point.model!r} has no parameter(s) {', '.join(map(repr, unknown))}",
            f"use its parameters: {', '.join(sorted(known))}",
        )
    return None


__all__ = ["check_agent", "check_stop", "check_twin"]
