"""The Tiled server's side of tandem's roles: its access policy, its authenticator, its key database.

These run inside the embedded server's process (`tandem.tiled_process`), named by the server's
configuration (`tandem.tiled_directory`), when a directory is served with roles:

- `RolePolicy`, Tiled's access policy: everyone reads everything; a key writes only where its
  principal's role may (`tandem.tiled_roles.may_write`), and never more than its own scopes.
- `KeysOnlyAuthenticator`: Tiled's multi-user mode (principals, roles, scoped keys) needs an
  authentication provider; this one refuses every password, so keys are the only way in.
- `prepare_authentication_database`: before the server starts, the authentication database is
  made (Tiled's own tables and alembic stamp), tandem's roles are put in it, and the store
  owner's key is registered to an administrator service principal. The owner's key is the one
  kept in the directory (`api_key`), so `tandem data stop` and a restarted owner keep working.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from tiled.access_control.protocols import AccessPolicy, normalize_access_tags
from tiled.server.protocols import InternalAuthenticator, UserSessionState

from tandem.tiled_endpoint import TiledServerError
from tandem.tiled_roles import (
    READ_SCOPES,
    TILED_ADMIN_ROLE,
    WRITE_SCOPES,
    TandemRole,
    may_write,
    role_of_tiled_roles,
    tiled_role_name,
    tiled_role_scopes,
)

__all__ = [
    "OWNER_KEY_NOTE",
    "KeysOnlyAuthenticator",
    "RolePolicy",
    "prepare_authentication_database",
]

#: the note on the owner's key in the authentication database
OWNER_KEY_NOTE = "tandem: the store owner's key"


class KeysOnlyAuthenticator(InternalAuthenticator):
    """Tiled's authentication provider for a store served with roles: no one logs in with a password.

    Tiled runs principals, roles and scoped API keys only when some provider is configured; every
    tandem process presents a key, so this provider accepts no username and password at all.
    """

    def __init__(self, confirmation_message: str = "") -> None:
        self.confirmation_message = confirmation_message

    async def authenticate(self, username: str, password: str) -> UserSessionState | None:
        return None


def _principal_role(principal: Any) -> TandemRole | None:
    if principal is None:
        return None
    return role_of_tiled_roles([str(role.name) for role in getattr(principal, "roles", None) or ()])


async def _node_path(node: Any) -> list[str] | None:
    """The keys from the root to `node` (a catalog adapter), or None for a node outside the catalog."""
    path_segments = getattr(node, "path_segments", None)
    if path_segments is None:
        return None
    # one query each time: node ids are the catalog's and may be reused after a deletion, so a
    # cache keyed on them could hand a new node the permissions of an old one
    return [str(key) for key in await path_segments()]


class RolePolicy(AccessPolicy):
    """Tiled's access policy for a store served with roles (the table in `tandem.tiled_roles`)."""

    def __init__(self) -> None:
        pass

    async def init_node(
        self,
        principal: Any,
        authn_access_tags: Any,
        authn_scopes: Any,
        access_tags: Any = None,
    ) -> tuple[bool, Any]:
        # Where a node may be made is decided by its parent's scopes (`allowed_scopes`); the node
        # carries no access tags of its own.
        return (False, normalize_access_tags())

    async def allowed_scopes(
        self,
        node: Any,
        principal: Any,
        authn_access_tags: Any,
        authn_scopes: Any,
    ) -> set[str]:
        held = {str(scope) for scope in authn_scopes or ()}
        role = _principal_role(principal)
        if role is TandemRole.ADMIN:
            return held
        allowed = held & READ_SCOPES
        path = await _node_path(node)
        if path is not None and may_write(role, path):
            allowed |= held & WRITE_SCOPES
        return allowed

    async def filters(
        self,
        node: Any,
        principal: Any,
        authn_access_tags: Any,
        authn_scopes: Any,
        scopes: Any,
    ) -> list[Any]:
        return []  # every role reads every node: no node is hidden from a search


# --- the authentication database, before the server starts ---------------------------------------


def prepare_authentication_database(uri: str, owner_key: str) -> None:
    """Make Tiled's authentication database at `uri` ready, with tandem's roles and the owner's key.

    Idempotent: run at every start. A role whose scopes changed in tandem is brought up to date;
    the owner's key is registered once (a key kept from an earlier start is found again).
    """
    from tiled.alembic_utils import UninitializedDatabase, check_database, stamp_head
    from tiled.authn_database.alembic_constants import ALEMBIC_DIR, ALEMBIC_INI_TEMPLATE_PATH
    from tiled.authn_database.core import ALL_REVISIONS, REQUIRED_REVISION, initialize_database
    from tiled.utils import ensure_specified_sql_driver

    try:
        secret = bytes.fromhex(owner_key)
    except ValueError:
        raise TiledServerError(
            "a store served with roles needs a hexadecimal owner key (Tiled's multi-user keys are "
            "hex); remove the directory's api_key file to have one generated"
        ) from None
    uri = ensure_specified_sql_driver(uri)

    async def initialise() -> bool:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(uri)
        try:
            await check_database(engine, REQUIRED_REVISION, ALL_REVISIONS)
            new = False
        except UninitializedDatabase:
            await initialize_database(engine)
            new = True
        await _ensure_roles_and_owner(engine, secret)
        await engine.dispose()
        return new

    if asyncio.run(initialise()):
        stamp_head(ALEMBIC_INI_TEMPLATE_PATH, ALEMBIC_DIR, uri)


async def _ensure_roles_and_owner(engine: Any, secret: bytes) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.future import select
    from tiled.authn_database import orm
    from tiled.authn_database.core import create_service, lookup_valid_api_key

    async with AsyncSession(engine, expire_on_commit=False) as db:
        existing = {role.name: role for role in (await db.execute(select(orm.Role))).scalars()}
        for role in TandemRole:
            if role is TandemRole.ADMIN:
                continue
            name, scopes = tiled_role_name(role), sorted(tiled_role_scopes(role))
            if name not in existing:
                db.add(orm.Role(name=name, description=f"tandem: writes {role.writes}", scopes=scopes))
            elif sorted(existing[name].scopes) != scopes:
                existing[name].scopes = scopes
        await db.commit()
        if await lookup_valid_api_key(db, secret) is not None:
            return
        owner = await create_service(db, TILED_ADMIN_ROLE)
        db.add(
            orm.APIKey(
                principal_id=owner.id,
                expiration_time=None,
                note=OWNER_KEY_NOTE,
                scopes=["inherit"],
                access_tags=None,
                # as Tiled stores a key: the first eight hex digits and the secret's SHA-256
                first_eight=secret.hex()[:8],
                hashed_secret=hashlib.sha256(secret).digest(),
            )
        )
        await db.commit()
