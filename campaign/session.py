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
  Channel Access at the prefixes of `EpicsPrefixes` (environment or defaults).
  The liquid handler drives the simulated robot until a real robot backend
  exists; the banner says so.

Everything the session starts it stops on exit, also on failure. A Tiled
server is attached to when one is configured (`TANDEM_TILED_URI`), else served
from ``DATA/tiled`` — or attached to again if an earlier session left it running.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import bluesky.plan_stubs as bps
import numpy as np
from bluesky import RunEngine
from bluesky.utils import SigintHandler
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.analysis.pipeline import AnalysisCallback, AnalysisSettings, Analyzer, StationCalibration
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.config import Campaign, load_campaign
from tandem.campaign.rig import CELL_LOADER_PREFIX, StationRig, build_twin_rig, twin_calibration, twin_lab
from tandem.catalog import Catalog, subscribe_tiled_writer
from tandem.devices.station import StationConfig, build_epics_station
from tandem.errors import TandemError
from tandem.plans import measurement, preparation
from tandem.plans import sample as sample_plans
from tandem.robots.cell_loader import CellLoader
from tandem.robots.liquid_handler import LiquidHandler
from tandem.samples import Sample
from tandem.sim.clock import StationClock
from tandem.sim.liquid_handler import SimulatedLiquidHandler
from tandem.tiled_server import (
    API_KEY_ENV,
    URI_ENV,
    TiledEndpoint,
    TiledSettings,
    attach,
    find_running_server,
    tiled_service,
)

if TYPE_CHECKING:
    from tiled.client.container import Container

    from tandem.plans.measurement import MsgGenerator

logger = logging.getLogger(__name__)

#: the campaign a session loads when none is named: the bundled example, in a checkout
#: the station's PV prefix on the EPICS backend when none is configured
STATION_PREFIX = "TANDEM:{station}:"
#: runs of the formulation lab: no frames, nothing to reduce
_PREPARATION_PLANS = frozenset({"prepare_sample", "load_sample", "rinse_cell", "prepare_load_rinse"})


class SessionConfigError(TandemError, ValueError):
    """A station session that cannot be opened as configured; nothing was started."""


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EpicsPrefixes:
    """Where a station's hardware answers on Channel Access."""

    station: str
    cell_loader: str

    @classmethod
    def for_station(
        cls, station_id: str, *, station: str | None = None, cell_loader: str | None = None
    ) -> EpicsPrefixes:
        """The given prefixes, else the tandem defaults (`TANDEM:SAXS:`, `TANDEM:SAXS:CL:`)."""
        upper = station_id.upper()
        return cls(
            station=station or STATION_PREFIX.format(station=upper),
            cell_loader=cell_loader or CELL_LOADER_PREFIX.format(station=upper),
        )


