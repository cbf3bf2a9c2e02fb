"""The catalog: where raw runs go in Tiled, how they get there, and how to find them again.

Layout of the Tiled catalog (the root of the server)::

    raw/                    Bluesky runs as the RunEngine wrote them (spec CatalogOfBlueskyRuns 3.0)
      <run uid>/            one BlueskyRun: metadata {"start": ..., "stop": ...}
        primary/            one node per stream; arrays (frames) and a table of scalars

Analysis results and decision records live in sibling containers of `raw`, linked
to runs by uid (issues 4 and 5).

Runs are written by `bluesky_tiled_plugins.TiledWriter` (`subscribe_tiled_writer`)
and read back through `Catalog`, which finds them by the keys the station plans put
in the start document (`sample_uid`, `campaign_id`, `decision_uid`, `station`, and
`plan_name`) or by exit status, and returns `RawRun`s: metadata, frames as numpy,
geometry and scan parameters. The read layer knows nothing about any station's
devices: the frames are the stream's 2-D array field, whatever its name.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
from tiled.queries import Key

from tandem.document_queue import (  # re-exported: the queue began here
    DocumentCallback,
    DocumentQueue,
    DocumentQueueError,
    UnwrittenDocumentsError,
)
from tandem.errors import TandemError
from tandem.geometry import DetectorGeometry, InvalidGeometryError
from tandem.suggestions import InvalidScanError, ScanParameters

if TYPE_CHECKING:
    from bluesky import RunEngine
    from tiled.client.container import Container

    from tandem.tiled_server import TiledEndpoint

__all__ = [
    "RAW",
    "Catalog",
    "DocumentCallback",
    "DocumentQueue",
    "DocumentQueueError",
    "ExitStatus",
    "InvalidRunQueryError",
    "RawRun",
    "RunDataError",
    "RunNotFoundError",
    "RunNotReadyError",
    "UnwrittenDocumentsError",
    "raw_runs_node",
    "subscribe_tiled_writer",
    "tiled_writer",
]

logger = logging.getLogger(__name__)

#: the container of raw Bluesky runs at the root of the catalog
RAW = "raw"

#: Events the writer collects before it sends them. One: every frame is in Tiled as
#: soon as it is taken, so a run that dies (or a process that is killed) loses at most
#: the frame in flight, and a run can be watched while it runs. The writer sends
#: whatever is left when the run closes, so a closed run is always complete.
WRITER_BATCH_SIZE = 1

#: start-document keys a run can be searched by
SEARCHABLE_KEYS = ("sample_uid", "campaign_id", "decision_uid", "station", "plan_name")


class RunNotFoundError(TandemError, KeyError):
    """No run with that uid is in the catalog."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


class RunNotReadyError(TandemError, TimeoutError):
    """A run did not appear, or did not close, within the time allowed."""


class RunDataError(TandemError, ValueError):
    """A run lacks the data asked for (a stream, a field, frames, geometry, scan parameters)."""


class InvalidRunQueryError(TandemError, ValueError):
    """A search that cannot be run (a bad limit, an empty value)."""


class ExitStatus(StrEnum):
    """How a run ended, as bluesky records it in the stop document."""

    SUCCESS = "success"
    FAIL = "fail"
    ABORT = "abort"


def raw_runs_node(client: Container) -> Container:
    """The `raw` container of the catalog, created (with the Bluesky catalog spec) if missing."""
    from tiled.structures.core import Spec

    if RAW in client:
        return client[RAW]
    try:
        return client.create_container(RAW, specs=[Spec("CatalogOfBlueskyRuns", version="3.0")])
    except Exception:
        # another process may have created it between our look and our write
        if RAW in client:
            return client[RAW]
        raise


def tiled_writer(
    client: Container, *, batch_size: int = WRITER_BATCH_SIZE, backup_directory: str | None = None
) -> DocumentCallback:
    """The callback that writes runs to the catalog of `client` (see `subscribe_tiled_writer`)."""
    from bluesky_tiled_plugins import TiledWriter

    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of events, got {batch_size}")
    writer: DocumentCallback = TiledWriter(
        raw_runs_node(client), batch_size=batch_size, backup_directory=backup_directory
    )
    return writer


