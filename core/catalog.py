"""The catalog: raw runs in Tiled, found again by what they measured and read back.

Runs are written by `bluesky_tiled_plugins.TiledWriter` (`subscribe_tiled_writer`, in
`tandem.run_writer`) into the `raw` container (`tandem.catalog_layout`) and read back
through `Catalog`, which finds them by the keys the station plans put in the start
document (`sample_uid`, `campaign_id`, `decision_uid`, `station`, and `plan_name`) or by
exit status, and returns `RawRun`s: metadata (`tandem.run_documents`), frames as numpy,
geometry and scan parameters. The read layer knows nothing about any station's devices:
the frames are the stream's 2-D array field, whatever its name.

The layout, the writer, the run documents and the document queue have modules of their own
(`catalog_layout`, `run_writer`, `run_documents`, `document_queue`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
from tiled.queries import Key

from tandem.catalog_layout import TiledContainer, raw_runs_node, read_array
from tandem.errors import TandemError
from tandem.run_documents import ExitStatus, RunDataError, RunDocuments, as_dict

if TYPE_CHECKING:
    from tandem.tiled_endpoint import TiledEndpoint

__all__ = [
    "Catalog",
    "InvalidRunQueryError",
    "RawRun",
    "RunNotFoundError",
    "RunNotReadyError",
]

#: start-document keys a run can be searched by
SEARCHABLE_KEYS = ("sample_uid", "campaign_id", "decision_uid", "station", "plan_name")


class RunNotFoundError(TandemError, KeyError):
    """No run with that uid is in the catalog."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


class RunNotReadyError(TandemError, TimeoutError):
    """A run did not appear, or did not close, within the time allowed."""


class InvalidRunQueryError(TandemError, ValueError):
    """A search that cannot be run (a bad limit, an empty value)."""


class RawRun(RunDocuments):
    """One Bluesky run read back from Tiled."""

    def __init__(self, node: TiledContainer) -> None:
        # `node` is a BlueskyRun client (bluesky_tiled_plugins), a Tiled container of one node per stream
        self._node = node
        metadata = node.metadata
        self.start = as_dict(metadata.get("start"))
        self.stop = as_dict(metadata["stop"]) if metadata.get("stop") is not None else None

    def __repr__(self) -> str:
        status = self.exit_status.value if self.exit_status else "open"
        return (
            f"<RawRun {self.uid[:8]} {self.plan_name or '?'} station={self.station} "
            f"sample={self.sample_uid} {status}>"
        )

    @property
    def node(self) -> TiledContainer:
        """The underlying Tiled BlueskyRun client, for anything this class does not cover."""
        return self._node

    @property
    def succeeded(self) -> bool:
        return self.exit_status is ExitStatus.SUCCESS

    @property
    def num_events(self) -> dict[str, int]:
        """Events per stream, from the stop document (empty while the run is open)."""
        return (
            {} if self.stop is None else {k: int(v) for k, v in as_dict(self.stop.get("num_events")).items()}
        )

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._node)

    def data_keys(self, stream: str = "primary") -> dict[str, dict[str, Any]]:
        """The stream's data keys (shape, dtype, source, units) from its descriptor."""
        return {k: as_dict(v) for k, v in as_dict(self._stream(stream).metadata.get("data_keys")).items()}

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
        return read_array(node, field)

    def _stream(self, stream: str) -> TiledContainer:
        if stream not in self._node:
            raise RunDataError(
                f"run {self.uid} has no stream {stream!r}; streams: {', '.join(self.streams) or 'none'}"
            )
        return self._node[stream]


class Catalog:
    """Raw runs in a Tiled catalog, found by what they measured.

    >>> catalog = Catalog.connect(endpoint)  # doctest: +SKIP
    >>> for run in catalog.runs(campaign_id="c-1", station="saxs"):  # doctest: +SKIP
    ...     frames = run.frames()
    """

    def __init__(self, client: TiledContainer) -> None:
        self._client = client
        self._raw = raw_runs_node(client)

    @classmethod
    def connect(cls, endpoint: TiledEndpoint) -> Catalog:
        return cls(endpoint.connect())

    @property
    def client(self) -> TiledContainer:
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

    def _lookup(self, uid: str) -> TiledContainer | None:
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
        values: Iterator[TiledContainer] = iter(node.values())
        for item in values if limit is None else islice(values, limit):
            yield RawRun(item)

    def made_since(self, count: int) -> Iterator[RawRun]:
        """The runs in the order they were made (the raw container's own order), from the
        `count`-th on: a follower that has read `count` runs reads only the ones made since,
        however long the campaign (a search sorted by start time would read them all again)."""
        if count < 0:
            raise InvalidRunQueryError(f"count must be a number of runs >= 0, got {count}")
        for item in self._raw.values()[count:]:
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

    def _search(self, **criteria: Any) -> TiledContainer:
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
