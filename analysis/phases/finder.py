"""Phases of a campaign from its curves: descriptors, grouping, stable names, two probes as one map.

`PhaseFinder` takes runs as they arrive (`add`), keeps each one's shape descriptor
and its distances to the runs of its probe seen before (one row per run: the cost
of a new run grows with the campaign only linearly, plus the grouping), regroups
each probe's runs, keeps the names stable (`tandem.analysis.phases.identity`) and
matches the probes' phases through the sites both measured
(`tandem.analysis.phases.probes`). What it returns, a `PhaseFinding`, says for every
run the phase name the agents learn from, and every event that changed an earlier
run's name.

Runs phase finding cannot use are left out with their reason (`excluded`), never put
in a phase by default.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tandem.analysis.curves import Curve
from tandem.analysis.phases.descriptors import CurveRefusedError, DescriptorSettings, Exclusion, describe
from tandem.analysis.phases.grouping import DistanceMatrix, GroupingSettings, group
from tandem.analysis.phases.identity import PhaseBook, PhaseEvent, PhaseNames
from tandem.analysis.phases.probes import match_phases, shared_sites
from tandem.errors import TandemError
from tandem.stations import Probe

FloatArray = npt.NDArray[np.float64]


class PhaseFindingError(TandemError, ValueError):
    """Input phase finding cannot take (a run given twice, settings no grouping could use)."""


@dataclass(frozen=True, eq=False)
class PhaseInput:
    """One analysed run as phase finding sees it."""

    run_uid: str
    probe: str
    #: mass fractions of the non-solvent components
    composition: Mapping[str, float]
    curve: Curve
    #: the structure its best fitted model shows (`tandem.analysis.labels.morphology`), for names
    morphology: str | None = None


@dataclass(frozen=True)
class PhaseSettings:
    descriptors: DescriptorSettings = field(default_factory=DescriptorSettings)
    grouping: GroupingSettings = field(default_factory=GroupingSettings)
    #: runs of two probes closer than this in composition (each component scaled by the range the
    #: campaign's runs span) inform each other's phase identity, the closer the more
    site_radius: float = 0.1
    #: the probe whose phases name the map (the one that sees most); the other's are matched to it
    reference_probe: Probe = Probe.NEUTRON

    def __post_init__(self) -> None:
        g = self.grouping
        if not (g.cut > 0 and 0 < g.scale_floor <= g.scale_cap and g.neighbours >= 1 and g.slope_floor > 0):
            raise PhaseFindingError(
                "grouping settings need cut > 0, 0 < scale_floor <= scale_cap, neighbours >= 1 and "
                f"slope_floor > 0; got {g}"
            )
        if not self.site_radius >= 0:
            raise PhaseFindingError(f"site_radius is a distance >= 0, got {self.site_radius!r}")

    def to_dict(self) -> dict[str, object]:
        return {
            "scheme": "shape-groups",
            "grouping": {k: getattr(self.grouping, k) for k in self.grouping.__dataclass_fields__},
            "site_radius": self.site_radius,
            "reference_probe": Probe(self.reference_probe).value,
        }


@dataclass(frozen=True)
class PhaseFinding:
    """Where phase finding stands after the runs it has been given."""

    #: run uid → the phase name the agents learn from (both probes' phases matched)
    labels: Mapping[str, str]
    #: run uid → the phase of its own probe's runs
    probe_labels: Mapping[str, str]
    #: run uid → (reason, message) of runs left out
    excluded: Mapping[str, tuple[Exclusion, str]]
    #: the other probe's phase → the reference phase it is one with
    matched: Mapping[str, str]
    #: every event of the update that made this finding
    events: tuple[PhaseEvent, ...] = ()
    seconds: float = 0.0

    @property
    def phases(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.labels.values())))

    @property
    def n_phases(self) -> int:
        return len(self.phases)


class _ProbeRuns:
    """The described runs of one probe, their distances and named phases."""

    def __init__(self, names: PhaseNames, settings: GroupingSettings) -> None:
        self.uids: list[str] = []
        self.distances = DistanceMatrix(settings)
        self.book = PhaseBook(names)
        self.morphologies: dict[str, str | None] = {}

    def regroup(
        self, settings: GroupingSettings, coordinates: Mapping[str, FloatArray]
    ) -> tuple[list[PhaseEvent], dict[str, str]]:
        """Group the runs anew; also return the runs left out because no other run can be compared."""
        d = self.distances.matrix
        n = len(self.uids)
        lonely: dict[str, str] = {}
        keep = list(range(n))
        if n >= 3:
            comparable = np.isfinite(d).sum(axis=1) - 1  # the diagonal is finite
            keep = [i for i in range(n) if comparable[i] > 0]
            lonely = {
                self.uids[i]: "its q range shares too few log-q bins with any other run's of this probe"
                for i in range(n)
                if comparable[i] == 0
            }
        points = np.stack([coordinates[self.uids[i]] for i in keep]) if keep else None
        groups = group(self.distances.subset(keep), settings, points) if keep else np.zeros(0, dtype=np.int64)
        events = self.book.update(
            {self.uids[i]: int(g) for i, g in zip(keep, groups, strict=True)}, self.morphologies
        )
        return events, lonely


class PhaseFinder:
    """Finds phases in a campaign's curves as they arrive; names stay stable, changes are events."""

    def __init__(self, settings: PhaseSettings | None = None) -> None:
        self.settings = settings or PhaseSettings()
        self.names = PhaseNames()
        self._probes: dict[Probe, _ProbeRuns] = {}
        self._compositions: dict[str, dict[str, float]] = {}
        self._probe_of: dict[str, Probe] = {}
        self._excluded: dict[str, tuple[Exclusion, str]] = {}
        self._labels: dict[str, str] = {}
        self.events: list[PhaseEvent] = []
        self._finding = PhaseFinding({}, {}, {}, {})
        #: names runs had before a restart (`restore`), taken up as the runs are given again
        self._restored: dict[str, str] = {}

    def state(self) -> dict[str, object]:
        """What `restore` needs to keep the names a campaign had: names given, each run's phase."""
        return {
            "names": sorted(self.names.taken),
            "probe_labels": dict(self._finding.probe_labels),
            "labels": dict(self._finding.labels),
            "n_events": len(self.events),
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Before the runs are given again after a restart: keep their names and never reuse one.

        The runs are then added as usual; each regrouping matches its groups to the names the
        runs had, so a restart renames nothing the data do not.
        """
        if self._probe_of or self._excluded:
            raise PhaseFindingError("restore phase finding's state before giving it any run")
        names = state.get("names") or []
        labels = state.get("probe_labels") or {}
        agent_labels = state.get("labels") or {}
        if not (isinstance(names, list) and isinstance(labels, dict) and isinstance(agent_labels, dict)):
            raise PhaseFindingError("a phase-finding state holds a list of names and two run → name maps")
        self.names = PhaseNames([str(n) for n in names])
        self._restored = {str(k): str(v) for k, v in labels.items()}
        self._labels = {str(k): str(v) for k, v in agent_labels.items()}

    @property
    def finding(self) -> PhaseFinding:
        return self._finding

    def __contains__(self, run_uid: object) -> bool:
        return run_uid in self._probe_of or run_uid in self._excluded

    def add(self, items: Iterable[PhaseInput]) -> PhaseFinding:
        """Take new runs (each once); regroup the probes they belong to; return the new finding."""
        started = time.perf_counter()
        touched: set[Probe] = set()
        excluded_now: dict[str, tuple[Exclusion, str]] = {}
        for item in items:
            if item.run_uid in self:
                raise PhaseFindingError(f"run {item.run_uid} was given to phase finding already")
            try:
                probe = Probe(item.probe)
            except ValueError:
                excluded_now[item.run_uid] = (
                    Exclusion.UNKNOWN_PROBE,
                    f"probe {item.probe!r} is not one of {[p.value for p in Probe]}",
                )
                continue
            try:
                descriptor = describe(item.curve, self.settings.descriptors)
            except CurveRefusedError as exc:
                excluded_now[item.run_uid] = (exc.reason, exc.message)
                continue
            runs = self._probes.setdefault(probe, _ProbeRuns(self.names, self.settings.grouping))
            if item.run_uid in self._restored:
                runs.book.labels[item.run_uid] = self._restored.pop(item.run_uid)
            runs.uids.append(item.run_uid)
            runs.distances.add(descriptor)
            runs.morphologies[item.run_uid] = item.morphology
            self._probe_of[item.run_uid] = probe
            self._compositions[item.run_uid] = {k: float(v) for k, v in item.composition.items()}
            touched.add(probe)
        self._excluded.update(excluded_now)
        events: list[PhaseEvent] = []
        lonely: dict[str, tuple[Exclusion, str]] = {}
        coordinates = self._coordinates()
        for probe in sorted(touched):
            probe_events, left_out = self._probes[probe].regroup(self.settings.grouping, coordinates)
            events.extend(probe_events)
            lonely.update({uid: (Exclusion.NO_OVERLAP, why) for uid, why in left_out.items()})
        probe_labels = {uid: name for runs in self._probes.values() for uid, name in runs.book.labels.items()}
        matched = self._match(probe_labels)
        labels = {uid: matched.get(name, name) for uid, name in probe_labels.items()}
        explained = {uid for event in events for uid in event.runs}
        events.extend(self._match_events(probe_labels, labels, explained, len(probe_labels)))
        self._labels = labels
        self.events.extend(events)
        self._finding = PhaseFinding(
            labels=labels,
            probe_labels=probe_labels,
            excluded={**self._excluded, **lonely},
            matched=matched,
            events=tuple(events),
            seconds=time.perf_counter() - started,
        )
        return self._finding

    def _coordinates(self) -> dict[str, FloatArray]:
        """Every run's composition, each component scaled by the range the campaign's runs span."""
        names = sorted({n for c in self._compositions.values() for n in c})
        uids = list(self._compositions)
        if not uids:
            return {}
        x = np.array([[self._compositions[u].get(n, 0.0) for n in names] for u in uids], dtype=np.float64)
        span = x.max(axis=0) - x.min(axis=0) if len(uids) > 1 else np.ones(len(names))
        x = x / np.where(span > 0, span, 1.0)
        return {u: x[i] for i, u in enumerate(uids)}

    def _match(self, probe_labels: Mapping[str, str]) -> dict[str, str]:
        reference = Probe(self.settings.reference_probe)
        others = [p for p in self._probes if p is not reference]
        if reference not in self._probes or not others:
            return {}
        coordinates = self._coordinates()
        ref_vectors = {uid: coordinates[uid] for uid in self._probes[reference].book.labels}
        ref_labels = {uid: probe_labels[uid] for uid in ref_vectors}
        matched: dict[str, str] = {}
        for probe in others:
            vectors = {uid: coordinates[uid] for uid in self._probes[probe].book.labels}
            sites = shared_sites(ref_vectors, vectors, self.settings.site_radius)
            matched.update(match_phases(ref_labels, {uid: probe_labels[uid] for uid in vectors}, sites))
        return matched

    def _match_events(
        self, probe_labels: Mapping[str, str], labels: Mapping[str, str], explained: set[str], at: int
    ) -> list[PhaseEvent]:
        """Earlier runs whose name changed only because a cross-probe match was made (or broken)."""
        changed: dict[tuple[str, str], dict[str, str | None]] = {}
        for uid, old in self._labels.items():
            new = labels.get(uid)
            if new is None or new == old or uid in explained:
                continue
            kind = "match" if new != probe_labels[uid] else "unmatch"
            changed.setdefault((kind, new), {})[uid] = old
        return [
            PhaseEvent(kind, tuple(sorted({v for v in runs.values() if v})), (new,), runs, at)
            for (kind, new), runs in changed.items()
        ]
