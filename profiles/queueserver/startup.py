"""Queue-server startup for one tandem station: `start-re-manager --startup-script startup.py`.

The RE Manager's worker runs this each time its environment opens. It opens the
same station session the IPython profile opens (`tandem.campaign.session`), so
a station is wired one way whether a person or an agent drives it, and puts
into the worker's namespace what the queue server may run:

* ``RE`` — the station's RunEngine, writing every run to Tiled (the queue server
  does not create one: since bluesky-queueserver 0.0.22 the startup code must);
* the devices, under the names plans are given (``saxs``, ``saxs_liquid_handler``,
  ``saxs_cell_loader``);
* the plans: ``sample_plan`` (what the agent queues) and, for scientists, the
  preparation and measurement plans. ``user_group_permissions.yaml`` decides
  which group may run which.

Configuration comes from the environment (`tandem station start` sets it):
``TANDEM_STATION`` (required), ``TANDEM_SIM`` (true: the digital twin; false:
EPICS), ``TANDEM_CAMPAIGN`` (the campaign file: decks, scan limits; the bundled
demo if unset), ``TANDEM_STATION_PREFIX`` / ``TANDEM_CELL_LOADER_PREFIX`` (EPICS; each
wins over the station's instrument profile's; a station whose profile says ``backend: epics``
gets the robot its profile names), and the data store, ``TANDEM_TILED_URI`` /
``TANDEM_TILED_API_KEY``. Analysis is not done here: the ``tandem analyze --follow`` worker
analyses every run.
"""

# No `from __future__ import annotations`: bluesky-queueserver reads the plans' annotations.
import contextlib
import functools
import inspect
import logging
import multiprocessing.util
import typing

from bluesky_queueserver import parameter_annotation_decorator

from tandem.campaign.session import open_station_session
from tandem.campaign.session_config import SessionSettings
from tandem.plans import measurement, preparation
from tandem.plans import sample as _sample
from tandem.stations import device_names

_logger = logging.getLogger("tandem.queueserver")

_settings = SessionSettings.from_environment()
_stack = contextlib.ExitStack()
_session = _stack.enter_context(
    open_station_session(
        _settings.station,
        campaign=_settings.campaign,
        sim=_settings.sim,
        data_directory=_settings.data,
        # EPICS: each prefix given here wins over the station's profile's; on the twin a cell loader's
        # prefix would name an IOC already running, and the session starts its own
        station_prefix=_settings.station_prefix,
        cell_loader_prefix=None if _settings.sim else _settings.cell_loader_prefix,
        analyse=False,
    )
)
# The worker is a multiprocessing child: `atexit` does not run there, its finalizers do. Closing the
# session stops the IOC and the CA repeater it started (`tandem station stop` also stops the group).
multiprocessing.util.Finalize(None, _stack.close, exitpriority=100)

_station = _settings.station
_devices = _session.devices()
globals().update(_devices)

RE = _session.RE
# a plan that fails is recorded in Tiled and in the queue history; the queue goes on with the next item
RE.md.update({"station": _station, "queue_server": True})

_names = device_names(_station)
_DEVICE_PARAMETERS = {
    "station": {"annotation": "Station", "devices": {"Station": [_names.station]}},
    "liquid_handler": {"annotation": "LiquidHandler", "devices": {"LiquidHandler": [_names.liquid_handler]}},
    "cell_loader": {"annotation": "CellLoader", "devices": {"CellLoader": [_names.cell_loader]}},
}


def _queue_plan(plan, device_parameters):  # type: ignore[no-untyped-def]
    """`plan` as the queue server should see it: types it can check, and only this station's devices.

    The plan modules postpone their annotations (strings), which the queue server cannot
    evaluate, so the wrapper carries the resolved signature. The device parameters are
    annotated with the names of this station's devices: the RE Manager refuses, before
    anything runs, an item that names another station's devices or anything else.
    """
    hints = typing.get_type_hints(plan)
    signature = inspect.signature(plan)
    resolved = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]

    @functools.wraps(plan)
    def queued(*args, **kwargs):  # type: ignore[no-untyped-def]
        return (yield from plan(*args, **kwargs))

    queued.__signature__ = signature.replace(parameters=resolved, return_annotation=inspect.Signature.empty)
    annotation = {"parameters": {p: _DEVICE_PARAMETERS[p] for p in device_parameters}}
    return parameter_annotation_decorator(annotation)(queued)


sample_plan = _queue_plan(_sample.sample_plan, ("station", "liquid_handler", "cell_loader"))
measure_sample = _queue_plan(measurement.measure_sample, ("station",))
measure_empty_cell = _queue_plan(measurement.measure_empty_cell, ("station",))
measure_transmission = _queue_plan(measurement.measure_transmission, ("station",))
prepare_sample = _queue_plan(preparation.prepare_sample, ("liquid_handler",))
load_sample = _queue_plan(preparation.load_sample, ("cell_loader",))
rinse_cell = _queue_plan(preparation.rinse_cell, ("cell_loader",))

_logger.info("tandem station %s ready:\n%s", _station, _session.banner())
print(_session.banner())
