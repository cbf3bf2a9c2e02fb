"""`tandem data keys issue|list|revoke`: a key of its own for each process of a store served with roles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.cli.catalog import DEFAULT_DIRECTORY, data_app
from tandem.errors import TandemError

keys_app = typer.Typer(
    name="keys",
    help="Keys of a data store served with roles (`tandem data serve --roles`): one per role, each "
    "writing only its role's part of the catalog.",
    no_args_is_help=True,
)
data_app.add_typer(keys_app)

_ROLES_HELP = (
    "station (writes raw/), analysis (analysed/, analysis_claims/), agent (campaigns/ but a "
    "campaign's control), scientist (a campaign's control: pauses and verdicts)"
)

DirectoryOption = Annotated[
    Path,
    typer.Option(
        "--directory",
        "-d",
        envvar="TANDEM_TILED_DIRECTORY",
        help="The folder a `tandem data serve --roles` serves; its api_key is the owner's key, "
        "which issues the others.",
    ),
]


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _owner_client(directory: Path) -> Any:  # a Tiled client (Tiled ships no types)
    from tandem.tiled_directory import find_running_server, serves_with_roles

    if not serves_with_roles(directory):
        raise TandemError(
            f"{directory} is not served with roles: every process shares its one key. Serve it "
            "with `tandem data serve --roles --directory DIR` (from then on it is always served so)"
        )
    endpoint = find_running_server(directory)
    if endpoint is None:
        raise TandemError(
            f"no Tiled server is running on {directory}; start it with `tandem data serve --roles`"
        )
    return endpoint.connect()


@keys_app.command("issue")
def issue(
    roles: Annotated[list[str], typer.Argument(help=f"The roles to issue a key to: {_ROLES_HELP}.")],
    *,
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="How long the keys work: a number and a unit, s, m, h, d or y (90d, 12h). "
            "Default: they never expire.",
        ),
    ] = None,
    directory: DirectoryOption = DEFAULT_DIRECTORY,
) -> None:
    """Issue a new key to each ROLE and keep it in DIRECTORY/keys/ROLE (readable by you only).

    Each role has one Tiled service principal (made with its first key); a key holds the role's
    scopes and no scope on keys, so it cannot issue another. Hand each process its role's key:
    `export TANDEM_TILED_API_KEY=$(cat DIRECTORY/keys/station)` in the station's shell. Issuing
    again replaces the file; the old key stays valid until revoked (`tandem data keys revoke`).
    """
    from tandem.tiled_keys import issue_key, write_role_key
    from tandem.tiled_roles import parse_role

    try:
        wanted = [parse_role(name) for name in roles]
        lifetime_s = None if expires_in is None else _seconds(expires_in)
        owner = _owner_client(directory)
        for role in wanted:
            key = issue_key(owner, role, expires_in_s=lifetime_s)
            path = write_role_key(directory, key)
            until = f", expires {key.expires_at}" if key.expires_at else ", never expires"
            typer.echo(
                f"{role.value:<10} key {key.first_eight}… of principal {key.principal} in {path}{until}"
            )
    except TandemError as error:
        raise _fail(error) from error
    typer.echo("Give each process its role's key: export TANDEM_TILED_API_KEY=$(cat KEY_FILE)")


def _seconds(lifetime: str) -> int:
    """Seconds in a lifetime written as Tiled writes them (90d, 12h, 30m, 45s, 1y)."""
    from tiled.utils import parse_time_string

    try:
        seconds = int(parse_time_string(lifetime.strip()))
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise TandemError(
            f"--expires-in takes a positive number and a unit, s, m, h, d or y (90d, 12h), got {lifetime!r}"
        )
    return seconds


@keys_app.command("list")
def list_keys(*, directory: DirectoryOption = DEFAULT_DIRECTORY) -> None:
    """List the principals of each role and their keys (the first eight digits and note; never a secret)."""
    from tandem.tiled_roles import role_of_tiled_roles

    try:
        owner = _owner_client(directory)
        principals = owner.context.admin.list_principals(limit=300)
    except TandemError as error:
        raise _fail(error) from error
    for principal in principals:
        role = role_of_tiled_roles([str(r["name"]) for r in principal.get("roles") or ()])
        keys = ", ".join(
            f"{k['first_eight']} ({k.get('note') or 'no note'}; "
            f"{'expires ' + str(k['expiration_time']) if k.get('expiration_time') else 'never expires'})"
            for k in principal.get("api_keys") or ()
        )
        typer.echo(f"{role.value if role else 'no role':<10} {principal['uuid']}  keys: {keys or 'none'}")


@keys_app.command("revoke")
def revoke(
    role: Annotated[str, typer.Argument(help=f"The role whose keys to revoke: {_ROLES_HELP}.")],
    *,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Only the key beginning so (its first eight digits, as `list` shows)."),
    ] = None,
    directory: DirectoryOption = DEFAULT_DIRECTORY,
) -> None:
    """Revoke ROLE's keys (or the one --key names): the server refuses them from their next request on.

    The key file in DIRECTORY/keys is removed when the key it holds is revoked; issue a new one
    with `tandem data keys issue ROLE`.
    """
    from tandem.tiled_keys import read_role_key, revoke_keys, role_key_path
    from tandem.tiled_roles import parse_role

    try:
        parsed = parse_role(role)
        revoked = revoke_keys(_owner_client(directory), parsed, key)
        kept = read_role_key(directory, parsed)
    except TandemError as error:
        raise _fail(error) from error
    if kept is not None and kept[:8] in revoked:
        role_key_path(directory, parsed).unlink()
    typer.echo(f"revoked {parsed.value} key(s) {', '.join(revoked)}")
