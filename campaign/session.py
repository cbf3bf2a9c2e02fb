"""A beamline scientist's session at one station: devices, robot, plans, RunEngine and data store.

`open_station_session("saxs")` builds what a person at the station types at:
the station's devices under the names the queue server knows them by (`saxs`,
`saxs_liquid_handler`, `saxs_cell_loader`), a RunEngine that writes every run
to Tiled and analyses every measurement as it closes, the plans with the
devices already filled in, a `Catalog` on the store, and helpers to plot a
run's reduced curve. The IPython profile (``profiles/ipython``) and the
queue-server startup open their station here, so a station is set up one way.

Backends, chosen by configuration:

* simulated (``sim=True``): the digital twin's station, robot and clock, and
  the cell loader over Channel Access to its caproto IOC, which the session
  starts (or, given `cell_loader_prefix`, one that already runs);
* EPICS (``sim=False``): the station's devices and the cell loader over
  Channel Access at the prefixes of `EpicsPrefixes` (given, else the station's
  instrument profile's, else tandem's defaults). A station whose profile says
  `backend: epics` pipettes with the PyLabRobot robot its profile names, set up
  once every PV answers (`tandem.campaign.epics_lab`); a station on one of the
  twin's instruments, with the simulated robot. The banner says which.

Everything the session starts it stops on exit, also on failure. A Tiled
server is attached to when one is configured (`TANDEM_TILED_URI`), else served
from ``DATA/tiled`` — or attached to again if an earlier session left it running.

A person's session (`interactive=True`, as `tandem shell` opens it) prints bluesky's
live table of each run (`session.bec`); the campaign runner's and the queue server's
do not: they have no terminal.

The session's parts, one job each: `session_config` (settings, EPICS prefixes, the
campaign), `session_wiring` (data store, rig and analysis), `session_plans` (the
plans with the station filled in), `session_curves` (a run's curve, described and
plotted), `session_table` (the live table); this module puts them together as a
`StationSession`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bluesky import RunEngine
from bluesky.utils import SigintHandler

from tandem.analysis.pipeline import Analyzer
from tandem.analysis.pipeline_callback import AnalysisCallback
from tandem.analysis.pipeline_settings import StationCalibration
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.campaign.config import Campaign
from tandem.campaign.session_config import (
    EpicsPrefixes,
    SessionConfigError,
    check_backend,
    on_real_line,
    resolve_campaign,
    station_profile,
)
from tandem.campaign.session_curves import describe, show_plot, write_curve_plot
from tandem.campaign.session_plans import StationPlans
from tandem.campaign.session_table import describe_live_table, live_table
from tandem.campaign.session_wiring import (
    MeasurementsOnly,
    analysis_settings,
    data_store,
    epics_rig,
    real_line_rig,
    twin_rig,
)
from tandem.campaign.station_rig import StationRig
from tandem.catalog import Catalog
from tandem.run_writer import subscribe_tiled_writer
from tandem.tiled_endpoint import TiledEndpoint, TiledSettings

if TYPE_CHECKING:
    from bluesky.callbacks.best_effort import BestEffortCallback
    from tiled.client.container import Container


@dataclass
class StationSession:
    """One station, ready for a person at the keyboard. Live objects, not values."""

    campaign: Campaign
    rig: StationRig
    backend: Literal["sim", "epics"]
    endpoint: TiledEndpoint
    data_directory: Path
    #: how the session reached Tiled, for the banner ("started", "attached", "re-attached")
    tiled_origin: str
    catalog: Catalog
    analyzer: Analyzer
    plans: StationPlans
    notes: list[str] = field(default_factory=list)
    #: analysed records of this session's runs, oldest first
    records: list[AnalysisRecord] = field(default_factory=list)
    #: the live table of each run (interactive sessions only): `bec.disable_table()` hides it
    bec: BestEffortCallback | None = None

    @property
    def station_id(self) -> str:
        return self.rig.id

    @property
    def RE(self) -> RunEngine:  # noqa: N802 -- the name every bluesky user types
        return self.rig.RE

    @property
    def client(self) -> Container:
        return self.catalog.client

    @property
    def analysis(self) -> AnalysisStore:
        return self.analyzer.store

    def devices(self) -> dict[str, Any]:
        return self.rig.devices()

    def namespace(self) -> dict[str, Any]:
        """What a user's namespace gets: RE, devices, plans, the store and the helpers."""
        return {
            "RE": self.RE,
            **self.devices(),
            **self.plans.as_namespace(),
            "session": self,
            "campaign": self.campaign,
            "catalog": self.catalog,
            "tiled": self.client,
            "analysis": self.analysis,
            "plot_curve": self.plot_curve,
            "show_curve": self.show_curve,
            **({"bec": self.bec} if self.bec is not None else {}),
        }

    # -- curves ----------------------------------------------------------------------------------

    def record(self, run_uid: str | None = None) -> AnalysisRecord:
        """The analysed record of `run_uid` (read from Tiled), or of the session's last analysed run."""
        if run_uid is None:
            if not self.records:
                raise SessionConfigError(
                    "no run of this session has been analysed yet; measure a sample first, "
                    "or pass the uid of a run in the catalog"
                )
            run_uid = self.records[-1].run_uid
        record = self.analysis.get(run_uid)
        if record is None:
            raise SessionConfigError(
                f"run {run_uid!r} has no analysed node in {self.endpoint.url}: it is not a sample "
                "measurement, or it has not been analysed yet (`tandem analyze` analyses the backlog)"
            )
        return record

    def plot_curve(self, run_uid: str | None = None, path: str | Path | None = None) -> Path:
        """Write the reduced curve I(q) of a run to a PNG (default: the last analysed) and return its path."""
        record = self.record(run_uid)
        target = Path(path) if path is not None else self.data_directory / "plots" / f"{record.run_uid}.png"
        return write_curve_plot(record, target)

    def show_curve(self, run_uid: str | None = None) -> Path:
        """Plot a run's curve and show it (inline in a notebook, else its path); return the PNG's path."""
        path = self.plot_curve(run_uid)
        show_plot(path, f"curve of run {path.stem}")
        return path

    # -- banner ----------------------------------------------------------------------------------

    def banner(self) -> str:
        """What is loaded, in a few lines a person reads at the prompt."""
        rig = self.rig
        backend = "simulated (digital twin)" if self.backend == "sim" else "EPICS"
        plans = self.plans
        lines = [
            f"tandem · station {rig.id} ({rig.campaign_station.probe.value}) · {backend}",
            f"  campaign   {self.campaign.id} (samples recorded as campaign {plans.campaign_id!r})",
            f"  Tiled      {self.endpoint.url} ({self.tiled_origin})",
            f"  data       {self.data_directory}",
            "  devices    " + ", ".join(self.devices()),
            "  plans      " + ", ".join(f"{name}()" for name in plans.as_namespace()),
            "  helpers    RE, catalog, tiled, analysis, plot_curve(uid), show_curve(uid), session",
            f"  defaults   exposure {plans.default_exposure_s:g} s, configuration "
            f"{plans.default_configuration!r}, {plans.default_temperature_c:g} °C, "
            f"{plans.default_volume_ul:g} µL per sample",
            "  stocks     " + ", ".join(stock.name for stock in rig.campaign_station.deck.stocks),
        ]
        if self.bec is not None:
            lines.append(f"  table      {describe_live_table()}")
        lines += [f"  note       {note}" for note in self.notes]
        lines.append(f"  try        RE(sample_plan({_example_target(self.campaign)}))")
        return "\n".join(lines)