def subscribe_tiled_writer(
    run_engine: RunEngine,
    client: Container,
    *,
    batch_size: int = WRITER_BATCH_SIZE,
    backup_directory: str | None = None,
    wrap: Callable[[DocumentCallback], DocumentCallback] | None = None,
) -> int:
    """Write every run of `run_engine` to the catalog of `client`; return the subscription token.

    The one place where a RunEngine is tied to Tiled (IPython profile, campaign
    runner, queue-server startup). The writer runs inside the RunEngine's
    callbacks, so when `RE(plan)` returns the run is closed in Tiled and readable;
    an error writing to Tiled fails the plan rather than losing data silently
    (unless `run_engine.ignore_callback_exceptions` is set). With
    `backup_directory`, a run that could not be written is kept there as JSON lines.
    `wrap` wraps the writer callback (for example to time it).
    """
    writer = tiled_writer(client, batch_size=batch_size, backup_directory=backup_directory)
    token: int = run_engine.subscribe(wrap(writer) if wrap is not None else writer)
    return token


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


class RunDocuments:
    """What a run's start and stop documents say, read the same way wherever the documents come from.

    `RawRun` reads them from Tiled; analysis assembles them from a RunEngine's
    document stream. Both give these typed views of the plan's metadata.
    """

    start: dict[str, Any]
    stop: dict[str, Any] | None

    def _str(self, key: str) -> str | None:
        value = self.start.get(key)
        return None if value is None else str(value)

    @property
    def uid(self) -> str:
        return str(self.start["uid"])

    @property
    def time(self) -> float:
        """Start time, seconds since the epoch."""
        return float(self.start.get("time", math.nan))

    @property
    def plan_name(self) -> str | None:
        return self._str("plan_name")

    @property
    def sample_uid(self) -> str | None:
        return self._str("sample_uid")

    @property
    def campaign_id(self) -> str | None:
        return self._str("campaign_id")

    @property
    def decision_uid(self) -> str | None:
        return self._str("decision_uid")

    @property
    def station(self) -> str | None:
        return self._str("station")

    @property
    def target(self) -> dict[str, Any] | None:
        """The composition the run was asked to measure, as the plan recorded it."""
        return _as_dict(self.start["target"]) if "target" in self.start else None

    @property
    def realized(self) -> dict[str, Any] | None:
        """The composition actually made (after pipetting errors), as the plan recorded it."""
        return _as_dict(self.start["realized"]) if "realized" in self.start else None

    @property
    def is_closed(self) -> bool:
        """Whether the run has its stop document (it may have ended in failure)."""
        return self.stop is not None

    @property
    def exit_status(self) -> ExitStatus | None:
        """How the run ended; None while it is still open (or its process died mid-run)."""
        if self.stop is None:
            return None
        return ExitStatus(self.stop.get("exit_status", ExitStatus.FAIL))

    @property
    def reason(self) -> str:
        """Why the run did not succeed ("" for a success or an open run)."""
        return "" if self.stop is None else str(self.stop.get("reason", ""))

    @property
    def scan(self) -> ScanParameters:
        """The scan parameters recorded in the start document (`RunDataError` if absent)."""
        if "scan" not in self.start:
            raise RunDataError(
                f"run {self.uid} recorded no scan parameters (no 'scan' in its start document)"
            )
        try:
            return ScanParameters.from_dict(self.start["scan"])
        except (InvalidScanError, KeyError, TypeError, ValueError) as error:
            raise RunDataError(f"run {self.uid}: unreadable scan parameters: {error}") from error

    @property
    def geometry(self) -> DetectorGeometry:
        """The detector geometry recorded in the start document (`RunDataError` if absent)."""
        if "geometry" not in self.start:
            raise RunDataError(
                f"run {self.uid} recorded no detector geometry (no 'geometry' in its start document)"
            )
        try:
            return DetectorGeometry.from_dict(self.start["geometry"])
        except (InvalidGeometryError, TypeError, ValueError) as error:
            raise RunDataError(f"run {self.uid}: unreadable detector geometry: {error}") from error


