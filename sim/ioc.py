"""Run caproto IOCs on loopback, in subprocesses, for tests and the digital twin.

Channel Access on one machine without touching the site network: every IOC
listens on 127.0.0.1 on its own UDP search port (several servers cannot share
one unicast search port), and clients search all of them through an explicit
address list. The pieces:

* `CAEnvironment` — the free ports of one session (a pool of server ports and a
  repeater port) and the environment variables that point servers and clients at
  them. pyepics loads its own libca, which reads these variables when its
  context is created: they must be in `os.environ` before the first CA call
  (safest: before `import epics` or `import ophyd`).
* `ca_session` — sets that environment, runs `caproto-repeater`, and on exit
  finalizes libca (before any IOC it outlives is stopped) and restores the
  environment.
* `serve_ioc` — starts one `caproto.server.PVGroup` in a subprocess, waits until
  its PVs answer a search, and stops the process on exit, also on failure.

Run an IOC by hand with ``python -m tandem.sim.ioc module:Class --prefix P:``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import caproto as ca
from caproto.server import PVGroup

from tandem.child_processes import LOOPBACK, free_port, popen_dying_with_parent, terminate
from tandem.errors import TandemError


class IOCError(TandemError, RuntimeError):
    """An IOC could not be started, or did not answer."""


class PortPoolExhaustedError(TandemError, RuntimeError):
    """Every server port of the CA session is taken by a running IOC."""


@dataclass(frozen=True)
class CAEnvironment:
    """The ports of one CA session on loopback and the environment that uses them."""

    server_ports: tuple[int, ...]
    repeater_port: int
    host: str = LOOPBACK

    @classmethod
    def allocate(cls, n_servers: int = 8, host: str = LOOPBACK) -> CAEnvironment:
        if n_servers < 1:
            raise IOCError(f"a CA session needs at least one server port, got n_servers={n_servers}")
        ports: set[int] = set()
        while len(ports) < n_servers + 1:
            ports.add(free_port(host, udp_too=True))
        repeater, *servers = sorted(ports)
        return cls(server_ports=tuple(servers), repeater_port=repeater, host=host)

    def client_env(self) -> dict[str, str]:
        """What a CA client (pyepics, caproto's clients) needs to find every IOC of the session."""
        return {
            "EPICS_CA_ADDR_LIST": " ".join(f"{self.host}:{port}" for port in self.server_ports),
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_SERVER_PORT": str(self.server_ports[0]),
            "EPICS_CA_REPEATER_PORT": str(self.repeater_port),
        }

    def server_env(self, server_port: int) -> dict[str, str]:
        """What an IOC serving on `server_port` needs: loopback only, beacons to our repeater."""
        if server_port not in self.server_ports:
            raise IOCError(f"port {server_port} is not a server port of this session {self.server_ports}")
        return {
            **self.client_env(),
            "EPICS_CA_SERVER_PORT": str(server_port),
            "EPICS_CAS_SERVER_PORT": str(server_port),
            "EPICS_CAS_INTF_ADDR_LIST": self.host,
            "EPICS_CAS_BEACON_ADDR_LIST": self.host,
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_CAS_BEACON_PORT": str(self.repeater_port),
        }


@dataclass
class PortPool:
    """Hands out the server ports of a session to IOCs, one IOC per port at a time."""

    env: CAEnvironment
    _in_use: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def port(self) -> Iterator[int]:
        with self._lock:
            free = [p for p in self.env.server_ports if p not in self._in_use]
            if not free:
                raise PortPoolExhaustedError(
                    f"all {len(self.env.server_ports)} server ports of the CA session are in use; "
                    "allocate the session with a larger n_servers"
                )
            port = free[0]
            self._in_use.add(port)
        try:
            yield port
        finally:
            with self._lock:
                self._in_use.discard(port)


@dataclass(frozen=True)
class RunningIOC:
    """An IOC subprocess that answers on loopback."""

    prefix: str
    pv_names: tuple[str, ...]
    server_port: int
    pid: int
    log_path: Path

    def pv(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _ca_repeater_command(host: str = LOOPBACK) -> list[str]:
    # caproto's command-line repeater binds 0.0.0.0 (every interface); its `run` takes the host
    program = f"from caproto.sync.repeater import run; run(host={host!r})"
    return [sys.executable, "-P", "-c", program]


def repeater_answers(port: int, timeout_s: float) -> bool:
    """Whether a CA repeater on 127.0.0.1:`port` answers a registration (the handshake libca makes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout_s)
        sock.sendto(bytes(ca.RepeaterRegisterRequest("127.0.0.1")), ("127.0.0.1", port))
        try:
            reply, _ = sock.recvfrom(1024)
        except (TimeoutError, ConnectionRefusedError):
            return False
    return reply[:2] == bytes(ca.RepeaterConfirmResponse("127.0.0.1"))[:2]


def _wait_for_repeater(process: subprocess.Popen[Any], port: int, timeout_s: float) -> None:
    # libca registers with the repeater once its context starts and, finding none, prints "unable to
    # contact CA repeater after 50 tries" into the user's terminal; on a busy machine the Python
    # repeater can take seconds to bind, so clients are let in only once it answers
    deadline = time.monotonic() + timeout_s
    while not repeater_answers(port, timeout_s=0.2):
        if process.poll() is not None:
            raise IOCError(f"the CA repeater exited with code {process.returncode} before it answered")
        if time.monotonic() > deadline:
            raise IOCError(f"the CA repeater did not answer on 127.0.0.1:{port} within {timeout_s} s")


@contextlib.contextmanager
def ca_session(
    env: CAEnvironment | None = None, *, n_servers: int = 8, repeater_timeout_s: float = 30.0
) -> Iterator[CAEnvironment]:
    """Point this process's CA clients at a loopback session; run its repeater and wait until it answers.

    On exit libca is finalized (if pyepics was used): after that, pyepics cannot
    be used again in this process, so open one session per process (pytest: one
    per test session).
    """
    env = env or CAEnvironment.allocate(n_servers)
    repeater = popen_dying_with_parent(
        _ca_repeater_command(env.host),
        env={**os.environ, **env.client_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_repeater(repeater, env.repeater_port, repeater_timeout_s)
    except BaseException:
        _stop(repeater)
        raise
    saved = {key: os.environ.get(key) for key in env.client_env()}
    os.environ.update(env.client_env())
    _quiet_libca()
    try:
        yield env
    finally:
        epics_ca = sys.modules.get("epics.ca")
        if epics_ca is not None:
            epics_ca.finalize_libca()
        _stop(repeater)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _quiet_libca() -> None:
    """Stop libca printing to the terminal in the twin's loopback session.

    libca prints its warnings straight to stderr, around Python's logging: a repeater it has not
    reached yet, a "Virtual circuit disconnect" block for an IOC that died. On the twin the devices
    raise typed errors for whatever matters (a dead IOC fails its sample with the PV it could not
    reach), so a newcomer's terminal shows tandem's output only. A real beamline's session does not
    come through here and keeps libca's messages.
    """
    try:
        from epics import ca
    except ImportError:  # pyepics is not installed: nothing prints
        return
    ca.disable_ca_messages()


def _stop(process: subprocess.Popen[Any]) -> None:
    # SIGINT: caproto shuts its server down cleanly on KeyboardInterrupt
    terminate(process, 5.0, signal_number=signal.SIGINT)


def group_path(group: type[PVGroup] | str) -> str:
    """`module:QualName` of a PVGroup class, the form the subprocess imports."""
    if isinstance(group, str):
        return group
    return f"{group.__module__}:{group.__qualname__}"


def load_group(path: str) -> type[PVGroup]:
    module_name, _, qualname = path.partition(":")
    if not qualname:
        raise IOCError(f"an IOC class is named as 'module:Class', got {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, PVGroup)):
        raise IOCError(f"{path!r} is not a caproto PVGroup subclass")
    return obj


def pv_names(
    group: type[PVGroup] | str, prefix: str, options: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """The PV names the group serves under `prefix` (instantiating a group starts nothing)."""
    return tuple(load_group(group_path(group))(prefix=prefix, **dict(options or {})).pvdb)


def search(pv_name: str, address: tuple[str, int], timeout_s: float) -> bool:
    """True if the server at `address` answers a CA search for `pv_name` within `timeout_s`."""
    broadcaster = ca.Broadcaster(our_role=ca.CLIENT)
    cid = random.randint(0, 0xFFFF)
    request = broadcaster.send(
        ca.VersionRequest(0, ca.DEFAULT_PROTOCOL_VERSION),
        ca.SearchRequest(pv_name, cid, ca.DEFAULT_PROTOCOL_VERSION),
    )
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address[0], 0))
        while (remaining := deadline - time.monotonic()) > 0:
            sock.sendto(request, address)
            sock.settimeout(min(0.1, remaining))
            try:
                data, _ = sock.recvfrom(ca.MAX_UDP_RECV)
            except (TimeoutError, ConnectionRefusedError):
                continue  # not listening yet
            commands = broadcaster.recv(data, address)
            if any(isinstance(c, ca.SearchResponse) and c.cid == cid for c in commands):
                return True
    return False


@contextlib.contextmanager
def serve_ioc(
    group: type[PVGroup] | str,
    prefix: str,
    env: CAEnvironment,
    server_port: int,
    *,
    options: Mapping[str, Any] | None = None,
    startup_timeout_s: float = 30.0,
) -> Iterator[RunningIOC]:
    """Run `group(prefix=prefix, **options)` as an IOC in a subprocess on `server_port`.

    Yields once the IOC answers a search for each of its PVs; stops the process
    on exit. A failed start raises `IOCError` with the end of the IOC's log.
    `options` must be JSON-serialisable: they cross a process boundary.
    """
    path = group_path(group)
    names = pv_names(path, prefix, options)
    if not names:
        raise IOCError(f"{path} serves no PVs")
    log_file = tempfile.NamedTemporaryFile(prefix="tandem-ioc-", suffix=".log", delete=False)  # noqa: SIM115
    log_path = Path(log_file.name)
    # -P: nothing in the working directory shadows an installed package (a folder named like one)
    command = [sys.executable, "-P", "-m", "tandem.sim.ioc", path, "--prefix", prefix]
    command += ["--options", json.dumps(dict(options or {}))]
    # an IOC dies with the process that serves it, also when that is killed with SIGKILL
    process = popen_dying_with_parent(
        command,
        env={**os.environ, **env.server_env(server_port)},
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    log_file.close()
    try:
        address = (env.host, server_port)
        deadline = time.monotonic() + startup_timeout_s
        for name in names:
            while not search(name, address, timeout_s=0.5):
                if process.poll() is not None:
                    raise IOCError(
                        f"IOC {path} ({prefix}) exited with code {process.returncode} while starting:\n"
                        + _tail(log_path)
                    )
                if time.monotonic() > deadline:
                    raise IOCError(
                        f"IOC {path} ({prefix}) did not answer a search for {name!r} on "
                        f"{address[0]}:{address[1]} within {startup_timeout_s} s:\n" + _tail(log_path)
                    )
        yield RunningIOC(prefix, names, server_port, process.pid, log_path)
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)


def _tail(path: Path, n_lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n_lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a caproto PVGroup on the interfaces of the CA env.")
    parser.add_argument("group", help="the PVGroup class, as module:Class")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--options", default="{}", help="JSON object of keyword arguments for the group")
    args = parser.parse_args(argv)
    group = load_group(args.group)(prefix=args.prefix, **json.loads(args.options))
    interfaces = ca.get_server_address_list()
    from caproto.server import run

    with contextlib.suppress(KeyboardInterrupt):
        run(group.pvdb, interfaces=interfaces)


if __name__ == "__main__":
    main()
