"""Fixtures of the delivery tests: a receiver, an HTTP session, a real store
and metrics, and the harness that builds deliverers on them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from tests.delivery.support import Harness, Receiver
from tests.integrations.transport_support import ready_session

from wazuh_integrator.integrations.sessions import HttpSessions
from wazuh_integrator.integrations.transport import processes_for
from wazuh_integrator.metrics import Metrics
from wazuh_integrator.store import StateStore


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # The daemon's own session: webhooks go through its lean HTTP/1.1 pool,
    # in an HTTP transport process where the daemon would use one (http_processes = "auto").
    async with HttpSessions(processes_for(None)) as sessions:
        yield await ready_session(sessions)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.db") as state:
        yield state


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def harness(
    tmp_path: Path, http: aiohttp.ClientSession, store: StateStore, metrics: Metrics
) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, http, store, metrics)
    yield h
    for deliverer in h.deliverers:
        await deliverer.stop(0.0)
