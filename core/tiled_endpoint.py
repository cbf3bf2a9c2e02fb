"""How to reach a Tiled server: its URI and API key, checked, and a client on it.

Everything a process needs to use a data store that runs already, whoever started it:
`TiledSettings` read from the environment (`TANDEM_TILED_URI`, `TANDEM_TILED_API_KEY`),
`TiledEndpoint` (the base URL and the key, with the health and key checks and a Tiled
client on the catalog), `attach` to a running server, and the errors of the data store.
`TiledEndpoint.environ()` produces the variables with which a child process attaches.

Starting and supervising a server of our own is `tandem.tiled_server`'s job.
"""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.errors import TandemError

if TYPE_CHECKING:
    from tiled.client.container import Container

__all__ = [
    "API_KEY_ENV",
    "URI_ENV",
    "InvalidTiledSettingsError",
    "TiledAuthenticationError",
    "TiledEndpoint",
    "TiledServerError",
    "TiledSettings",
    "attach",
    "generate_api_key",
    "validate_api_key",
]

URI_ENV = "TANDEM_TILED_URI"
API_KEY_ENV = "TANDEM_TILED_API_KEY"

API_PATH = "/api/v1"


class TiledServerError(TandemError, RuntimeError):
    """The Tiled server could not be started, reached or stopped."""


class TiledAuthenticationError(TiledServerError):
    """The server answers but refuses the API key."""


class InvalidTiledSettingsError(TandemError, ValueError):
    """Settings that no Tiled server could be started or reached with."""


def generate_api_key() -> str:
    """A fresh single-user API key: 64 hex digits (Tiled accepts only alphanumerics)."""
    return secrets.token_hex(32)


