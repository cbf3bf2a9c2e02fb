"""Keys with scopes, one per role: a real Tiled server served with roles, each role's writes and refusals."""

from __future__ import annotations

import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tandem.agents.journal import ApprovalRefusedError, Entry, EntryStatus, Journal
from tandem.catalog_layout import (
    ANALYSED,
    ANALYSIS_CLAIMS,
    CAMPAIGNS,
    CONTROL,
    DECISIONS,
    JOURNAL,
    RAW,
    create_afresh,
    create_or_replace_metadata,
    read_array,
)
from tandem.cli import app
from tandem.run_writer import subscribe_tiled_writer
from tandem.tiled_directory import AUTHN_FILE
from tandem.tiled_endpoint import TiledAuthenticationError, TiledEndpoint, TiledServerError
from tandem.tiled_keys import (
    IssuedKey,
    issue_key,
    key_identity,
    read_role_key,
    revoke_keys,
    role_key_path,
    write_role_key,
)
from tandem.tiled_roles import RoleError, TandemRole, WriteRefusedError, may_write
from tandem.tiled_server import EmbeddedTiledServer

WRITERS = (TandemRole.STATION, TandemRole.ANALYSIS, TandemRole.AGENT, TandemRole.SCIENTIST)


@pytest.fixture(scope="module")
def roles_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTiledServer]:
    """A Tiled server served with roles on a free loopback port; stopped also when a test fails."""
    server = EmbeddedTiledServer(tmp_path_factory.mktemp("roles"), roles=True, die_with_parent=True)
    with server:
        yield server


@pytest.fixture(scope="module")
def issued(roles_server: EmbeddedTiledServer) -> dict[TandemRole, IssuedKey]:
    owner = roles_server.endpoint.connect()
    return {role: issue_key(owner, role) for role in WRITERS}


@pytest.fixture
def client_of(
    roles_server: EmbeddedTiledServer, issued: dict[TandemRole, IssuedKey]
) -> Callable[[TandemRole], Any]:
    def connect(role: TandemRole) -> Any:
        if role is TandemRole.ADMIN:
            return roles_server.endpoint.connect()
        return TiledEndpoint(roles_server.endpoint.url, issued[role].secret).connect()

    return connect


@pytest.fixture
def campaign(client_of: Callable[[TandemRole], Any]) -> str:
    """A campaign made by the agent (its journal: queue, decisions and the control a scientist writes)."""
    campaign_id = f"roles-{uuid.uuid4().hex[:8]}"
    Journal(client_of(TandemRole.AGENT), campaign_id)
    return campaign_id


def _awaiting(campaign_id: str) -> Entry:
    return Entry(
        decision_uid=uuid.uuid4().hex,
        campaign_id=campaign_id,
        station="saxs",
        agent="test",
        target={"sds": 0.01},
        scan={"exposure_s": 1.0},
        status=EntryStatus.AWAITING_APPROVAL,
        decided_at=time.time(),
    )


def test_the_owner_made_the_layout_and_each_key_knows_its_role(
    client_of: Callable[[TandemRole], Any], issued: dict[TandemRole, IssuedKey]
) -> None:
    owner = client_of(TandemRole.ADMIN)
    assert {RAW, ANALYSED, ANALYSIS_CLAIMS, CAMPAIGNS} <= set(owner)
    assert key_identity(owner).role is TandemRole.ADMIN  # type: ignore[union-attr]
    for role, key in issued.items():
        identity = key_identity(client_of(role))
        assert identity is not None
        assert (identity.role, identity.principal, identity.kind) == (role, key.principal, "service")
        assert not {"create:apikeys", "admin:apikeys", "write:principals"} & set(key.scopes)


