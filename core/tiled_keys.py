"""The clients' side of tandem's roles: issuing each role its key, keeping it, and asking whose a key is.

A store served with roles (`tandem data serve --roles`) is owned by the key in its directory
(`api_key`, Tiled's administrator). With that key `issue_key` makes one Tiled service principal per
role (in the Tiled role ``tandem-<role>``) and an API key for it, limited to the role's scopes;
`write_role_key` keeps it in ``<directory>/keys/<role>``, readable by its user only, from where it
is handed to the process of that role (`TANDEM_TILED_API_KEY`). `key_identity` asks the server
whose a client's key is: the approval gate (`tandem.agents.journal`) records and checks it.

`prepare_layout` makes the top-level containers of the catalog with the owner's key: no role may
make nodes at the root (`tandem.tiled_roles.may_write`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.catalog_layout import (
    CAMPAIGNS,
    CONTAINER_SPECS,
    TiledContainer,
    analysed_node,
    analysis_claims_node,
    child_container,
    raw_runs_node,
)
from tandem.tiled_directory import KEYS_DIR
from tandem.tiled_endpoint import validate_api_key
from tandem.tiled_roles import (
    RoleError,
    TandemRole,
    role_of_tiled_roles,
    tiled_role_name,
    tiled_role_scopes,
)

__all__ = [
    "IssuedKey",
    "KeyIdentity",
    "issue_key",
    "key_identity",
    "prepare_layout",
    "read_role_key",
    "revoke_keys",
    "role_key_path",
    "write_role_key",
]


@dataclass(frozen=True)
class KeyIdentity:
    """Whose a key is: its Tiled principal and the tandem role of that principal."""

    #: the Tiled principal's uuid
    principal: str
    #: "service" (a key issued by tandem) or "user"
    kind: str
    #: the tandem role (None: a principal of no tandem role, which reads only)
    role: TandemRole | None

    def describe(self) -> str:
        role = self.role.value if self.role is not None else "no tandem role"
        return f"{self.kind} principal {self.principal} ({role})"


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued to a role (its secret is shown once: Tiled keeps only its hash)."""

    role: TandemRole
    principal: str
    secret: str
    scopes: tuple[str, ...]
    #: when the server stops taking the key (ISO 8601, UTC, as Tiled gives it); None: never
    expires_at: str | None = None

    @property
    def first_eight(self) -> str:
        """How Tiled names the key (to revoke it: `tiled admin api_key revoke`)."""
        return self.secret[:8]


def key_identity(client: TiledContainer) -> KeyIdentity | None:
    """Whose key `client` presents; None for a store served without roles (one key, no principals)."""
    context = getattr(client, "context", None)
    if context is None or not context.server_info.authentication.links:
        return None
    whoami: Mapping[str, Any] = context.whoami()
    names = [str(role["name"]) for role in whoami.get("roles") or ()]
    return KeyIdentity(
        principal=str(whoami["uuid"]), kind=str(whoami["type"]), role=role_of_tiled_roles(names)
    )


def _role_principal(admin: Any, role: TandemRole) -> str | None:
    """The uuid of the service principal of `role`, if one was made."""
    wanted = tiled_role_name(role)
    offset, page = 0, 100
    while True:
        principals = admin.list_principals(offset=offset, limit=page)
        for principal in principals:
            names = [str(r["name"]) for r in principal.get("roles") or ()]
            if principal.get("type") == "service" and wanted in names:
                return str(principal["uuid"])
        if len(principals) < page:
            return None
        offset += page


def issue_key(
    owner: TiledContainer, role: TandemRole, *, note: str = "", expires_in_s: int | None = None
) -> IssuedKey:
    """A new API key for `role`, made with the owner's client `owner`; with `expires_in_s`, one the
    server refuses from that many seconds on.

    The role's service principal is made the first time; later keys of a role belong to the same
    principal (so the approval records name one principal per role). The key holds the role's
    scopes, no more: none of them makes or revokes keys.
    """
    if role is TandemRole.ADMIN:
        raise RoleError(
            "the admin's key is the store owner's (the api_key file of the served directory); "
            "issue keys for station, analysis, agent or scientist"
        )
    if expires_in_s is not None and expires_in_s <= 0:
        raise RoleError(f"a key's lifetime must be a positive number of seconds, got {expires_in_s}")
    admin = getattr(owner, "context").admin  # noqa: B009 -- TiledContainer types only what the layout uses
    principal = _role_principal(admin, role)
    if principal is None:
        principal = str(admin.create_service_principal(tiled_role_name(role))["uuid"])
    scopes = sorted(tiled_role_scopes(role))
    made = admin.create_api_key(
        principal, scopes=scopes, note=note or f"tandem {role.value} key", expires_in=expires_in_s
    )
    expires = made.get("expiration_time")
    return IssuedKey(
        role=role,
        principal=principal,
        secret=str(made["secret"]),
        scopes=tuple(scopes),
        expires_at=None if expires is None else str(expires),
    )


def revoke_keys(owner: TiledContainer, role: TandemRole, first_eight: str | None = None) -> list[str]:
    """Revoke `role`'s key that begins `first_eight` (all its keys if None); the revoked keys' first eight.

    A revoked key is refused from its next request on. `RoleError` if the role has no such key.
    """
    if role is TandemRole.ADMIN:
        raise RoleError("the owner's key is not revoked here: it is the served directory's api_key")
    admin = getattr(owner, "context").admin  # noqa: B009 -- TiledContainer types only what the layout uses
    principal = _role_principal(admin, role)
    held = (
        []
        if principal is None
        else [str(k["first_eight"]) for k in admin.show_principal(principal)["api_keys"]]
    )
    wanted = held if first_eight is None else [k for k in held if k == first_eight[:8]]
    if not wanted:
        raise RoleError(
            f"the {role.value} role has no key"
            + ("" if first_eight is None else f" beginning {first_eight[:8]}")
            + (f"; its keys begin {', '.join(held)}" if held else "")
        )
    for key in wanted:
        admin.revoke_api_key(principal, key)
    return wanted


def role_key_path(directory: str | os.PathLike[str], role: TandemRole) -> Path:
    """Where the key of `role` is kept in a served directory."""
    return Path(directory) / KEYS_DIR / role.value


def write_role_key(directory: str | os.PathLike[str], key: IssuedKey) -> Path:
    """Keep `key` in ``<directory>/keys/<role>``, readable by its user only; the file's path.

    The folder is made private (0700) and the file is created 0600 before the key is written
    into it, as the owner's `api_key` is: the key is never readable by others, not for an instant.
    """
    path = role_key_path(directory, key.role)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a file kept from before may have had looser permissions
        handle.write(key.secret + "\n")
    return path


def read_role_key(directory: str | os.PathLike[str], role: TandemRole) -> str | None:
    """The key of `role` kept in `directory`, if one was issued."""
    path = role_key_path(directory, role)
    if not path.exists():
        return None
    return validate_api_key(path.read_text().strip())


def prepare_layout(owner: TiledContainer) -> None:
    """Make the catalog's top-level containers (the owner's job under roles: the root is the admin's)."""
    raw_runs_node(owner)
    analysed_node(owner)
    analysis_claims_node(owner)
    child_container(owner, CAMPAIGNS, metadata={"spec": CONTAINER_SPECS[CAMPAIGNS]})
