"""`ca_session` lets CA clients in once its repeater answers; a repeater that never does is an error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tandem.sim import ioc
from tandem.sim.ioc import CAEnvironment, IOCError, RunningIOC, ca_session, repeater_answers


def test_the_session_repeater_answers_a_registration(ca_env: CAEnvironment) -> None:
    assert repeater_answers(ca_env.repeater_port, timeout_s=2.0)


def _bound_addresses(port: int, protocol: str) -> set[str]:
    """The local IPv4 addresses that sockets on `port` are bound to, from /proc/net/udp or tcp."""
    addresses = set()
    for line in Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]:
        local = line.split()[1]
        address, port_hex = local.split(":")
        if int(port_hex, 16) == port:
            addresses.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return addresses


@pytest.mark.skipif(not Path("/proc/net/udp").exists(), reason="reads Linux's /proc/net")
def test_the_repeater_and_the_iocs_listen_on_loopback_only(
    ca_env: CAEnvironment, cell_loader_ioc: RunningIOC
) -> None:
    assert _bound_addresses(ca_env.repeater_port, "udp") == {"127.0.0.1"}
    assert _bound_addresses(cell_loader_ioc.server_port, "udp") == {"127.0.0.1"}
    assert _bound_addresses(cell_loader_ioc.server_port, "tcp") == {"127.0.0.1"}


def test_nothing_answers_on_a_port_without_a_repeater() -> None:
    env = CAEnvironment.allocate(n_servers=1)
    assert not repeater_answers(env.repeater_port, timeout_s=0.2)


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("raise SystemExit(3)", "exited with code 3"),
        ("import time; time.sleep(60)", "did not answer"),
    ],
)
def test_a_repeater_that_never_answers_is_an_error_and_changes_no_environment(
    monkeypatch: pytest.MonkeyPatch, program: str, message: str
) -> None:
    monkeypatch.setattr(ioc, "_ca_repeater_command", lambda *_: [sys.executable, "-c", program])
    before = dict(os.environ)
    with (
        pytest.raises(IOCError, match=message),
        ca_session(CAEnvironment.allocate(1), repeater_timeout_s=1.0),
    ):
        pytest.fail("the session must not start")
    assert dict(os.environ) == before
