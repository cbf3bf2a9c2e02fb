"""Who may write where in the catalog: tandem's roles, their Tiled scopes, the nodes each role writes.

Served with roles (`tandem data serve --roles`), the data store gives every process a key of its
own. Each key belongs to one Tiled service principal, and each principal to one Tiled role named
``tandem-<role>`` (kept in the server's authentication database, `tandem.tiled_role_policy`). The
role sets what the key can do at all (its Tiled scopes); the access policy then says where:

    role        writes (creates, updates; deletes: station, analysis) under   reads
    station     raw/                                                          everything
    analysis    analysed/, analysis_claims/                                   everything
    agent       campaigns/ but a campaign's control                           everything
    scientist   a campaign's control (pause, verdicts)                        everything
    admin       everything; issues and revokes keys                           everything

The agent's and the scientist's records (decisions, journal, ledger, verdicts) are the campaign's
audit trail: their keys create and update them, never delete them. The station deletes a run it
writes again whole (`tandem.replaying_writer`), the analysis a node it replaces.

Only the admin (the store's owner: the key `tandem data serve` keeps in its directory) makes the
top-level containers of the layout, service principals and keys. No other role holds a scope on
principals or keys, so a station's key cannot make an analysis key, nor one for itself.

This module is the plain statement of that table, shared by the server's policy and the clients;
it imports nothing of Tiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from tandem.catalog_layout import ANALYSED, ANALYSIS_CLAIMS, CAMPAIGNS, CONTROL, RAW
from tandem.errors import TandemError

__all__ = [
    "DELETE_SCOPES",
    "READ_SCOPES",
    "TILED_ADMIN_ROLE",
    "WRITE_SCOPES",
    "RoleError",
    "TandemRole",
    "WriteRefusedError",
    "may_write",
    "parse_role",
    "role_of_tiled_roles",
    "tiled_role_name",
    "tiled_role_scopes",
    "writable_by",
]

#: the prefix of tandem's roles among Tiled's (which has "user" and "admin" of its own)
TILED_ROLE_PREFIX = "tandem-"
#: Tiled's own administrator role: the store's owner, whose key issues the others
TILED_ADMIN_ROLE = "admin"

READ_SCOPES: frozenset[str] = frozenset({"read:metadata", "read:data"})
#: what a role may do on the nodes it owns: make, change and delete them (register: the station's
#: RunEngine may register a detector's external files with its run)
WRITE_SCOPES: frozenset[str] = frozenset(
    {"write:metadata", "write:data", "create:node", "delete:node", "delete:revision", "register"}
)
#: the scopes of `WRITE_SCOPES` that delete: only the roles that replace what they wrote hold them
DELETE_SCOPES: frozenset[str] = frozenset({"delete:node", "delete:revision"})


class TandemRole(StrEnum):
    """What a key is for: one per kind of process."""

    STATION = "station"
    ANALYSIS = "analysis"
    AGENT = "agent"
    SCIENTIST = "scientist"
    ADMIN = "admin"

    @property
    def writes(self) -> str:
        """Where this role writes, in words (for messages and `--help`)."""
        return _WRITES[self]


_WRITES: dict[TandemRole, str] = {
    TandemRole.STATION: f"{RAW}/",
    TandemRole.ANALYSIS: f"{ANALYSED}/ and {ANALYSIS_CLAIMS}/",
    TandemRole.AGENT: f"{CAMPAIGNS}/ (but a campaign's {CONTROL})",
    TandemRole.SCIENTIST: f"a campaign's {CONTROL} (pauses and verdicts)",
    TandemRole.ADMIN: "everything",
}


class RoleError(TandemError, ValueError):
    """A role name tandem does not know, or a role that cannot do what was asked."""


class WriteRefusedError(TandemError, PermissionError):
    """The data store refused a write (or a key's creation) to the key's role.

    Raised in place of Tiled's HTTP 401/403 by clients made with `TiledEndpoint.connect`; the
    store is unchanged.
    """


def parse_role(name: str) -> TandemRole:
    """The role called `name`; `RoleError` naming the roles there are, otherwise."""
    try:
        return TandemRole(name.strip().lower())
    except ValueError:
        raise RoleError(
            f"no role {name!r}; the roles are {', '.join(role.value for role in TandemRole)}"
        ) from None


def tiled_role_name(role: TandemRole) -> str:
    """The name of `role` among the Tiled roles of the authentication database."""
    return TILED_ADMIN_ROLE if role is TandemRole.ADMIN else f"{TILED_ROLE_PREFIX}{role.value}"


def tiled_role_scopes(role: TandemRole) -> frozenset[str]:
    """The Tiled scopes of `role`'s principal: the most any of its keys can hold, on any node.

    No role but the admin holds a scope on keys or principals (create:apikeys, admin:apikeys,
    write:principals): keys are issued by the store's owner only. The admin role is Tiled's own.
    """
    if role is TandemRole.ADMIN:
        raise RoleError("the admin role is Tiled's own 'admin' role; its scopes are Tiled's")
    if role in (TandemRole.STATION, TandemRole.ANALYSIS):
        return READ_SCOPES | WRITE_SCOPES
    return READ_SCOPES | (WRITE_SCOPES - DELETE_SCOPES)


def role_of_tiled_roles(names: Sequence[str]) -> TandemRole | None:
    """The tandem role of a principal with the Tiled roles `names` (None: no tandem role, read only)."""
    if TILED_ADMIN_ROLE in names:
        return TandemRole.ADMIN
    for name in names:
        if name.startswith(TILED_ROLE_PREFIX):
            try:
                return TandemRole(name[len(TILED_ROLE_PREFIX) :])
            except ValueError:
                continue
    return None


def may_write(role: TandemRole | None, path: Sequence[str]) -> bool:
    """Whether `role` may write the node at `path` (its keys from the root), or make nodes in it.

    The root itself is the admin's: the layout's top-level containers are made by the store's
    owner, so no role can make a top-level node of another's name before that one does.
    """
    if role is TandemRole.ADMIN:
        return True
    if role is None or not path:
        return False
    top = path[0]
    # campaigns/<id>/<part>/...: the part decides between the agent and a scientist
    part = path[2] if len(path) >= 3 else None
    rules = {
        TandemRole.STATION: top == RAW,
        TandemRole.ANALYSIS: top in (ANALYSED, ANALYSIS_CLAIMS),
        TandemRole.AGENT: top == CAMPAIGNS and part != CONTROL,
        TandemRole.SCIENTIST: top == CAMPAIGNS and part == CONTROL,
    }
    return rules[role]


def writable_by(path: Sequence[str]) -> list[TandemRole]:
    """The roles that may write at `path` (for the message of a refused write)."""
    return [role for role in TandemRole if may_write(role, path)]
