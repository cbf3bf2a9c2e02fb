"""The empty cell each sample run is reduced against: remembered from documents, found in Tiled, cached.

An empty cell is a `measure_empty_cell` run (or a run's own `empty_cell` stream) of the same station
and detector geometry, measured before the sample. The one this process measured last is kept from
its documents, so that a sample needs no search of the catalog; the exposures read from Tiled are kept
by run uid (a closed run does not change), so that a sample needs no read of megabyte frames either.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from tandem.analysis.failures import AnalysisError
from tandem.analysis.pipeline_settings import StationCalibration
from tandem.analysis.raw_runs import EMPTY_CELL_PLAN, EMPTY_CELL_STREAM, RunLike, stream_exposure
from tandem.analysis.reduction import Exposure, geometry_from_metadata
from tandem.catalog import Catalog
from tandem.errors import TandemError
from tandem.run_documents import ExitStatus

#: empty-cell exposures kept in memory (frames are megabytes; a campaign uses one per detector set-up)
EMPTY_CELL_CACHE_SIZE = 8


def _geometry_key(geometry: Any) -> str:
    """A hashable form of a geometry as recorded in a start document (runs match on equal geometry)."""
    return json.dumps(geometry, sort_keys=True, default=str)


class EmptyCells:
    """The empty cells of the runs of one catalog.

    `remember` may be called from any thread (the RunEngine's adds references while a run is being
    analysed); `exposure_for`, which fills the exposure cache, from one thread at a time (the
    analyzer's reduction stage holds a lock for it).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        # the newest this process measured, by station and geometry (from the documents it saw)
        self._references: dict[tuple[str, str], RunLike] = {}
        # its own lock: the RunEngine's thread adds references while a run is being analysed
        self._references_lock = threading.Lock()
        # the exposures read from Tiled, by run uid (with the calibration that made them)
        self._exposures: OrderedDict[tuple[str, StationCalibration, float | None], Exposure] = OrderedDict()

    def remember(self, run: RunLike) -> bool:
        """Keep an empty-cell run this process just measured (from its documents): the runs after it at
        the same station and geometry use it without looking it up in Tiled. False if it is not one."""
        if run.plan_name != EMPTY_CELL_PLAN or run.exit_status is not ExitStatus.SUCCESS:
            return False
        if not run.station or EMPTY_CELL_STREAM not in run.streams or "geometry" not in run.start:
            return False
        try:
            geometry = geometry_from_metadata(run.start["geometry"]).to_dict()
        except (TandemError, TypeError, ValueError):
            return False
        key = (run.station, _geometry_key(geometry))
        with self._references_lock:
            known = self._references.get(key)
            if known is None or known.time <= run.time:
                self._references[key] = run
        return True

    def exposure_for(
        self, run: RunLike, geometry: Mapping[str, Any], calibration: StationCalibration
    ) -> Exposure | None:
        """The empty cell `run` is reduced against, or None: its own `empty_cell` stream, else the
        newest this process measured at its station and geometry, else one found in Tiled; never one
        measured after it."""
        source: RunLike | None = run if EMPTY_CELL_STREAM in run.streams else None
        if source is None and run.station:
            # one this process measured is the newest there is (a later one would have come through here)
            with self._references_lock:
                known = self._references.get((run.station, _geometry_key(geometry)))
            source = known if known is not None and known.time <= run.time else None
        if source is None and run.station:
            for candidate in self.catalog.runs(
                station=run.station, plan_name=EMPTY_CELL_PLAN, exit_status=ExitStatus.SUCCESS, limit=20
            ):
                if candidate.time <= run.time and candidate.start.get("geometry") == dict(geometry):
                    source = candidate
                    break
        if source is None:
            return None
        try:
            return self._exposure(source, calibration, None)
        except AnalysisError:
            if calibration.empty_cell_transmission is None:
                raise
            # an empty cell measured without its own transmission: the calibrated one will do
            return self._exposure(source, calibration, calibration.empty_cell_transmission)

    def _exposure(
        self, source: RunLike, calibration: StationCalibration, fixed_transmission: float | None
    ) -> Exposure:
        if source.stop is None:  # an open run may still grow: never cached
            return stream_exposure(source, EMPTY_CELL_STREAM, calibration, fixed_transmission)
        key = (source.uid, calibration, fixed_transmission)
        cached = self._exposures.get(key)
        if cached is None:
            cached = stream_exposure(source, EMPTY_CELL_STREAM, calibration, fixed_transmission)
            self._exposures[key] = cached
            while len(self._exposures) > EMPTY_CELL_CACHE_SIZE:
                self._exposures.popitem(last=False)
        else:
            self._exposures.move_to_end(key)
        return cached