class RawRun(RunDocuments):
    """One Bluesky run read back from Tiled."""

    def __init__(self, node: Any) -> None:
        # `node` is a BlueskyRun client (bluesky_tiled_plugins); untyped upstream
        self._node = node
        metadata = node.metadata
        self.start = _as_dict(metadata.get("start"))
        self.stop = _as_dict(metadata["stop"]) if metadata.get("stop") is not None else None

    def __repr__(self) -> str:
        status = self.exit_status.value if self.exit_status else "open"
        return (
            f"<RawRun {self.uid[:8]} {self.plan_name or '?'} station={self.station} "
            f"sample={self.sample_uid} {status}>"
        )

    @property
    def node(self) -> Any:
        """The underlying Tiled BlueskyRun client, for anything this class does not cover."""
        return self._node

    @property
    def succeeded(self) -> bool:
        return self.exit_status is ExitStatus.SUCCESS

    @property
    def num_events(self) -> dict[str, int]:
        """Events per stream, from the stop document (empty while the run is open)."""
        return (
            {} if self.stop is None else {k: int(v) for k, v in _as_dict(self.stop.get("num_events")).items()}
        )

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._node)

    def data_keys(self, stream: str = "primary") -> dict[str, dict[str, Any]]:
        """The stream's data keys (shape, dtype, source, units) from its descriptor."""
        return {k: _as_dict(v) for k, v in _as_dict(self._stream(stream).metadata.get("data_keys")).items()}

    def image_field(self, stream: str = "primary") -> str:
        """The name of the stream's one 2-D array field (`RunDataError` if none or several)."""
        images = [k for k, v in self.data_keys(stream).items() if len(v.get("shape") or ()) == 2]
        if len(images) != 1:
            found = ", ".join(images) or "none"
            raise RunDataError(
                f"run {self.uid}, stream {stream!r}: expected one 2-D image field, found {found}; "
                "pass field= to choose"
            )
        return images[0]

    def frames(self, stream: str = "primary", field: str | None = None) -> np.ndarray:
        """All frames of the stream as one array (n_frames, rows, columns)."""
        name = field or self.image_field(stream)
        data = self.read(name, stream)
        if data.ndim != 3:
            raise RunDataError(
                f"run {self.uid}: field {name!r} of {stream!r} holds {data.ndim - 1}-D data, not frames"
            )
        return data

    def read(self, field: str, stream: str = "primary") -> np.ndarray:
        """One field of a stream, one row per event (`RunDataError` if there is no such field)."""
        node = self._stream(stream)
        if field not in node:
            known = ", ".join(sorted(node)) or "none"
            raise RunDataError(f"run {self.uid}, stream {stream!r} has no field {field!r}; fields: {known}")
        return np.asarray(node[field].read())

    def _stream(self, stream: str) -> Any:
        if stream not in self._node:
            raise RunDataError(
                f"run {self.uid} has no stream {stream!r}; streams: {', '.join(self.streams) or 'none'}"
            )
        return self._node[stream]

    def _str(self, key: str) -> str | None:
        value = self.start.get(key)
        return None if value is None else str(value)