def _example_target(campaign: Campaign) -> dict[str, float]:
    """A target in the middle of the campaign's bounds, to show the syntax with numbers that work."""
    return {name: round(0.25 * (lo + hi), 4) for name, (lo, hi) in campaign.space.bounds.items()}


@contextlib.contextmanager
def open_station_session(
    station_id: str,
    *,
    campaign: Campaign | str | Path | None = None,
    sim: bool = True,
    tiled: TiledEndpoint | TiledSettings | None = None,
    data_directory: str | Path = "tandem-data",
    epics: EpicsPrefixes | None = None,
    station_prefix: str | None = None,
    cell_loader_prefix: str | None = None,
    campaign_id: str = "manual",
    calibration: StationCalibration | None = None,
    analyse: bool = True,
    on_analysed: Callable[[AnalysisRecord], None] | None = None,
    interactive: bool = False,
) -> Iterator[StationSession]:
    """Open a session at `station_id` of `campaign`; stop everything it started on exit.

    `tiled`: an endpoint to attach to, or settings (`TiledSettings()`, read from the
    environment, by default); with neither a URI nor a directory configured, the
    store is served from ``data_directory/tiled``. On the twin, `cell_loader_prefix`
    names a cell-loader IOC that already runs (in this process's CA environment);
    without it the session starts one. On EPICS, `epics` holds the PV prefixes, or
    else each is `station_prefix` / `cell_loader_prefix` if given, the station's
    instrument profile's, or tandem's default (`EpicsPrefixes.for_station`); a station
    whose profile says `backend: epics` gets the robot its profile names (PyLabRobot),
    and every PV and the robot answer before the session opens (typed errors, from
    `tandem.campaign.epics_lab`). Other stations pipette with the simulated robot.
    Runs are recorded under `campaign_id` ("manual": not the agent's campaign).
    Measurements are analysed as their runs close, with `calibration` (by default
    the one of the campaign's instrument model of the station). `interactive`: a
    person at the keyboard — Ctrl-C pauses the RunEngine (bluesky's SigintHandler;
    off otherwise, as several RunEngines may share a process), each run prints
    bluesky's live table (`session.bec`, `tandem.campaign.session_table`) and each
    analysed run is described in one line.
    """
    loaded = resolve_campaign(campaign)
    check_backend(loaded, station_id, sim=sim)
    data = Path(data_directory).absolute()
    with contextlib.ExitStack() as stack:
        endpoint, origin = data_store(stack, tiled, data)
        client = endpoint.connect()
        notes: list[str] = []
        if sim:
            rig = twin_rig(stack, loaded, station_id, cell_loader_prefix)
            backend: Literal["sim", "epics"] = "sim"
        else:
            station = loaded.stations[station_id]
            profile = station_profile(station)
            prefixes = epics or EpicsPrefixes.for_station(
                station_id, station=station_prefix, cell_loader=cell_loader_prefix, profile=profile
            )
            backend = "epics"
            notes.append(f"{prefixes.describe()} (Channel Access)")
            if profile is not None and on_real_line(station):
                rig = real_line_rig(stack, loaded, station_id, prefixes)
                notes.append(
                    f"liquid handler: PyLabRobot's {profile.profile.robot.backend!r} robot, "
                    f"as profile {profile.station!r} names it"
                )
            else:
                rig = epics_rig(stack, loaded, station_id, prefixes)
                notes.append(
                    "liquid handler: the SIMULATED robot (the station's instrument is not a profile with "
                    "backend: epics, which would name its robot)"
                )
        subscribe_tiled_writer(rig.RE, client)
        bec = None
        if interactive:
            rig.RE.context_managers = [SigintHandler]
            # subscribed before the analysis, so a run's table is closed before its analysis is told
            bec = live_table()
            rig.RE.subscribe(bec)
        session = StationSession(
            campaign=loaded,
            rig=rig,
            backend=backend,
            endpoint=endpoint,
            data_directory=data,
            tiled_origin=origin,
            catalog=Catalog(client),
            analyzer=Analyzer(client, analysis_settings(loaded, station_id, calibration)),
            plans=StationPlans(rig, campaign_id=campaign_id),
            notes=notes,
            bec=bec,
        )
        if analyse:

            def analysed(record: AnalysisRecord) -> None:
                session.records.append(record)
                if interactive:
                    print(describe(record))
                if on_analysed is not None:
                    on_analysed(record)

            callback = AnalysisCallback(session.analyzer, on_done=analysed)
            rig.RE.subscribe(MeasurementsOnly(callback))
        else:
            session.notes.append(
                "analysis off: runs are analysed by `tandem analyze --follow` "
                "(with --calibration FILE, or --sim on the twin), if it runs"
            )
        yield session


__all__ = [
    "StationSession",
    "open_station_session",
]
