"""Bring your own curves: phases, a phase map and the next compositions from reduced 1-D curves.

A scientist with curves from a past beamtime or another facility, and a table of what each
sample was made of, gets what a campaign would give: the campaign's own phase finding
(`tandem.campaign.phases.CampaignPhases` over `tandem.analysis.phases.PhaseFinder`), told to the
campaign's own phase-mapping agent (`tandem.agents.phase_mapping.PhaseMappingAgent`), whose
prediction over a grid is the map and whose choices are the suggestions. Nothing here is a copy:
a curve reaches phase finding as an `AnalysisRecord` and the agent as an `Observation`, exactly as
a campaign's runs do.

In a notebook::

    from tandem.campaign.mapping import load_curves, map_curves, write_map

    inputs = load_curves("beamtime/", "beamtime/compositions.csv")
    result = map_curves(inputs.curves, inputs.compositions, inputs.probes,
                        unreadable=inputs.unreadable)
    result.phases                     # {"spheres": ("s01.dat", ...), ...}
    write_map(result, "map/")         # phase_map.png, phase_map.csv, phases.json, suggestions.csv
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tandem.agents.phase_mapping import PhaseMappingAgent
from tandem.agents.protocol import Prediction
from tandem.agents.region import FeasibleRegion, region_from_bounds
from tandem.analysis.curves import Curve
from tandem.analysis.store import AnalysisRecord
from tandem.campaign.map_inputs import MapInputError, Progress, parse_probe
from tandem.campaign.phases import CampaignPhases
from tandem.components import Component, Role
from tandem.errors import TandemError
from tandem.files import json_ready
from tandem.observations import AnalysisStatus, Observation
from tandem.stations import Probe

__all__ = [
    "CurveMap",
    "check_out_dir",
    "map_curves",
    "write_map",
]

#: the one station of an offline map: the agent suggests for it
STATION = "offline"
#: the files `write_map` writes (and the only ones it may replace in its folder)
OUTPUT_FILES = ("phase_map.png", "phase_map.csv", "phases.json", "suggestions.csv")
#: grid points per axis of the predicted map, by dimension (more dimensions: `_grid`)
GRID_POINTS = {1: 200, 2: 50, 3: 12}


@dataclass(frozen=True, eq=False)
class CurveMap:
    """What `map_curves` found: every curve's phase or why it was left out, the map, the suggestions."""

    #: the map's axes: the non-solvent components, in table order
    names: tuple[str, ...]
    bounds: Mapping[str, tuple[float, float]]
    #: curve → mass fractions of the non-solvent components (every curve given, used or not)
    compositions: Mapping[str, Mapping[str, float]]
    probes: Mapping[str, str]
    #: curve → its phase
    labels: Mapping[str, str]
    #: curve → why it was left out (unreadable, or phase finding could not use it)
    excluded: Mapping[str, str]
    #: phase → its curves
    phases: Mapping[str, tuple[str, ...]]
    #: curve → the structure its own curve shows (None with `fits=False`)
    morphologies: Mapping[str, str | None]
    #: the agent's prediction on a grid over the bounds
    prediction: Prediction
    #: the next compositions to measure, best first
    suggestions: tuple[Mapping[str, float], ...]
    #: phase finding's events (new phases, merges, splits, moves), in order
    events: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        curves = [
            {
                "file": name,
                "composition": dict(comp),
                "probe": self.probes.get(name),
                "phase": self.labels.get(name),
                "morphology": self.morphologies.get(name),
                "excluded": self.excluded.get(name),
            }
            for name, comp in self.compositions.items()
        ]
        phases = {
            phase: {
                "members": list(members),
                "morphologies": _counts(self.morphologies.get(m) for m in members),
            }
            for phase, members in self.phases.items()
        }
        return {
            "components": list(self.names),
            "bounds": {n: list(b) for n, b in self.bounds.items()},
            "curves": curves,
            "phases": phases,
            "events": [dict(e) for e in self.events],
            "suggestions": [dict(s) for s in self.suggestions],
        }


