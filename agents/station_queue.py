"""A station's queue as the agent daemon sees it, and the bluesky-queueserver that is one.

The daemon needs little of a queue: a snapshot (the items queued, the one running, the
history with each item's exit status and runs) and a way to add a plan call. `StationQueue`
is that seam; `QueueServerStation` implements it over a station's RE Manager. Every item
carries the decision and sample uids in its plan arguments, which is how the daemon finds
its samples in a queue or a history after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tandem.errors import TandemError


@dataclass(frozen=True)
class QueueItem:
    """An item of a station's queue or history, as far as the daemon cares."""

    item_uid: str
    decision_uid: str | None
    sample_uid: str | None
    #: history only: "completed", "failed", "stopped", "aborted", "halted", "unknown"
    exit_status: str | None = None
    message: str = ""
    run_uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueSnapshot:
    queued: tuple[QueueItem, ...]
    running: QueueItem | None
    history: tuple[QueueItem, ...]

    def pending_samples(self) -> set[str]:
        items = [*self.queued, *([self.running] if self.running else [])]
        return {i.sample_uid for i in items if i.sample_uid}

    def finished(self) -> dict[str, QueueItem]:
        """History items by sample uid (the last one, if a sample appears twice)."""
        return {i.sample_uid: i for i in self.history if i.sample_uid}


class StationQueue(Protocol):
    """A station's queue as the daemon uses it (bluesky-queueserver in production)."""

    station: str

    def snapshot(self) -> QueueSnapshot:
        """The queue, the running item and the history; raises if the station does not answer."""
        ...

    def add(self, plan: PlanRequest) -> str:
        """Queue `plan` at the back; return the item uid. Raises `ItemRefusedError` if refused."""
        ...


class ItemRefusedError(TandemError, ValueError):
    """The queue server refused an item (validation or permissions): it will never run."""


@dataclass(frozen=True)
class PlanRequest:
    """A plan call, ready for a queue: name, positional and keyword arguments (JSON only)."""

    name: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


# --- bluesky-queueserver ----------------------------------------------------------------------


class QueueServerStation:
    """A station's RE Manager, reached with `bluesky_queueserver_api.zmq.REManagerAPI`."""

    def __init__(
        self,
        station: str,
        control_addr: str,
        *,
        info_addr: str | None = None,
        user_group: str = "agent",
        user: str = "tandem agent daemon",
        timeout_s: float = 5.0,
    ) -> None:
        from bluesky_queueserver_api.zmq import REManagerAPI

        self.station = station
        self.control_addr = control_addr
        self._api = REManagerAPI(
            zmq_control_addr=control_addr, zmq_info_addr=info_addr, timeout_recv=timeout_s
        )
        self._api.user = user
        self._api.user_group = user_group

    def snapshot(self) -> QueueSnapshot:
        # queue before history, both fresh: an item moving on between the two calls is seen in one of them
        queue = self._api.queue_get(reload=True)
        history = self._api.history_get(reload=True)
        running = queue.get("running_item") or None
        return QueueSnapshot(
            queued=tuple(_item(i) for i in queue.get("items", [])),
            running=_item(running) if running else None,
            history=tuple(_item(i) for i in history.get("items", [])),
        )

    def add(self, plan: PlanRequest) -> str:
        from bluesky_queueserver_api import BPlan
        from bluesky_queueserver_api.comm_base import RequestFailedError

        try:
            response = self._api.item_add(BPlan(plan.name, *plan.args, **dict(plan.kwargs)))
        except RequestFailedError as exc:
            raise ItemRefusedError(f"{self.station}: {exc}") from None
        return str(response["item"]["item_uid"])

    def close(self) -> None:
        self._api.close()


def _item(data: Mapping[str, Any]) -> QueueItem:
    kwargs = data.get("kwargs") or {}
    result = data.get("result") or {}
    return QueueItem(
        item_uid=str(data.get("item_uid", "")),
        decision_uid=kwargs.get("decision_uid"),
        sample_uid=kwargs.get("sample_uid"),
        exit_status=result.get("exit_status"),
        message=str(result.get("msg") or ""),
        run_uids=tuple(result.get("run_uids") or ()),
    )
