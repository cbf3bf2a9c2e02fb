"""Fixtures that start caproto IOCs on loopback and point pyepics at them.

pyepics ships its own libca, which reads the EPICS_CA_* variables once, when its
context is created on the first CA call. So the session's ports are chosen and
put in `os.environ` in `pytest_configure`, before any test module can import
ophyd or epics; the repeater is started by the session fixture `ca_env`, and
libca is finalized when the session ends (it cannot be re-created afterwards).

Start an IOC in a test with the `ioc_factory` fixture::

    def test_x(ioc_factory):
        with ioc_factory.serve(MyGroup, options={"time_scale": 0}) as ioc:
            signal = EpicsSignal(ioc.pv("Value"), name="value")

or use a ready-made one such as `cell_loader_ioc` (module scope).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from caproto.server import PVGroup

from tandem.sim.ioc import CAEnvironment, PortPool, RunningIOC, ca_session, serve_ioc

_CA_ENV = pytest.StashKey[CAEnvironment]()


def pytest_configure(config: pytest.Config) -> None:
    env = CAEnvironment.allocate(n_servers=8)
    config.stash[_CA_ENV] = env
    os.environ.update(env.client_env())


class IOCFactory:
    """Starts IOCs of the session, each on a server port of the pool, with a unique prefix."""

    def __init__(self, env: CAEnvironment) -> None:
        self.env = env
        self._pool = PortPool(env)
        self._ids = itertools.count(1)

    @contextlib.contextmanager
    def serve(
        self,
        group: type[PVGroup] | str,
        *,
        prefix: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[RunningIOC]:
        prefix = prefix or f"TST{next(self._ids)}:"
        with self._pool.port() as port, serve_ioc(group, prefix, self.env, port, options=options) as ioc:
            yield ioc


@pytest.fixture(scope="session")
def ca_env(pytestconfig: pytest.Config) -> Iterator[CAEnvironment]:
    """The session's CA environment (already in os.environ) with its repeater running."""
    with ca_session(pytestconfig.stash[_CA_ENV]) as env:
        yield env


@pytest.fixture(scope="session")
def ioc_factory(ca_env: CAEnvironment) -> IOCFactory:
    return IOCFactory(ca_env)


@pytest.fixture(scope="module")
def cell_loader_ioc(ioc_factory: IOCFactory) -> Iterator[RunningIOC]:
    """The simulated cell loader, running 100x faster than the hardware."""
    from tandem.sim.cell_loader_ioc import CellLoaderIOC

    with ioc_factory.serve(CellLoaderIOC, options={"time_scale": 0.01}) as ioc:
        yield ioc