def map_curves(
    curves: Mapping[str, Curve],
    compositions: Mapping[str, Mapping[str, float]],
    probe: Probe | str | Mapping[str, Probe | str] = Probe.XRAY,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    n_suggestions: int = 3,
    *,
    fits: bool = True,
    unreadable: Mapping[str, str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> CurveMap:
    """Phases of `curves`, the phase map they imply, and the next `n_suggestions` compositions.

    `compositions` gives each curve's mass fractions of the non-solvent components (the solvent is
    the rest; a curve without a row is an error). `probe` is one probe for all curves or one per
    curve. `bounds` (mass fractions per component) default to the range the compositions span; a
    component not named keeps its span. `fits=False` skips the morphology of each curve (the
    structure it shows, used to name phases): faster, names become `phase-1`, `phase-2`, ...
    `unreadable` lists curves that could not be read (name → why): they are reported as left out.
    Raises `MapInputError` for fewer than two usable curves or bounds that leave compositions out.
    """
    if n_suggestions < 0:
        raise MapInputError(f"n_suggestions is a count >= 0, got {n_suggestions}")
    unreadable = dict(unreadable or {})
    missing = sorted(set(curves) - set(compositions))
    if missing:
        raise MapInputError(f"no composition for curve(s) {', '.join(missing)}; every curve needs a row")
    everything = {n: dict(compositions[n]) for n in compositions}
    names = tuple(dict.fromkeys(k for comp in everything.values() for k in comp))
    if not names:
        raise MapInputError("the compositions name no component; give mass fractions of at least one")
    everything = {n: {k: float(c.get(k, 0.0)) for k in names} for n, c in everything.items()}
    probes = {
        n: parse_probe(probe if isinstance(probe, str | Probe) else probe.get(n, Probe.XRAY), f"probe of {n}")
        for n in everything
    }
    usable = [n for n in everything if n in curves and n not in unreadable]
    if len(usable) < 2:
        raise MapInputError(
            f"nothing to map: {len(usable)} usable curve(s) of {len(everything)}; a map needs at least 2"
            + (f" (left out: {'; '.join(f'{n}: {r}' for n, r in unreadable.items())})" if unreadable else "")
        )
    region = _region(names, everything, bounds)

    morphologies: dict[str, str | None] = {}
    if fits:
        from tandem.analysis.labels import morphology

        for done, name in enumerate(usable):
            morphologies[name] = morphology(curves[name]).label
            if progress is not None:
                progress("describing curves", done + 1, len(usable))
    events: list[Mapping[str, Any]] = []
    reference = _most_common([probes[n] for n in usable])
    agent = PhaseMappingAgent(region, stations={STATION: reference}, seed=seed)
    phases = CampaignPhases(agent, lambda new, _state: events.extend(new))
    results = [_result(n, curves[n], everything[n], probes[n], morphologies.get(n)) for n in usable]
    if progress is not None:
        progress("finding phases", 0, 1)
    observations = phases.learn(results)
    agent.tell(o for o in observations if o.ok)  # the left-out are reported, not modelled
    labels = {o.run_uid: str(o.label) for o in observations if o.ok and o.label is not None}
    excluded = {**unreadable, **{o.run_uid: str(o.failure_reason) for o in observations if not o.ok}}
    if len(labels) < 2:
        raise MapInputError(
            f"nothing to map: phase finding could use {len(labels)} curve(s) of {len(everything)}; a map "
            f"needs at least 2 (left out: {'; '.join(f'{n}: {r}' for n, r in excluded.items())})"
        )
    if progress is not None:
        progress("predicting the map", 0, 1)
    prediction = agent.predict(_grid(region))
    chosen = agent.suggest(STATION, n_suggestions) if n_suggestions else []
    suggestions = tuple({n: float(s.target.mass_fraction(n)) for n in names} for s in chosen)
    members: dict[str, list[str]] = {}
    for name, phase in labels.items():
        members.setdefault(phase, []).append(name)
    return CurveMap(
        names=names,
        bounds=dict(region.bounds),
        compositions=everything,
        probes={n: p.value for n, p in probes.items()},
        labels=labels,
        excluded=excluded,
        phases={p: tuple(members[p]) for p in sorted(members)},
        morphologies={n: morphologies.get(n) for n in usable},
        prediction=prediction,
        suggestions=suggestions,
        events=tuple(events),
    )


def check_out_dir(out_dir: str | Path, *, force: bool = False) -> Path:
    """`out_dir` if the map may be written there: missing, empty, or holding only files a map writes.

    With `force`, other files are allowed (and left alone); the map's own files are replaced.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MapInputError(f"--out {out}: is a file; give a folder (new, empty, or an earlier map's)")
    if out.is_dir() and not force:
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUT_FILES)
        if foreign:
            raise MapInputError(
                f"--out {out}: holds {len(foreign)} file(s) a map does not write ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); give a new or empty folder, or --force to write "
                f"{', '.join(OUTPUT_FILES)} beside them"
            )
    return out


def write_map(result: CurveMap, out_dir: str | Path, *, force: bool = False) -> dict[str, Path]:
    """Write phase_map.png, phase_map.csv, phases.json and suggestions.csv; return their paths.

    Refuses a folder holding files other than these unless `force` (they are never touched).
    """
    from tandem.campaign.map_plot import plot_map

    out = check_out_dir(out_dir, force=force)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name.split(".")[0] + "_" + name.split(".")[1]: out / name for name in OUTPUT_FILES}
    plot_map(result, paths["phase_map_png"])
    result.prediction.to_csv(paths["phase_map_csv"])
    paths["phases_json"].write_text(json.dumps(json_ready(result.to_dict()), indent=2) + "\n")
    lines = [",".join(["rank", *result.names])]
    lines += [
        ",".join([str(i), *(f"{s[n]:.12g}" for n in result.names)])
        for i, s in enumerate(result.suggestions, 1)
    ]
    paths["suggestions_csv"].write_text("\n".join(lines) + "\n")
    return paths


# -- helpers ---------------------------------------------------------------------------------------


def _most_common(probes: Sequence[Probe]) -> Probe:
    """The probe most curves were measured with (the agent's station scatters it)."""
    return max(sorted(set(probes)), key=probes.count)


def _region(
    names: tuple[str, ...],
    compositions: Mapping[str, Mapping[str, float]],
    bounds: Mapping[str, tuple[float, float]] | None,
) -> FeasibleRegion:
    given = dict(bounds or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise MapInputError(
            f"bounds name {', '.join(unknown)}, not in the table; components: {', '.join(names)}"
        )
    chosen: dict[str, tuple[float, float]] = {}
    for n in names:
        values = [c[n] for c in compositions.values()]
        lo, hi = given.get(n, (min(values), max(values)))
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi <= 1.0):
            what = "given" if n in given else f"spanned by the table (every row has {lo:g})"
            raise MapInputError(
                f"bounds of {n} {what}: [{lo:g}, {hi:g}]; a map needs 0 <= LO < HI <= 1 (--bounds {n}=LO:HI)"
            )
        outside = [f for f, c in compositions.items() if not lo - 1e-9 <= c[n] <= hi + 1e-9]
        if outside:
            raise MapInputError(
                f"bounds {n}={lo:g}:{hi:g} leave out {len(outside)} composition(s) of the table "
                f"(e.g. {outside[0]} with {n} = {compositions[outside[0]][n]:g}); the table spans "
                f"{n}={min(values):g}:{max(values):g}: widen the bounds to contain it"
            )
        chosen[n] = (float(lo), float(hi))
    solvent = next(s for s in ("solvent", "solvent_", "rest") if s not in names)
    components = [Component(n, "H2O", 1.0, Role.SOLUTE) for n in names]
    try:
        return region_from_bounds(components, chosen, Component(solvent, "H2O", 1.0))
    except TandemError as error:
        raise MapInputError(f"bounds {chosen}: {error}") from None


def _grid(region: FeasibleRegion) -> np.ndarray:
    """A regular grid over the bounds (points over the sum cap dropped)."""
    d = region.dim
    per_axis = GRID_POINTS.get(d, max(3, int(20_000 ** (1.0 / d))))
    axes = [np.linspace(lo, hi, per_axis) for lo, hi in (region.bounds[n] for n in region.names)]
    points = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
    return points[points.sum(axis=1) <= region.max_total + 1e-9]


def _result(
    name: str, curve: Curve, composition: Mapping[str, float], probe: Probe, morphology: str | None
) -> tuple[AnalysisRecord, Observation]:
    record = AnalysisRecord(
        run_uid=name,
        status=AnalysisStatus.OK,
        analysis_version="offline",
        parameters={},
        sample_uid=name,
        campaign_id=STATION,
        station=STATION,
        probe=probe.value,
        composition=dict(composition),
        label=morphology,
        curve=curve,
    )
    observation = Observation(
        sample_uid=name,
        run_uid=name,
        campaign_id=STATION,
        station=STATION,
        probe=probe,
        composition=dict(composition),
        status=AnalysisStatus.OK,
        exposure_s=1.0,
    )
    return record, observation


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        key = "not described" if v is None else str(v)
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