def validate_api_key(api_key: str) -> str:
    """`api_key` if Tiled would accept it, else `InvalidTiledSettingsError`."""
    if not api_key or not api_key.isascii() or not api_key.isalnum():
        raise InvalidTiledSettingsError(
            "a Tiled API key must be a non-empty string of ASCII letters and digits "
            "(for example the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return api_key


def _base_url(uri: str) -> str:
    """`http://host:port` from any spelling a user may paste (with /api/v1, a query, a slash)."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidTiledSettingsError(
            "a Tiled server URI must look like http://HOST:PORT "
            f"(optionally ending in {API_PATH}), got {uri!r}"
        )
    path = parts.path.rstrip("/")
    if path.endswith(API_PATH):
        path = path[: -len(API_PATH)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class TiledSettings(BaseSettings):
    """Where the data store is: a running server (`uri`, `api_key`) or a directory to serve.

    Read from `TANDEM_TILED_URI`, `TANDEM_TILED_API_KEY` and `TANDEM_TILED_DIRECTORY`
    by `TiledSettings()`; pass values to override the environment.
    """

    model_config = SettingsConfigDict(env_prefix="TANDEM_TILED_", frozen=True, extra="forbid")

    uri: str | None = None
    api_key: SecretStr | None = None
    directory: Path | None = None

    @field_validator("uri")
    @classmethod
    def _normalise_uri(cls, value: str | None) -> str | None:
        return None if value is None else _base_url(value)

    @field_validator("api_key")
    @classmethod
    def _valid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            validate_api_key(value.get_secret_value())
        return value


@functools.cache
def _http_client() -> httpx.Client:
    """One client for health and key checks: building one (its TLS context) costs ~20 ms, and a
    server's start-up is polled every 50 ms on the same cores the server is starting on."""
    return httpx.Client(trust_env=False)


@dataclass(frozen=True)
class TiledEndpoint:
    """How to reach one Tiled server: its base URL and the API key it accepts."""

    url: str
    api_key: str = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _base_url(self.url))
        validate_api_key(self.api_key)

    @property
    def api_uri(self) -> str:
        return f"{self.url}{API_PATH}"

    def connect(self) -> Container:
        """A Tiled client on the root of the catalog.

        A write the server refuses to this key (a store served with roles: `tandem.tiled_roles`)
        raises `WriteRefusedError`, which says which role writes there, not Tiled's HTTP error.
        """
        from tiled.client import from_uri

        client = from_uri(self.api_uri, api_key=self.api_key)
        client.context.http_client.event_hooks["response"].append(_raise_refused_write)
        return client

    def environ(self) -> dict[str, str]:
        """The environment variables with which another process attaches to this server."""
        return {URI_ENV: self.url, API_KEY_ENV: self.api_key}

    def settings(self) -> TiledSettings:
        return TiledSettings(uri=self.url, api_key=SecretStr(self.api_key))

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        """Whether the server answers its health check (no key needed for that)."""
        try:
            response = _http_client().get(f"{self.url}/healthz", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def check_api_key(self, timeout_s: float = 5.0) -> None:
        """Raise `TiledAuthenticationError` unless the server accepts our key."""
        try:
            response = _http_client().get(
                f"{self.api_uri}/metadata/",
                headers={"Authorization": f"Apikey {self.api_key}"},
                timeout=timeout_s,
            )
        except httpx.HTTPError as error:
            raise TiledServerError(f"Tiled server at {self.url} does not answer: {error}") from error
        if response.status_code in (401, 403):
            raise TiledAuthenticationError(
                f"Tiled server at {self.url} refuses the API key (HTTP {response.status_code}); "
                f"set {API_KEY_ENV} to the key the server was started with"
            )
        if response.status_code != 200:
            raise TiledServerError(
                f"Tiled server at {self.url} answered HTTP {response.status_code} to a metadata request"
            )


def _raise_refused_write(response: httpx.Response) -> None:
    """An httpx response hook: Tiled's refusal of a key's write, as the typed error of tandem's roles.

    403 is the access policy refusing this node; 401 with "Not enough permissions" is the key
    lacking the scope everywhere (making principals or keys). A 401 for an unknown key is left
    to Tiled's client, as are all other statuses.
    """
    status = response.status_code
    if status not in (401, 403):
        return
    response.read()
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        detail = response.text
    if status == 401 and "Not enough permissions" not in detail:
        return
    from tandem.tiled_roles import TandemRole, WriteRefusedError, writable_by

    path = response.request.url.path
    route = path[len(API_PATH) :] if path.startswith(API_PATH) else path
    kind, _, node = route.strip("/").partition("/")
    if kind == "auth":
        what = "only the store owner's key (the served directory's api_key) makes principals and keys"
    elif status == 401 and response.request.method == "DELETE":
        what = (
            "the keys of the agent and scientist roles never delete: a campaign's decisions, journal and "
            "verdicts are its audit trail (station and analysis keys delete only what they write again, "
            "the owner's key anything)"
        )
    elif kind in ("metadata", "register"):
        roles = " or ".join(role.value for role in writable_by([k for k in node.split("/") if k]))
        what = f"there, only the key of the {roles} role writes"
    else:
        what = "each key writes only its role's part of the catalog: " + "; ".join(
            f"{role.value} {role.writes}" for role in TandemRole
        )
    raise WriteRefusedError(
        f"the data store refused {response.request.method} {route} to this key (HTTP {status}); "
        f"{what}. Nothing was written. Tiled says: {detail.splitlines()[0] if detail else '(nothing)'}"
    )


def attach(uri: str, api_key: str, *, timeout_s: float = 10.0) -> TiledEndpoint:
    """The endpoint of a running server, after checking that it answers and accepts the key."""
    endpoint = TiledEndpoint(uri, api_key)
    deadline = time.monotonic() + timeout_s
    while not endpoint.is_healthy():
        if time.monotonic() >= deadline:
            raise TiledServerError(f"no Tiled server answers at {endpoint.url} (waited {timeout_s:g} s)")
        time.sleep(0.1)
    endpoint.check_api_key()
    return endpoint
