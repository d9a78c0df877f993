from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.cluster.redis_server import RedisServer, require_redis_server
from tests.e2e import harness

receiver = harness.receiver


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer(require_redis_server())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        server.remove()
