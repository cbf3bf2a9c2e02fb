"""The layout of the Tiled catalog, in one place: every container tandem writes, and how it is made.

Layout of the catalog (the root of the server); ``spec`` is the ``"spec"`` key of a node's
metadata, by which tandem marks its nodes (the raw runs carry Tiled's own spec instead)::

    path                                   spec                    holds (written by)
    raw/                                   Tiled spec CatalogOf-   Bluesky runs (bluesky_tiled_plugins
                                           BlueskyRuns 3.0         TiledWriter, tandem.run_writer)
      <run uid>/                           (BlueskyRun)            start/stop documents; a node per stream
    analysed/                              tandem-analysed         analysed results (tandem.analysis.store)
      <run uid>/                           -                       links, features, fits, label; arrays
                                                                   q_inv_a, intensity_per_cm, sigma_per_cm,
                                                                   dq_inv_a
    campaigns/                             tandem-campaigns        one node per campaign
      <campaign id>/                       tandem-campaign         the campaign file, created, tandem version
        samples/                           tandem-samples          the ledger (tandem.campaign.ledger)
          <sample uid>                     -                       one sample, from decision to result
        decisions/                         tandem-decisions        decision records (tandem.agents.records)
          <decision uid>                   tandem-decision         why the agent suggested what it did
        phases/                            tandem-phases           phase events; metadata: their state
          <seq, 6 digits>                  -                       one merge, split or move
        queue/                             tandem-queue-journal    the agent daemon's journal
          <decision uid>                   tandem-queued-decision  one decision, from suggestion to result
        daemon                             tandem-agent-daemon     the daemon's heartbeat
        control                            tandem-agent-control    a scientist's pause and verdicts

`LAYOUT` says the same for code (the tests hold the writers to it). The containers are made
with `child_container`, which is safe when several processes make the same one at once (a
campaign runner, its analysis workers and an agent daemon share one catalog); the records in
them with `create_or_replace_metadata`, `create_afresh` or `create_if_absent`, by what a second
write of the same key should do. `TiledContainer` types a Tiled client on a container: Tiled
0.2.20 ships no type information (no ``py.typed``), so its own ``Container`` is ``Any`` to mypy.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx
import numpy as np

from tandem import __version__

if TYPE_CHECKING:
    from typing import TypeAlias

    from tiled.structures.core import Spec

    #: Tiled specs of a new node: names, or `Spec`s with a version
    Specs: TypeAlias = Sequence[str | Spec]

__all__ = [
    "ANALYSED",
    "ANALYSIS_CLAIMS",
    "CAMPAIGNS",
    "CAMPAIGN_SPEC",
    "CONTROL",
    "DECISIONS",
    "DECISION_SPEC",
    "HEARTBEAT",
    "JOURNAL",
    "LAYOUT",
    "PHASES",
    "QUEUED_DECISION_SPEC",
    "RAW",
    "SAMPLES",
    "Part",
    "TiledArray",
    "TiledContainer",
    "TiledNode",
    "TiledValues",
    "analysed_node",
    "analysis_claims_node",
    "campaign_container",
    "campaign_ids",
    "campaign_node",
    "child_container",
    "create_afresh",
    "create_if_absent",
    "create_or_replace_metadata",
    "find_campaign",
    "is_conflict",
    "raw_runs_node",
    "read_array",
]

# --- the names ---------------------------------------------------------------------------------

#: raw Bluesky runs, at the root of the catalog
RAW = "raw"
#: analysed results, one node per raw run (keyed by its uid), at the root
ANALYSED = "analysed"
#: analysis workers' claims on raw runs (`tandem.analysis.claims`), at the root
ANALYSIS_CLAIMS = "analysis_claims"
#: one node per campaign, at the root
CAMPAIGNS = "campaigns"
#: the parts of a campaign's node
SAMPLES = "samples"
DECISIONS = "decisions"
PHASES = "phases"
JOURNAL = "queue"
HEARTBEAT = "daemon"
CONTROL = "control"

CAMPAIGN_SPEC = "tandem-campaign"
#: a decision record (`tandem.agents.records`): in its metadata and as its Tiled spec
DECISION_SPEC = "tandem-decision"
#: an entry of the daemon's journal (`tandem.agents.journal`)
QUEUED_DECISION_SPEC = "tandem-queued-decision"
#: the Tiled spec of the raw container, by which Tiled serves its children as Bluesky runs
RAW_SPEC = ("CatalogOfBlueskyRuns", "3.0")

#: the "spec" each container is made with, by its name (at the root or in a campaign's node)
CONTAINER_SPECS: Mapping[str, str] = {
    ANALYSED: "tandem-analysed",
    ANALYSIS_CLAIMS: "tandem-analysis-claims",
    CAMPAIGNS: "tandem-campaigns",
    SAMPLES: "tandem-samples",
    DECISIONS: "tandem-decisions",
    PHASES: "tandem-phases",
    JOURNAL: "tandem-queue-journal",
    HEARTBEAT: "tandem-agent-daemon",
    CONTROL: "tandem-agent-control",
}
#: the containers of a campaign's node, in the order of the table above
CAMPAIGN_PARTS = (SAMPLES, DECISIONS, PHASES, JOURNAL, HEARTBEAT, CONTROL)


@dataclass(frozen=True)
class Part:
    """One node of the layout: its path (``<...>`` stands for any key), its spec, what it holds."""

    path: str
    spec: str | None
    holds: str


_CAMPAIGN = f"{CAMPAIGNS}/<campaign id>"
#: every node tandem writes (the raw runs' streams below `raw/<run uid>` are the TiledWriter's)
LAYOUT: tuple[Part, ...] = (
    Part(RAW, None, "Bluesky runs (Tiled spec CatalogOfBlueskyRuns 3.0)"),
    Part(f"{RAW}/<run uid>", None, "one Bluesky run"),
    Part(ANALYSED, CONTAINER_SPECS[ANALYSED], "analysed results, keyed by raw run uid"),
    Part(f"{ANALYSED}/<run uid>", None, "the analysed result of one raw run"),
    Part(ANALYSIS_CLAIMS, CONTAINER_SPECS[ANALYSIS_CLAIMS], "which analysis worker takes which run"),
    Part(f"{ANALYSIS_CLAIMS}/<run uid>.<attempt>", None, "one worker's claim on one run, with its lease"),
    Part(CAMPAIGNS, CONTAINER_SPECS[CAMPAIGNS], "one node per campaign"),
    Part(_CAMPAIGN, CAMPAIGN_SPEC, "the campaign file as it started"),
    Part(f"{_CAMPAIGN}/{SAMPLES}", CONTAINER_SPECS[SAMPLES], "the ledger"),
    Part(f"{_CAMPAIGN}/{SAMPLES}/<sample uid>", None, "one sample, from decision to result"),
    Part(f"{_CAMPAIGN}/{DECISIONS}", CONTAINER_SPECS[DECISIONS], "decision records"),
    Part(f"{_CAMPAIGN}/{DECISIONS}/<decision uid>", DECISION_SPEC, "one decision record"),
    Part(f"{_CAMPAIGN}/{PHASES}", CONTAINER_SPECS[PHASES], "phase events and their state"),
    Part(f"{_CAMPAIGN}/{PHASES}/<seq>", None, "one phase event"),
    Part(f"{_CAMPAIGN}/{JOURNAL}", CONTAINER_SPECS[JOURNAL], "the agent daemon's journal"),
    Part(f"{_CAMPAIGN}/{JOURNAL}/<decision uid>", QUEUED_DECISION_SPEC, "one journal entry"),
    Part(f"{_CAMPAIGN}/{HEARTBEAT}", CONTAINER_SPECS[HEARTBEAT], "the daemon's heartbeat"),
    Part(f"{_CAMPAIGN}/{CONTROL}", CONTAINER_SPECS[CONTROL], "a scientist's pause and verdicts"),
)


# --- the client, typed -------------------------------------------------------------------------


class TiledNode(Protocol):
    """What tandem uses of any Tiled client node (a subset of `tiled.client.base.BaseClient`)."""

    @property
    def metadata(self) -> Mapping[str, Any]: ...
    @property
    def uri(self) -> str: ...
    def update_metadata(
        self,
        metadata: Mapping[str, Any] | None = None,
        specs: Specs | None = None,
        *,
        drop_revision: bool = False,
    ) -> None: ...
    def replace_metadata(
        self,
        metadata: Mapping[str, Any] | None = None,
        specs: Specs | None = None,
        drop_revision: bool = False,
    ) -> None: ...


class TiledArray(TiledNode, Protocol):
    """An array node (`tiled.client.array.ArrayClient`)."""

    def read(self, slice: Any = None) -> np.ndarray: ...


class TiledValues(Protocol):
    """A container's children in its order (`tiled.client.iterviews.ValuesView`): sliced, the server
    pages from the slice's start, so a reader can skip what it has read."""

    def __iter__(self) -> Iterator[TiledContainer]: ...
    def __getitem__(self, index: slice) -> Iterable[TiledContainer]: ...