def test_each_role_writes_its_own_part(client_of: Callable[[TandemRole], Any], campaign: str) -> None:
    run_uid = uuid.uuid4().hex
    client_of(TandemRole.STATION)[RAW].create_container(run_uid, metadata={"start": {"uid": run_uid}})
    analysis = client_of(TandemRole.ANALYSIS)
    # as the analysis store writes a result: made afresh (a second time deletes the first), arrays in it
    for attempt in (1, 2):
        result = create_afresh(analysis[ANALYSED], run_uid, {"raw_uid": run_uid, "attempt": attempt})
        result.write_array(np.linspace(0.01, 0.3, 5), key="q_inv_a")
    analysis[ANALYSIS_CLAIMS].create_container(f"{run_uid}.1", metadata={"worker": "w1"})
    agent_journal = Journal(client_of(TandemRole.AGENT), campaign)
    entry = _awaiting(campaign)
    agent_journal.put(entry)
    scientist_journal = Journal(client_of(TandemRole.SCIENTIST), campaign)
    scientist_journal.set_paused(True, by="ada", note="checking the deck")
    approved = scientist_journal.set_verdict(entry.decision_uid, True, by="ada")

    owner = client_of(TandemRole.ADMIN)
    assert run_uid in list(owner[RAW])
    assert owner[ANALYSED][run_uid].metadata["attempt"] == 2
    assert len(read_array(owner[ANALYSED][run_uid], "q_inv_a")) == 5
    assert run_uid in owner[ANALYSED]
    assert f"{run_uid}.1" in owner[ANALYSIS_CLAIMS]
    assert agent_journal.pause() is not None
    assert agent_journal.pause()["role"] == "scientist"
    recorded = agent_journal.entry(entry.decision_uid)
    assert recorded is not None
    assert recorded.approval == approved.approval
    scientist = key_identity(client_of(TandemRole.SCIENTIST))
    assert scientist is not None
    assert recorded.approval["principal"] == scientist.principal
    assert recorded.approval["role"] == "scientist"
    assert recorded.approval["verdict"] == "approved"


def test_a_stations_runengine_writes_its_runs_and_an_agents_cannot(
    client_of: Callable[[TandemRole], Any],
) -> None:
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import det

    station = RunEngine({}, context_managers=[])
    subscribe_tiled_writer(station, client_of(TandemRole.STATION))
    (uid,) = station(count([det], num=3), campaign_id="roles")
    run = client_of(TandemRole.ADMIN)[RAW][uid]
    assert len(run["primary"].read()["det"]) == 3

    agent = RunEngine({}, context_managers=[])
    subscribe_tiled_writer(agent, client_of(TandemRole.AGENT))
    before = set(client_of(TandemRole.ADMIN)[RAW])
    with (
        pytest.warns(UserWarning, match="RunRouter"),  # event_model's note on the refused callback
        pytest.raises(WriteRefusedError, match="only the key of the station or admin role writes"),
    ):
        agent(count([det], num=1), campaign_id="roles")
    assert set(client_of(TandemRole.ADMIN)[RAW]) == before


#: (role, where it tries to make a node) that the server must refuse; "<c>" is a fresh campaign
FORBIDDEN_CREATES = [
    (TandemRole.STATION, (ANALYSED,)),
    (TandemRole.STATION, (ANALYSIS_CLAIMS,)),
    (TandemRole.STATION, (CAMPAIGNS, "<c>", JOURNAL)),
    (TandemRole.STATION, ()),
    (TandemRole.ANALYSIS, (RAW,)),
    (TandemRole.ANALYSIS, (CAMPAIGNS, "<c>", DECISIONS)),
    (TandemRole.ANALYSIS, ()),
    (TandemRole.AGENT, (RAW,)),
    (TandemRole.AGENT, (ANALYSED,)),
    (TandemRole.AGENT, (CAMPAIGNS, "<c>", CONTROL)),
    (TandemRole.AGENT, ()),
    (TandemRole.SCIENTIST, (RAW,)),
    (TandemRole.SCIENTIST, (ANALYSED,)),
    (TandemRole.SCIENTIST, (CAMPAIGNS, "<c>", DECISIONS)),
    (TandemRole.SCIENTIST, (CAMPAIGNS, "<c>", JOURNAL)),
    (TandemRole.SCIENTIST, (CAMPAIGNS,)),
]


