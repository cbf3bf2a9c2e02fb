"""A campaign's agent daemon, reached from another terminal: its journal, and stopping its process.

Everything a scientist says to a running daemon goes through its journal in Tiled
(`tandem.agents.journal`: pause, resume, approve, deny, its heartbeat); `find_journal`
finds the campaign's journal from a campaign id, a daemon file, or the only campaign in
the store. A daemon is stopped through its heartbeat, which names its pid and host (no
PID file to look up): `signal_daemon` sends it SIGTERM, as `tandem agent run` expects,
and `wait_for_exit` waits for it to finish its round and exit.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tandem.campaign.daemon_wiring import DaemonConfigError, data_store_client, load_daemon_file
from tandem.child_processes import command_line, pid_alive

if TYPE_CHECKING:
    from tandem.agents.journal import Journal


def find_journal(campaign_id: str | None, config: Path | None) -> Journal:
    """The journal of `campaign_id`, of the daemon file `config`'s campaign, or of the store's only one."""
    from tandem.agents.journal import Journal
    from tandem.campaign.config import load_campaign
    from tandem.catalog_layout import campaign_ids

    client = data_store_client()
    if campaign_id is None and config is not None:
        _spec, campaign_path = load_daemon_file(config)
        campaign_id = load_campaign(campaign_path).id
    if campaign_id is None:
        known = campaign_ids(client)
        if len(known) != 1:
            raise DaemonConfigError(
                "name the campaign with --campaign ID or the daemon file; "
                f"campaigns in the store: {', '.join(known) or 'none'}"
            )
        campaign_id = known[0]
    journal = Journal.find(client, campaign_id)
    if journal is None:
        raise DaemonConfigError(f"the data store has no campaign {campaign_id!r}")
    return journal


def signal_daemon(campaign_id: str, heartbeat: Mapping[str, Any]) -> int | None:
    """Send SIGTERM to the daemon of `heartbeat` (the journal's last); its pid, or None if none runs here.

    Refuses a daemon on another host (it must be stopped there) and a pid that is no longer
    a tandem agent daemon (the daemon is gone and its pid was reused): nothing is signalled.
    """
    pid, host = heartbeat.get("pid"), heartbeat.get("host")
    if isinstance(pid, int) and host != socket.gethostname():
        raise DaemonConfigError(f"the daemon of {campaign_id} runs on {host} (pid {pid}); stop it there")
    if not isinstance(pid, int) or not pid_alive(pid):
        return None
    if not _is_agent_daemon(pid):
        raise DaemonConfigError(
            f"pid {pid} of the last heartbeat is no longer a tandem agent daemon "
            "(the daemon is gone and its pid was reused); nothing was stopped"
        )
    os.kill(pid, signal.SIGTERM)
    return pid


def wait_for_exit(pid: int, timeout_s: float) -> None:
    """Wait until the process `pid` has exited; raises `DaemonConfigError` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise DaemonConfigError(f"the daemon (pid {pid}) has not exited after {timeout_s:g} s")
        time.sleep(0.2)


def _is_agent_daemon(pid: int) -> bool:
    """Whether `pid` runs `tandem agent run` (a heartbeat's pid may have been reused since)."""
    words = command_line(pid)
    if words is None:
        return True  # no /proc to ask (not Linux, or just gone): trust the heartbeat
    return "agent" in words and "run" in words[words.index("agent") :]