class Catalog:
    """Raw runs in a Tiled catalog, found by what they measured.

    >>> catalog = Catalog.connect(endpoint)  # doctest: +SKIP
    >>> for run in catalog.runs(campaign_id="c-1", station="saxs"):  # doctest: +SKIP
    ...     frames = run.frames()
    """

    def __init__(self, client: Container) -> None:
        self._client = client
        self._raw = raw_runs_node(client)

    @classmethod
    def connect(cls, endpoint: TiledEndpoint) -> Catalog:
        return cls(endpoint.connect())

    @property
    def client(self) -> Container:
        """The Tiled client on the root of the catalog."""
        return self._client

    def __repr__(self) -> str:
        return f"<Catalog {self._raw.uri}>"

    def run(self, uid: str) -> RawRun:
        """The run with this uid (`RunNotFoundError` if there is none)."""
        node = self._lookup(uid)
        if node is None:
            raise RunNotFoundError(f"no run {uid!r} in the catalog")
        return RawRun(node)

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, str) and self._lookup(uid) is not None

    def _lookup(self, uid: str) -> Any:
        if not uid:
            return None
        try:
            node = self._raw[uid]
        except KeyError:
            return None
        # the Bluesky client also resolves partial uids; we answer exact ones only
        return node if node.metadata.get("start", {}).get("uid") == uid else None

    def runs(
        self,
        *,
        sample_uid: str | None = None,
        campaign_id: str | None = None,
        decision_uid: str | None = None,
        station: str | None = None,
        plan_name: str | None = None,
        exit_status: ExitStatus | str | None = None,
        started_after: float | None = None,
        newest_first: bool = True,
        limit: int | None = None,
    ) -> list[RawRun]:
        """Runs matching every given criterion, newest first (or oldest first), at most `limit`.

        `started_after` (seconds since the epoch, exclusive) lets a follower ask only
        for runs newer than the last one it handled.
        """
        return list(
            self.iter_runs(
                sample_uid=sample_uid,
                campaign_id=campaign_id,
                decision_uid=decision_uid,
                station=station,
                plan_name=plan_name,
                exit_status=exit_status,
                started_after=started_after,
                newest_first=newest_first,
                limit=limit,
            )
        )

    def iter_runs(
        self, *, newest_first: bool = True, limit: int | None = None, **criteria: Any
    ) -> Iterator[RawRun]:
        """Like `runs`, but fetched page by page as the caller iterates (for large catalogs)."""
        if limit is not None and limit < 0:
            raise InvalidRunQueryError(f"limit must be a number of runs >= 0, got {limit}")
        node = self._search(**criteria).sort(("start.time", -1 if newest_first else 1))
        values: Iterator[Any] = iter(node.values())
        for item in values if limit is None else islice(values, limit):
            yield RawRun(item)

    def close_interrupted(self, run: RawRun, reason: str) -> RawRun:
        """Close a run whose process died mid-run: a stop document with exit status `abort` and `reason`.

        bluesky never wrote one (the process was killed), so the run would otherwise stay open
        forever and every reader would wait for it. The stop document is marked as written by
        tandem, not by a RunEngine. A run that is closed already is returned unchanged.
        """
        if run.is_closed:
            return run
        stop = {
            "uid": str(uuid.uuid4()),
            "run_start": run.uid,
            "time": time.time(),
            "exit_status": ExitStatus.ABORT.value,
            "reason": reason,
            "num_events": {},
            "closed_by": "tandem: the run's process stopped before it ended",
        }
        run.node.update_metadata(metadata={"stop": stop}, drop_revision=True)
        return self.run(run.uid)

    def count(self, **criteria: Any) -> int:
        """How many runs match (same criteria as `runs`)."""
        return len(self._search(**criteria))

    def distinct(self, key: str) -> list[Any]:
        """The distinct values of a start-document key over all runs (for example `campaign_id`)."""
        answer = self._raw.distinct(f"start.{key}")
        return [entry["value"] for entry in answer["metadata"].get(f"start.{key}", [])]

    def wait_for_run(self, uid: str, *, timeout_s: float = 30.0, poll_interval_s: float = 0.05) -> RawRun:
        """The run once it is in the catalog and closed (its stop document written).

        For a process that learns a run's uid from elsewhere (a queue server, a
        document stream) and must not read it before the writer has finished.
        """
        if timeout_s < 0 or poll_interval_s <= 0:
            raise InvalidRunQueryError("timeout_s must be >= 0 and poll_interval_s > 0 (seconds)")
        deadline = time.monotonic() + timeout_s
        while True:
            node = self._lookup(uid)
            if node is not None:
                run = RawRun(node)
                if run.is_closed:
                    return run
                state = "is still open"
            else:
                state = "has not appeared"
            if time.monotonic() >= deadline:
                raise RunNotReadyError(f"run {uid!r} {state} after {timeout_s:g} s")
            time.sleep(poll_interval_s)

    def _search(self, **criteria: Any) -> Container:
        node = self._raw
        exit_status = criteria.pop("exit_status", None)
        started_after = criteria.pop("started_after", None)
        unknown = sorted(set(criteria) - set(SEARCHABLE_KEYS))
        if unknown:
            raise InvalidRunQueryError(
                f"cannot search runs by {', '.join(unknown)}; "
                f"searchable: {', '.join(SEARCHABLE_KEYS)}, exit_status, started_after"
            )
        if started_after is not None:
            if isinstance(started_after, bool) or not isinstance(started_after, int | float):
                raise InvalidRunQueryError(
                    f"started_after must be a time in seconds since the epoch, got {started_after!r}"
                )
            node = node.search(Key("start.time") > float(started_after))
        for key, value in criteria.items():
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise InvalidRunQueryError(f"{key} must be a non-empty string, got {value!r}")
            node = node.search(Key(f"start.{key}") == value)
        if exit_status is not None:
            try:
                status = ExitStatus(exit_status)
            except ValueError:
                valid = ", ".join(s.value for s in ExitStatus)
                raise InvalidRunQueryError(f"unknown exit status {exit_status!r}; valid: {valid}") from None
            node = node.search(Key("stop.exit_status") == status.value)
        return node
