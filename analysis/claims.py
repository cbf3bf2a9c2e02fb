"""Which analysis worker takes which run: claims in Tiled, so several workers share one stream.

Several `tandem analyze --follow` workers, on one host or several, see the same pending runs.
Before analysing one a worker *claims* it by creating a node in Tiled::

    analysis_claims/<raw run uid>.<attempt>   metadata: run uid, attempt, worker, claimed_at,
                                              expires_at (seconds since the epoch)

Creating a key its parent already holds is refused by the server (409), so of two workers that
claim the same attempt one wins and the other goes on to the next run: no run is analysed by two
workers at once. A worker renews its claim while it works (`held`); a worker that dies stops
renewing, its claim expires, and the next worker to find the run pending claims the next attempt;
a worker on the same host as a dead one sees at once that its process is gone (the claim names
host and pid), and takes its run over without waiting for the lease.
The analysed node's `complete` flag, not the claim, says a run is done (`tandem.analysis.store`),
so a worker killed half-way leaves a run that is analysed again, once, by whoever claims it next.

Expiry compares wall clocks of different hosts: the lease is long (two minutes by default) next
to the clock skew of hosts kept by NTP, and next to the time a worker needs between renewals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tiled.queries import Key

from tandem.catalog_layout import TiledContainer, analysis_claims_node, is_conflict
from tandem.child_processes import pid_alive
from tandem.errors import TandemError

logger = logging.getLogger(__name__)

#: how long a claim holds without renewal (seconds)
DEFAULT_LEASE_S = 120.0


class InvalidClaimSettingsError(TandemError, ValueError):
    """A lease that cannot work (not a positive number of seconds)."""


@dataclass(frozen=True)
class Claim:
    """One worker's claim on one run (one attempt at analysing it)."""

    run_uid: str
    attempt: int
    worker: str
    claimed_at: float
    expires_at: float
    #: where the claiming worker runs, so that a worker on the same host can tell it died
    host: str = ""
    pid: int = 0

    @property
    def key(self) -> str:
        return f"{self.run_uid}.{self.attempt}"

    def to_metadata(self) -> dict[str, object]:
        return {
            "run_uid": self.run_uid,
            "attempt": self.attempt,
            "worker": self.worker,
            "claimed_at": self.claimed_at,
            "expires_at": self.expires_at,
            "host": self.host,
            "pid": self.pid,
        }

    def lapsed(self, now: float) -> bool:
        """Whether the claim no longer holds: its lease ran out, or its worker died on this host."""
        if self.expires_at <= now:
            return True
        return self.host == socket.gethostname() and self.pid > 0 and not pid_alive(self.pid)


def worker_name() -> str:
    """A name for this worker that says where it runs: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class RunClaims:
    """Claims on raw runs in one Tiled catalog, made by one worker."""

    def __init__(
        self,
        client: TiledContainer,
        *,
        worker: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(lease_s, int | float) and lease_s > 0):
            raise InvalidClaimSettingsError(
                f"a claim's lease must be a positive number of seconds, got {lease_s!r}"
            )
        self.client = client
        self.worker = worker or worker_name()
        self.lease_s = float(lease_s)
        self.clock = clock
        self._node: TiledContainer | None = None

    @property
    def node(self) -> TiledContainer:
        if self._node is None:
            self._node = analysis_claims_node(self.client)
        return self._node

    def latest(self, run_uid: str) -> Claim | None:
        """The latest claim on `run_uid`, whoever made it."""
        claims = [
            _claim(dict(node.metadata)) for node in self.node.search(Key("run_uid") == run_uid).values()
        ]
        return max(claims, key=lambda c: c.attempt, default=None)

    def claim(self, run_uid: str) -> Claim | None:
        """Claim `run_uid` for this worker; None if another worker holds it (or won the race)."""
        latest = self.latest(run_uid)
        now = self.clock()
        if latest is not None and not latest.lapsed(now):
            return None
        attempt = 0 if latest is None else latest.attempt + 1
        if latest is not None:
            logger.info(
                "run %s: the claim of %s lapsed (its lease or its process ended); taking it over",
                run_uid,
                latest.worker,
            )
        claim = Claim(
            run_uid, attempt, self.worker, now, now + self.lease_s, socket.gethostname(), os.getpid()
        )
        try:
            self.node.create_container(claim.key, metadata=claim.to_metadata())
        except Exception as exc:
            if is_conflict(exc):
                return None  # another worker claimed this attempt first
            raise
        return claim

    def renew(self, claim: Claim) -> Claim:
        """The claim with its lease extended from now."""
        renewed = Claim(
            claim.run_uid, claim.attempt, claim.worker, claim.claimed_at, self.clock() + self.lease_s
        )
        self.node[claim.key].replace_metadata(metadata=renewed.to_metadata())
        return renewed

    @contextlib.contextmanager
    def held(self, claim: Claim) -> Iterator[Claim]:
        """Keep `claim` renewed (every third of its lease) while the block runs."""
        stop = threading.Event()

        def renew() -> None:
            current = claim
            while not stop.wait(self.lease_s / 3):
                try:
                    current = self.renew(current)
                except Exception:  # the store may be away for a moment; the next renewal tries again
                    logger.warning("could not renew the claim on run %s", claim.run_uid, exc_info=True)

        thread = threading.Thread(target=renew, name=f"claim-{claim.run_uid[:8]}", daemon=True)
        thread.start()
        try:
            yield claim
        finally:
            stop.set()
            thread.join()


def _claim(metadata: dict[str, object]) -> Claim:
    return Claim(
        run_uid=str(metadata["run_uid"]),
        attempt=int(str(metadata["attempt"])),
        worker=str(metadata["worker"]),
        claimed_at=float(str(metadata["claimed_at"])),
        expires_at=float(str(metadata["expires_at"])),
        host=str(metadata.get("host", "")),
        pid=int(str(metadata.get("pid", 0))),
    )


__all__ = ["DEFAULT_LEASE_S", "Claim", "InvalidClaimSettingsError", "RunClaims", "worker_name"]