class SessionSettings(BaseModel):
    """A session as the environment configures it (the IPython profile reads these).

    `TANDEM_STATION` (required), `TANDEM_SIM` (true: the twin; false: EPICS),
    `TANDEM_CAMPAIGN` (a campaign file; the bundled demo by default), `TANDEM_DATA`
    (folder of the Tiled store and plots), `TANDEM_STATION_PREFIX` and
    `TANDEM_CELL_LOADER_PREFIX` (EPICS); Tiled from `TANDEM_TILED_URI` and
    `TANDEM_TILED_API_KEY` (see `tandem.tiled_server.TiledSettings`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    station: str = Field(min_length=1)
    sim: bool = True
    campaign: Path | None = None
    data: Path = Path("tandem-data")
    station_prefix: str | None = None
    cell_loader_prefix: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SessionSettings:
        """Settings from `environ` (default `os.environ`); a `SessionConfigError` says what is wrong."""
        env = os.environ if environ is None else environ
        values = {
            name: env[f"TANDEM_{name.upper()}"]
            for name in cls.model_fields
            if f"TANDEM_{name.upper()}" in env
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"TANDEM_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors() if e["loc"]
            )
            raise SessionConfigError(
                f"the station session is misconfigured: {problems} (set TANDEM_STATION to a station "
                "of the campaign, for example `saxs`; TANDEM_SIM to true or false)"
            ) from None


# --- the session ------------------------------------------------------------------------------


class StationPlans:
    """The station's plans with its devices and the campaign's defaults filled in.

    Each method returns a plan for `RE(...)`. Between `prepare` and `rinse` the
    session remembers which sample is where, so `load()` loads the last prepared
    sample and `measure_sample()` records the sample in the cell.
    """

    def __init__(self, rig: StationRig, *, campaign_id: str = "manual") -> None:
        self._rig = rig
        self.campaign_id = campaign_id
        scan = rig.spec.spec.scan
        self.default_exposure_s = scan.exposure_s.default
        self.default_configuration = rig.spec.default_configuration
        self.default_temperature_c = scan.temperature_c
        self.default_volume_ul = rig.spec.spec.sample_volume_ul
        #: the liquid that takes the rest of every sample
        self.solvent = rig.spec.solvent.name
        #: the last sample prepared, and the sample in the cell (None: empty)
        self.prepared: Sample | None = None
        self.in_cell: Sample | None = None

    def _scan_kwargs(
        self, configuration: str | None, temperature_c: float | None
    ) -> dict[str, str | float | None]:
        return {
            "configuration": configuration or self.default_configuration,
            "temperature_c": self.default_temperature_c if temperature_c is None else temperature_c,
        }

    def prepare(
        self,
        target: dict[str, float],
        total_volume_ul: float | None = None,
        *,
        balance: str | None = None,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[Sample]:
        """Pipette `target` (mass fractions; `balance`, by default the solvent, the rest), as a run."""
        volume = self.default_volume_ul if total_volume_ul is None else total_volume_ul
        sample: Sample = yield from preparation.prepare_sample(
            self._rig.liquid_handler,
            target,
            volume,
            balance=balance or self.solvent,
            campaign_id=self.campaign_id,
            md=md,
        )
        self.prepared = sample
        return sample

    def load(self, volume_ul: float | None = None, *, md: dict[str, Any] | None = None) -> MsgGenerator[None]:
        """Load the last prepared sample into the cell (half its volume by default), as a run."""
        if self.prepared is None:
            raise SessionConfigError("nothing to load: prepare a sample first, `RE(prepare({'SDS': 0.05}))`")
        sample = self.prepared
        volume = (
            (sample.target.total_volume_ul or self.default_volume_ul) / 2 if volume_ul is None else volume_ul
        )
        yield from preparation.load_sample(self._rig.cell_loader, volume, sample=sample.to_dict(), md=md)
        # the station records what is in the beam (the twin also needs it to know what it sees)
        yield from bps.mv(self._rig.station.sample, _beam_record(sample))
        self.in_cell = sample
        self.prepared = None

    def rinse(self, n_cycles: int = 2, dry_s: float = 30.0) -> MsgGenerator[None]:
        """Rinse and dry the cell, as a run; the cell is empty afterwards."""
        yield from preparation.rinse_cell(self._rig.cell_loader, n_cycles, dry_s)
        yield from bps.mv(self._rig.station.sample, None)
        self.in_cell = None

    def measure_empty_cell(
        self,
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        n_frames: int = 1,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[str]:
        """Frames of the empty cell: the background the next sample runs are reduced with."""
        if self.in_cell is not None:
            raise SessionConfigError(
                f"the cell holds sample {self.in_cell.uid}: `RE(rinse())` before measuring the empty cell"
            )
        return (
            yield from measurement.measure_empty_cell(
                self._rig.station,
                self._exposure(exposure_s),
                n_frames=n_frames,
                md=md,
                **self._scan_kwargs(configuration, temperature_c),  # type: ignore[arg-type]
            )
        )

    def measure_transmission(
        self,
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[str]:
        """Transmission of what is in the cell now."""
        return (
            yield from measurement.measure_transmission(
                self._rig.station,
                self._exposure(exposure_s),
                md={**self._cell_md(), **(md or {})},
                **self._scan_kwargs(configuration, temperature_c),  # type: ignore[arg-type]
            )
        )

    def measure_sample(
        self,
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        n_frames: int = 1,
        md: dict[str, Any] | None = None,
    ) -> MsgGenerator[str]:
        """Transmission and scattering frames of the sample in the cell; analysed when the run closes."""
        return (
            yield from measurement.measure_sample(
                self._rig.station,
                self._exposure(exposure_s),
                n_frames=n_frames,
                md={**self._cell_md(), **(md or {})},
                **self._scan_kwargs(configuration, temperature_c),  # type: ignore[arg-type]
            )
        )

    def sample_plan(
        self,
        target: dict[str, float],
        exposure_s: float | None = None,
        *,
        configuration: str | None = None,
        temperature_c: float | None = None,
        n_frames: int = 1,
        balance: str | None = None,
        total_volume_ul: float | None = None,
        md: dict[str, Any] | None = None,
        **options: Any,
    ) -> MsgGenerator[str]:
        """The whole sample in one run, as the agent queues it: prepare, load, measure, rinse."""
        if self.in_cell is not None:
            raise SessionConfigError(
                f"the cell holds sample {self.in_cell.uid}: `RE(rinse())` before running a sample plan"
            )
        volume = self.default_volume_ul if total_volume_ul is None else total_volume_ul
        return (
            yield from sample_plans.sample_plan(
                self._rig.station,
                self._rig.liquid_handler,
                self._rig.cell_loader,
                target,
                self._exposure(exposure_s),
                n_frames=n_frames,
                balance=balance or self.solvent,
                campaign_id=self.campaign_id,
                total_volume_ul=volume,
                load_volume_ul=options.pop("load_volume_ul", volume / 2),
                md=md,
                **self._scan_kwargs(configuration, temperature_c),  # type: ignore[arg-type]
                **options,
            )
        )

    def _exposure(self, exposure_s: float | None) -> float:
        return self.default_exposure_s if exposure_s is None else float(exposure_s)

    def _cell_md(self) -> dict[str, Any]:
        if self.in_cell is None:
            return {}
        record = self.in_cell.to_dict()
        return {
            "sample_uid": self.in_cell.uid,
            "campaign_id": self.in_cell.campaign_id,
            "sample": record,
            "target": record["target"],
            "realized": record["realized"],
        }

    def as_namespace(self) -> dict[str, Callable[..., Any]]:
        return {
            "prepare": self.prepare,
            "load": self.load,
            "rinse": self.rinse,
            "measure_empty_cell": self.measure_empty_cell,
            "measure_transmission": self.measure_transmission,
            "measure_sample": self.measure_sample,
            "sample_plan": self.sample_plan,
        }


def _beam_record(sample: Sample) -> dict[str, Any]:
    composition = sample.realized or sample.target
    return {"uid": sample.uid, "mass_fractions": dict(composition.mass_fractions)}


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
        return _plot_curve(record, target)

    def show_curve(self, run_uid: str | None = None) -> Path:
        """Plot a run's curve and show it (inline in a notebook, else its path); return the PNG's path."""
        path = self.plot_curve(run_uid)
        shown = False
        with contextlib.suppress(ImportError):
            from IPython import get_ipython
            from IPython.display import Image, display

            shell = get_ipython()
            if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
                display(Image(filename=str(path)))
                shown = True
        if not shown:
            print(f"curve of run {path.stem}: {path}")
        return path

    # -- banner ----------------------------------------------------------------------------------

    def banner(self) -> str:
        """What is loaded, in a few lines a person reads at the prompt."""
        rig = self.rig
        backend = "simulated (digital twin)" if self.backend == "sim" else "EPICS"
        plans = self.plans
        lines = [
            f"tandem · station {rig.id} ({rig.spec.probe.value}) · {backend}",
            f"  campaign   {self.campaign.id} (samples recorded as campaign {plans.campaign_id!r})",
            f"  Tiled      {self.endpoint.url} ({self.tiled_origin})",
            f"  data       {self.data_directory}",
            "  devices    " + ", ".join(self.devices()),
            "  plans      " + ", ".join(f"{name}()" for name in plans.as_namespace()),
            "  helpers    RE, catalog, tiled, analysis, plot_curve(uid), show_curve(uid), session",
            f"  defaults   exposure {plans.default_exposure_s:g} s, configuration "
            f"{plans.default_configuration!r}, {plans.default_temperature_c:g} °C, "
            f"{plans.default_volume_ul:g} µL per sample",
            "  stocks     " + ", ".join(stock.name for stock in rig.spec.deck.stocks),
        ]
        lines += [f"  note       {note}" for note in self.notes]
        lines.append(f"  try        RE(sample_plan({_example_target(self.campaign)}))")
        return "\n".join(lines)


def _example_target(campaign: Campaign) -> dict[str, float]:
    """A target in the middle of the campaign's bounds, to show the syntax with numbers that work."""
    return {name: round(0.25 * (lo + hi), 4) for name, (lo, hi) in campaign.space.bounds.items()}