def _node(client: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        client = client[key]
    return client


@pytest.mark.parametrize(("role", "where"), FORBIDDEN_CREATES, ids=lambda v: "/".join(v) or "root")
def test_each_roles_forbidden_writes_are_refused_and_change_nothing(
    client_of: Callable[[TandemRole], Any], campaign: str, role: TandemRole, where: tuple[str, ...]
) -> None:
    path = tuple(campaign if key == "<c>" else key for key in where)
    assert not may_write(role, path)
    owner = client_of(TandemRole.ADMIN)
    before_keys = set(_node(owner, path))
    before_metadata = dict(_node(owner, path).metadata)
    parent = _node(client_of(role), path)
    with pytest.raises(WriteRefusedError, match="refused POST") as refused:
        parent.create_container(f"forged-{uuid.uuid4().hex[:6]}", metadata={"forged": True})
    assert "Nothing was written" in str(refused.value)
    with pytest.raises(WriteRefusedError, match="refused"):
        parent.update_metadata(metadata={"forged": True})
    assert set(_node(owner, path)) == before_keys
    assert dict(_node(owner, path).metadata) == before_metadata


def test_a_role_cannot_delete_or_rewrite_anothers_nodes(client_of: Callable[[TandemRole], Any]) -> None:
    run_uid = uuid.uuid4().hex
    client_of(TandemRole.ANALYSIS)[ANALYSED].create_container(run_uid, metadata={"fit": "sphere"})
    station_view = client_of(TandemRole.STATION)[ANALYSED]
    with pytest.raises(WriteRefusedError, match="only the key of the analysis or admin role writes"):
        station_view[run_uid].replace_metadata(metadata={"fit": "forged"})
    with pytest.raises(WriteRefusedError):
        station_view.delete_contents(run_uid, recursive=True, external_only=False)
    assert dict(client_of(TandemRole.ADMIN)[ANALYSED][run_uid].metadata) == {"fit": "sphere"}


def test_the_agent_and_the_scientist_cannot_delete_the_campaigns_records(
    client_of: Callable[[TandemRole], Any], campaign: str
) -> None:
    agent_journal = Journal(client_of(TandemRole.AGENT), campaign)
    entry = _awaiting(campaign)
    agent_journal.put(entry)
    agent_journal.put(replace(entry, status=EntryStatus.QUEUED))  # updated in place, twice
    agent_journal.heartbeat({"round": 1})
    agent_journal.heartbeat({"round": 2})
    Journal(client_of(TandemRole.SCIENTIST), campaign).set_paused(True, by="ada", note="lunch")
    for role in (TandemRole.AGENT, TandemRole.SCIENTIST):
        campaigns = client_of(role)[CAMPAIGNS]
        with pytest.raises(WriteRefusedError, match="the agent and scientist roles never delete"):
            campaigns.delete_contents(campaign, recursive=True, external_only=False)
        with pytest.raises(WriteRefusedError):
            campaigns[campaign][JOURNAL].delete_contents(
                entry.decision_uid, recursive=True, external_only=False
            )
    owner = client_of(TandemRole.ADMIN)
    assert entry.decision_uid in owner[CAMPAIGNS][campaign][JOURNAL]
    assert agent_journal.pause() is not None


@pytest.mark.parametrize("role", WRITERS)
def test_a_key_of_one_role_cannot_make_a_key(
    client_of: Callable[[TandemRole], Any], issued: dict[TandemRole, IssuedKey], role: TandemRole
) -> None:
    owner = client_of(TandemRole.ADMIN)
    principals_before = len(owner.context.admin.list_principals(limit=300))
    context = client_of(role).context
    other = next(r for r in WRITERS if r is not role)
    with pytest.raises(WriteRefusedError, match="only the store owner's key"):
        context.admin.create_service_principal("tandem-scientist")
    with pytest.raises(WriteRefusedError, match="only the store owner's key"):
        context.admin.create_api_key(issued[other].principal, scopes=["read:metadata"])
    with pytest.raises(WriteRefusedError, match="only the store owner's key"):
        context.create_api_key(scopes=["read:metadata"])
    with pytest.raises(WriteRefusedError):
        issue_key(client_of(role), other)
    principals = owner.context.admin.list_principals(limit=300)
    assert len(principals) == principals_before
    other_keys = next(p for p in principals if p["uuid"] == issued[other].principal)["api_keys"]
    assert len(other_keys) == 1


@pytest.mark.parametrize("role", [TandemRole.AGENT, TandemRole.STATION, TandemRole.ADMIN])
def test_the_approval_gate_refuses_any_key_but_a_scientists(
    client_of: Callable[[TandemRole], Any], campaign: str, role: TandemRole
) -> None:
    entry = _awaiting(campaign)
    Journal(client_of(TandemRole.AGENT), campaign).put(entry)
    journal = Journal(client_of(role), campaign)
    with pytest.raises(ApprovalRefusedError, match=f"only a scientist's key.*\\({role.value}\\)"):
        journal.set_verdict(entry.decision_uid, True, by="not a scientist")
    with pytest.raises(ApprovalRefusedError):
        journal.set_paused(True, by="not a scientist")
    after = Journal(client_of(TandemRole.SCIENTIST), campaign)
    assert after.entry(entry.decision_uid) == entry
    assert after.pause() is None


def test_a_station_cannot_forge_a_verdict_past_the_gate(
    client_of: Callable[[TandemRole], Any], campaign: str
) -> None:
    entry = _awaiting(campaign)
    Journal(client_of(TandemRole.AGENT), campaign).put(entry)
    queue = client_of(TandemRole.STATION)[CAMPAIGNS][campaign][JOURNAL]
    forged = {**entry.to_dict(), "approval": {"verdict": "approved", "by": "station"}}
    with pytest.raises(WriteRefusedError):
        create_or_replace_metadata(queue, entry.decision_uid, forged)
    assert Journal(client_of(TandemRole.ADMIN), campaign).entry(entry.decision_uid) == entry


def test_a_verdict_the_agent_writes_into_its_journal_does_not_count(
    client_of: Callable[[TandemRole], Any], campaign: str
) -> None:
    entry = _awaiting(campaign)
    agent = Journal(client_of(TandemRole.AGENT), campaign)
    forged = {**entry.to_dict(), "approval": {"verdict": "approved", "by": "agent", "role": "scientist"}}
    create_or_replace_metadata(agent.entries_node, entry.decision_uid, forged)  # its own node: allowed
    assert agent.entry(entry.decision_uid) == entry  # ...but the verdict is the control node's
    with pytest.raises(WriteRefusedError, match="only the key of the scientist or admin role writes"):
        agent.node[CONTROL].update_metadata(
            metadata={"verdicts": {entry.decision_uid: {"verdict": "approved"}}}
        )
    assert [e.approval for e in agent.entries() if e.decision_uid == entry.decision_uid] == [{}]


def test_a_verdict_the_agent_puts_in_a_control_node_it_makes_does_not_count(
    client_of: Callable[[TandemRole], Any],
) -> None:
    """The agent's key makes its campaign's nodes, control included, with any metadata it likes:
    a verdict there from the start is the agent's, not a scientist's, and is ignored."""
    campaign_id = f"roles-{uuid.uuid4().hex[:8]}"
    agent_client = client_of(TandemRole.AGENT)
    entry = _awaiting(campaign_id)
    forged = {"verdict": "approved", "by": "agent", "role": "scientist"}
    campaign = agent_client[CAMPAIGNS].create_container(campaign_id, metadata={"campaign_id": campaign_id})
    campaign.create_container(CONTROL, metadata={"verdicts": {entry.decision_uid: forged}})
    agent = Journal(agent_client, campaign_id)
    agent.put(entry)
    assert agent.entry(entry.decision_uid) == entry
    scientist = Journal(client_of(TandemRole.SCIENTIST), campaign_id)
    scientist.set_paused(True, by="ada")  # a real change to the node keeps the forged verdict out
    assert agent.entry(entry.decision_uid) == entry
    scientist.set_verdict(entry.decision_uid, False, by="ada", note="no")
    denied = agent.entry(entry.decision_uid)
    assert denied is not None
    assert denied.approval["verdict"] == "denied"


def test_keys_are_kept_private_and_the_admin_key_is_not_issued(
    roles_server: EmbeddedTiledServer, tmp_path: Path
) -> None:
    owner = roles_server.endpoint.connect()
    key = issue_key(owner, TandemRole.SCIENTIST, note="a second scientist key")
    path = write_role_key(tmp_path, key)
    assert path == role_key_path(tmp_path, TandemRole.SCIENTIST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_role_key(tmp_path, TandemRole.SCIENTIST) == key.secret
    assert read_role_key(tmp_path, TandemRole.AGENT) is None
    with pytest.raises(RoleError, match="owner's"):
        issue_key(owner, TandemRole.ADMIN)


def test_the_keys_command_issues_keys_into_the_directory(roles_server: EmbeddedTiledServer) -> None:
    directory = roles_server.directory
    result = CliRunner().invoke(
        app, ["data", "keys", "issue", "station", "agent", "--directory", str(directory)]
    )
    assert result.exit_code == 0, result.output
    for role in (TandemRole.STATION, TandemRole.AGENT):
        secret = read_role_key(directory, role)
        assert secret is not None
        assert secret not in result.output
        identity = key_identity(TiledEndpoint(roles_server.endpoint.url, secret).connect())
        assert identity is not None
        assert identity.role is role
    listed = CliRunner().invoke(app, ["data", "keys", "list", "--directory", str(directory)])
    assert listed.exit_code == 0
    assert "station" in listed.output
    assert "agent" in listed.output
    wrong = CliRunner().invoke(app, ["data", "keys", "issue", "janitor", "--directory", str(directory)])
    assert wrong.exit_code == 1
    assert "the roles are station, analysis, agent, scientist, admin" in wrong.output


def test_a_revoked_key_is_refused_and_its_file_removed(roles_server: EmbeddedTiledServer) -> None:
    directory = roles_server.directory
    runner = CliRunner()
    assert (
        runner.invoke(app, ["data", "keys", "issue", "analysis", "--directory", str(directory)]).exit_code
        == 0
    )
    secret = read_role_key(directory, TandemRole.ANALYSIS)
    assert secret is not None
    TiledEndpoint(roles_server.endpoint.url, secret).check_api_key()
    revoked = runner.invoke(
        app, ["data", "keys", "revoke", "analysis", "--key", secret[:8], "--directory", str(directory)]
    )
    assert revoked.exit_code == 0, revoked.output
    assert secret[:8] in revoked.output
    with pytest.raises(TiledAuthenticationError):
        TiledEndpoint(roles_server.endpoint.url, secret).check_api_key()
    assert read_role_key(directory, TandemRole.ANALYSIS) is None
    again = runner.invoke(
        app, ["data", "keys", "revoke", "analysis", "--key", secret[:8], "--directory", str(directory)]
    )
    assert again.exit_code == 1
    assert "no key beginning" in again.output
    with pytest.raises(RoleError, match="owner's key"):
        revoke_keys(roles_server.endpoint.connect(), TandemRole.ADMIN)


def test_a_key_issued_for_a_while_is_refused_after_it(roles_server: EmbeddedTiledServer) -> None:
    directory = roles_server.directory
    runner = CliRunner()
    before = read_role_key(directory, TandemRole.SCIENTIST)
    for bad in ("soon", "0s", "-5m"):
        refused = runner.invoke(
            app, ["data", "keys", "issue", "scientist", "--expires-in", bad, "--directory", str(directory)]
        )
        assert refused.exit_code == 1
        assert "--expires-in takes a positive number and a unit" in refused.output
        assert read_role_key(directory, TandemRole.SCIENTIST) == before  # nothing issued, nothing written
    issued = runner.invoke(
        app, ["data", "keys", "issue", "scientist", "--expires-in", "3s", "--directory", str(directory)]
    )
    assert issued.exit_code == 0, issued.output
    assert ", expires " in issued.output
    secret = read_role_key(directory, TandemRole.SCIENTIST)
    assert secret is not None
    TiledEndpoint(roles_server.endpoint.url, secret).check_api_key()
    listed = runner.invoke(app, ["data", "keys", "list", "--directory", str(directory)])
    assert f"{secret[:8]} (tandem scientist key; expires " in listed.output
    time.sleep(4.0)
    with pytest.raises(TiledAuthenticationError):
        TiledEndpoint(roles_server.endpoint.url, secret).check_api_key()
    forever = issue_key(roles_server.endpoint.connect(), TandemRole.SCIENTIST)
    assert forever.expires_at is None
    with pytest.raises(RoleError, match="positive number of seconds"):
        issue_key(roles_server.endpoint.connect(), TandemRole.SCIENTIST, expires_in_s=0)


def test_a_store_served_without_roles_refuses_to_issue_keys(tiled_server: EmbeddedTiledServer) -> None:
    result = CliRunner().invoke(
        app, ["data", "keys", "issue", "station", "--directory", str(tiled_server.directory)]
    )
    assert result.exit_code == 1
    assert "not served with roles" in result.output
    assert key_identity(tiled_server.endpoint.connect()) is None


def test_a_directory_served_with_roles_is_never_served_without(tmp_path: Path) -> None:
    (tmp_path / AUTHN_FILE).touch()
    with pytest.raises(TiledServerError, match="was served with roles"):
        EmbeddedTiledServer(tmp_path, roles=False).start()


def test_keys_survive_a_restart(
    roles_server: EmbeddedTiledServer,
    client_of: Callable[[TandemRole], Any],
    issued: dict[TandemRole, IssuedKey],
) -> None:
    roles_server.restart()
    run_uid = uuid.uuid4().hex
    client_of(TandemRole.STATION)[RAW].create_container(run_uid)
    with pytest.raises(WriteRefusedError):
        client_of(TandemRole.STATION)[ANALYSED].create_container(run_uid)
    assert run_uid in list(client_of(TandemRole.ADMIN)[RAW])