class TiledContainer(TiledNode, Protocol):
    """A container node (`tiled.client.container.Container`, and the `BlueskyRun` built on it).

    A child is typed as a container; an array child is read with `read_array`.
    """

    def __contains__(self, key: object) -> bool: ...
    def __getitem__(self, key: str) -> TiledContainer: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...
    def keys(self) -> Iterable[str]: ...
    def values(self) -> TiledValues: ...
    def items(self) -> Iterable[tuple[str, TiledContainer]]: ...
    def search(self, query: Any) -> TiledContainer: ...
    def sort(self, *sorting: tuple[str, int]) -> TiledContainer: ...
    def distinct(self, *metadata_keys: str, counts: bool = False) -> dict[str, Any]: ...
    def create_container(
        self,
        key: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        specs: Specs | None = None,
    ) -> TiledContainer: ...
    def write_array(
        self, array: np.ndarray, *, key: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> TiledArray: ...
    def delete_contents(
        self, keys: str | Iterable[str] | None = None, recursive: bool = False, external_only: bool = True
    ) -> TiledContainer: ...


def read_array(parent: TiledContainer, key: str) -> np.ndarray:
    """The array child `key` of `parent`, read whole."""
    # Tiled hands back whichever client the child's structure needs; the caller knows it is an array
    return np.asarray(cast(TiledArray, parent[key]).read())


# --- making nodes: safe when several processes make the same one --------------------------------


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is Tiled refusing to create a key its parent holds already (HTTP 409)."""
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == httpx.codes.CONFLICT


def child_container(
    parent: TiledContainer,
    key: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    specs: Specs | None = None,
) -> TiledContainer:
    """The container `key` of `parent`, created with `metadata` and `specs` if it is not there.

    Another process may create it between our look and our create: the server then refuses
    ours (409) and theirs is the one. An existing container is returned as it is (its
    metadata is not compared).
    """
    try:
        return parent[key]  # looked up first: these containers exist nearly always (one request)
    except KeyError:
        pass
    try:
        return parent.create_container(key, metadata=dict(metadata or {}), specs=list(specs or ()))
    except httpx.HTTPStatusError as exc:
        if not is_conflict(exc):
            raise
    return parent[key]


def create_or_replace_metadata(
    parent: TiledContainer, key: str, metadata: Mapping[str, Any], *, specs: Specs | None = None
) -> TiledContainer:
    """The container `key` of `parent` holding `metadata`: created, or its metadata replaced if it exists.

    Its children, if any, are kept. For records written once and updated in place (ledger
    entries, phase events, journal entries): a write retried after an outage cannot fail on itself.
    """
    try:
        # created first: most of these records are new (asking first would cost a request each)
        return parent.create_container(key, metadata=dict(metadata), specs=list(specs or ()))
    except httpx.HTTPStatusError as exc:
        if not is_conflict(exc):
            raise
    node = parent[key]
    node.replace_metadata(metadata=dict(metadata))
    return node


def create_afresh(
    parent: TiledContainer, key: str, metadata: Mapping[str, Any], *, specs: Specs | None = None
) -> TiledContainer:
    """A new, empty container `key` of `parent`: one there already is deleted with all it holds first.

    For a node written whole in steps (an analysed result and its arrays), which a second
    writer must replace, never extend.
    """
    try:
        return parent.create_container(key, metadata=dict(metadata), specs=list(specs or ()))
    except httpx.HTTPStatusError as exc:
        if not is_conflict(exc):
            raise
    parent.delete_contents(key, recursive=True, external_only=False)
    return parent.create_container(key, metadata=dict(metadata), specs=list(specs or ()))


def create_if_absent(
    parent: TiledContainer, key: str, metadata: Mapping[str, Any], *, specs: Specs | None = None
) -> TiledContainer | None:
    """The container `key` of `parent`, created with `metadata`; None if it was there already (left alone).

    For records that never change once written (decision records): writing them again is a no-op.
    """
    try:
        return parent.create_container(key, metadata=dict(metadata), specs=list(specs or ()))
    except httpx.HTTPStatusError as exc:
        if not is_conflict(exc):
            raise
    return None


# --- the containers of the layout ---------------------------------------------------------------


def raw_runs_node(client: TiledContainer) -> TiledContainer:
    """The `raw` container of the catalog, created (with the Bluesky catalog spec) if missing."""
    from tiled.structures.core import Spec  # the server stack, only where a spec object is needed

    name, version = RAW_SPEC
    return child_container(client, RAW, specs=[Spec(name, version=version)])


def analysed_node(client: TiledContainer) -> TiledContainer:
    """The `analysed` container at the root of the catalog, created if missing."""
    return child_container(
        client,
        ANALYSED,
        metadata={"spec": CONTAINER_SPECS[ANALYSED], "description": "analysed results, keyed by raw run uid"},
    )


def analysis_claims_node(client: TiledContainer) -> TiledContainer:
    """The `analysis_claims` container at the root of the catalog, created if missing."""
    return child_container(
        client,
        ANALYSIS_CLAIMS,
        metadata={
            "spec": CONTAINER_SPECS[ANALYSIS_CLAIMS],
            "description": "analysis workers' claims on runs",
        },
    )


def campaign_ids(client: TiledContainer) -> list[str]:
    """The ids of the campaigns the catalog holds (none before the first)."""
    try:
        return list(client[CAMPAIGNS])
    except KeyError:
        return []


def find_campaign(client: TiledContainer, campaign_id: str) -> TiledContainer | None:
    """The node of campaign `campaign_id`, or None if the catalog does not hold it."""
    try:
        return client[CAMPAIGNS][campaign_id]
    except KeyError:
        return None


def campaign_node(
    client: TiledContainer, campaign_id: str, campaign_record: Mapping[str, Any] | None = None
) -> TiledContainer:
    """The node of campaign `campaign_id`, made with the campaign file `campaign_record` if it is new.

    The in-process runner's ledger and the agent daemon's journal share it: one home for a
    campaign whichever way it runs. An existing campaign's node is returned unchanged.
    """
    campaigns = child_container(client, CAMPAIGNS, metadata={"spec": CONTAINER_SPECS[CAMPAIGNS]})
    return child_container(
        campaigns,
        campaign_id,
        metadata={
            "spec": CAMPAIGN_SPEC,
            "campaign_id": campaign_id,
            "campaign": dict(campaign_record or {}),
            "created": time.time(),
            "tandem_version": __version__,
        },
    )


def campaign_container(campaign: TiledContainer, name: str) -> TiledContainer:
    """The container `name` (one of `CAMPAIGN_PARTS`) of a campaign's node, made if missing."""
    if name not in CAMPAIGN_PARTS:
        raise ValueError(f"a campaign's node holds no {name!r}; it holds {', '.join(CAMPAIGN_PARTS)}")
    return child_container(campaign, name, metadata={"spec": CONTAINER_SPECS[name]})