# --- opening a session ------------------------------------------------------------------------


def resolve_campaign(campaign: Campaign | str | Path | None) -> Campaign:
    """A loaded campaign: the one given, the file named, or the bundled demo."""
    if isinstance(campaign, Campaign):
        return campaign
    if campaign is None:
        if not DEMO_CAMPAIGN.exists():
            raise SessionConfigError(
                f"no campaign file given and the bundled demo ({DEMO_CAMPAIGN}) is not there; "
                "pass --campaign FILE or set TANDEM_CAMPAIGN"
            )
        campaign = DEMO_CAMPAIGN
    return load_campaign(campaign)


@contextlib.contextmanager
def open_station_session(
    station_id: str,
    *,
    campaign: Campaign | str | Path | None = None,
    sim: bool = True,
    tiled: TiledEndpoint | TiledSettings | None = None,
    data_directory: str | Path = "tandem-data",
    epics: EpicsPrefixes | None = None,
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
    without it the session starts one. On EPICS, `epics` holds the PV prefixes.
    Runs are recorded under `campaign_id` ("manual": not the agent's campaign).
    Measurements are analysed as their runs close, with `calibration` (by default
    the one of the campaign's instrument model of the station). `interactive`: a
    person at the keyboard — Ctrl-C pauses the RunEngine (bluesky's SigintHandler;
    off otherwise, as several RunEngines may share a process) and each analysed run
    is described in one line.
    """
    loaded = resolve_campaign(campaign)
    if station_id not in loaded.stations:
        raise SessionConfigError(
            f"station {station_id!r} is not in campaign {loaded.id!r}; "
            f"its stations are {', '.join(sorted(loaded.stations))}"
        )
    data = Path(data_directory).absolute()
    with contextlib.ExitStack() as stack:
        endpoint, origin = _data_store(stack, tiled, data)
        client = endpoint.connect()
        notes: list[str] = []
        if sim:
            rig = _twin_rig(stack, loaded, station_id, cell_loader_prefix)
            backend: Literal["sim", "epics"] = "sim"
        else:
            prefixes = epics or EpicsPrefixes.for_station(station_id)
            rig = _epics_rig(loaded, station_id, prefixes)
            backend = "epics"
            notes.append(
                f"station at {prefixes.station}, cell loader at {prefixes.cell_loader} (Channel Access)"
            )
            notes.append("liquid handler: the SIMULATED robot backend (no real robot backend exists yet)")
        subscribe_tiled_writer(rig.RE, client)
        if interactive:
            rig.RE.context_managers = [SigintHandler]
        session = StationSession(
            campaign=loaded,
            rig=rig,
            backend=backend,
            endpoint=endpoint,
            data_directory=data,
            tiled_origin=origin,
            catalog=Catalog(client),
            analyzer=Analyzer(client, _analysis_settings(loaded, station_id, calibration)),
            plans=StationPlans(rig, campaign_id=campaign_id),
            notes=notes,
        )
        if analyse:

            def analysed(record: AnalysisRecord) -> None:
                session.records.append(record)
                if interactive:
                    print(describe(record))
                if on_analysed is not None:
                    on_analysed(record)

            callback = AnalysisCallback(session.analyzer, on_done=analysed)
            rig.RE.subscribe(_MeasurementsOnly(callback))
        else:
            session.notes.append("analysis off: runs are analysed by `tandem analyze --follow`, if it runs")
        yield session


def _analysis_settings(
    campaign: Campaign, station_id: str, calibration: StationCalibration | None
) -> AnalysisSettings:
    station = campaign.stations[station_id]
    if calibration is None:
        # what a facility measures with standards; the twin's instrument model knows it exactly
        calibration = twin_calibration(station.instrument)
    solvents = tuple(dict.fromkeys([*(s.solvent.name for s in campaign.stations.values()), "H2O", "D2O"]))
    return AnalysisSettings(calibrations={station_id: calibration}, solvent_names=solvents)


def _data_store(
    stack: contextlib.ExitStack, tiled: TiledEndpoint | TiledSettings | None, data: Path
) -> tuple[TiledEndpoint, str]:
    if isinstance(tiled, TiledEndpoint):
        return attach(tiled.url, tiled.api_key), "attached"
    settings = tiled if tiled is not None else TiledSettings()
    if settings.uri is not None:
        return stack.enter_context(tiled_service(settings)), "attached"
    directory = settings.directory or data / "tiled"
    running = find_running_server(directory)
    if running is not None:
        return running, f"re-attached to the server an earlier session left serving {directory}"
    settings = TiledSettings(directory=directory, api_key=settings.api_key)
    endpoint = stack.enter_context(tiled_service(settings))
    return endpoint, f"started on {directory}; set {URI_ENV} and {API_KEY_ENV} to share one"


def _twin_rig(
    stack: contextlib.ExitStack, campaign: Campaign, station_id: str, cell_loader_prefix: str | None
) -> StationRig:
    if cell_loader_prefix is None:
        lab = stack.enter_context(twin_lab(campaign, None, stations=(station_id,)))
        return lab.rigs[station_id]
    return build_twin_rig(
        campaign.stations[station_id],
        truth=campaign.twin.truth,
        seed=campaign.twin.seed,
        time_scale=campaign.twin.time_scale,
        tiled_client=None,
        cell_loader_prefix=cell_loader_prefix,
    )


def _epics_rig(campaign: Campaign, station_id: str, prefixes: EpicsPrefixes) -> StationRig:
    spec = campaign.stations[station_id]
    station = build_epics_station(
        StationConfig(name=station_id, probe=spec.probe, backend="epics", prefix=prefixes.station)
    )
    # the robot is simulated, so it keeps simulated time; the twin's time scale says how fast
    clock = StationClock(station_id, time_scale=campaign.twin.time_scale)
    robot = SimulatedLiquidHandler(spec.deck.pipettes, clock, seed=campaign.twin.seed)
    liquid_handler = LiquidHandler(robot, spec.deck, name=f"{station_id}_liquid_handler")
    cell_loader = CellLoader(prefixes.cell_loader, name=f"{station_id}_cell_loader")
    cell_loader.wait_for_connection(timeout=10)
    run_engine = RunEngine({}, context_managers=[])
    return StationRig(station_id, spec, station, clock, liquid_handler, cell_loader, run_engine)


def _plot_curve(record: AnalysisRecord, path: Path) -> Path:
    """I(q) on log axes with its 1-σ band, titled with the sample; the label and best fit in a corner."""
    from matplotlib.figure import Figure

    if not record.ok or record.curve is None:
        raise SessionConfigError(
            f"run {record.run_uid} has no curve: its analysis failed "
            f"({record.failure_code}: {record.failure_reason})"
        )
    curve = record.curve
    q, intensity, sigma = curve.q_inv_a, curve.intensity_per_cm, curve.sigma_per_cm
    shown = (intensity > 0) & np.isfinite(intensity)
    fig = Figure(figsize=(6.0, 4.4), layout="constrained")
    ax = fig.subplots()
    lower = np.clip(intensity - sigma, intensity * 1e-3, None)
    ax.fill_between(q[shown], lower[shown], (intensity + sigma)[shown], color="#56B4E9", alpha=0.35, lw=0)
    ax.loglog(q[shown], intensity[shown], color="#0072B2", lw=1.2, label="reduced I(q) ± 1σ")
    ax.set_xlabel("q (1/Å)")
    ax.set_ylabel("I(q) (1/cm)")
    composition = ", ".join(f"{name} {100 * value:.2f} %" for name, value in record.composition.items())
    ax.set_title(
        f"{(record.station or '?').upper()} · sample {(record.sample_uid or '?')[:8]} · "
        f"{record.exposure_s:g} s\n{composition or 'composition unknown'}",
        fontsize="medium",
    )
    ax.text(
        0.97,
        0.97,
        "\n".join(_curve_summary(record)),
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"},
    )
    ax.legend(loc="lower left", frameon=False, fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def describe(record: AnalysisRecord) -> str:
    """One line about an analysed run, as the session prints it when the run closes."""
    head = f"analysed run {record.run_uid[:8]}"
    if not record.ok:
        return f"{head}: FAILED ({record.failure_code}: {record.failure_reason})"
    return f"{head}: " + "; ".join(_curve_summary(record)) + " — plot_curve() to see it"


def _curve_summary(record: AnalysisRecord) -> list[str]:
    lines = []
    if record.label is not None:
        p = record.label_probabilities.get(record.label)
        lines.append(f"label: {record.label.replace('_', ' ')}" + (f" (p={p:.2f})" if p is not None else ""))
    best = record.fits.get("best_model")
    if best:
        chi2 = record.scalar_features().get("fit_chi2_reduced", math.nan)
        lines.append(f"best fit: {str(best).replace('_', ' ')}, χ²ᵣ={chi2:.2g}")
    features = record.scalar_features()
    for name, text in (
        ("guinier_rg_a", "Rg {:.3g} Å"),
        ("peak_d_spacing_a", "d-spacing {:.3g} Å"),
        ("porod_exponent", "Porod exponent {:.2f}"),
    ):
        value = features.get(name, math.nan)
        if math.isfinite(value):
            lines.append(text.format(value))
    return lines or ["not labelled yet"]


class _MeasurementsOnly:
    """Passes on the documents of runs that measured something; preparation runs have nothing to reduce."""

    def __init__(self, callback: Callable[[str, Mapping[str, Any]], None]) -> None:
        self._callback = callback
        self._skipped: set[str] = set()

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "start" and doc.get("plan_name") in _PREPARATION_PLANS:
            self._skipped.add(str(doc["uid"]))
            return
        run = doc.get("run_start") if name in ("descriptor", "stop") else None
        if run is not None and str(run) in self._skipped:
            if name == "stop":
                self._skipped.discard(str(run))
            return
        self._callback(name, doc)


__all__ = [
    "DEMO_CAMPAIGN",
    "EpicsPrefixes",
    "SessionConfigError",
    "SessionSettings",
    "StationPlans",
    "StationSession",
    "describe",
    "open_station_session",
    "resolve_campaign",
]
