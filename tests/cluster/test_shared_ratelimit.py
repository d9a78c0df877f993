"""Rate limits shared by every worker, kept in a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from tests.cluster.harness import HOOK, Role, alerts_path, cluster_home, removed_after
from tests.cluster.redis_server import RedisServer
from tests.e2e.harness import Receiver, append_alerts, until

from wazuh_integrator.cluster.connection import Outage
from wazuh_integrator.cluster.ratelimit import RedisLimits, window_ms
from wazuh_integrator.config.models import RateLimit


def most_in_any_window(times: list[float], period_s: float) -> int:
    """The largest number of ``times`` inside any half-open window of ``period_s``."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - period_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_most_in_any_window_counts_sliding_windows() -> None:
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert most_in_any_window([], 1.0) == 0


def test_the_window_is_held_a_little_longer_than_its_period() -> None:
    assert window_ms(RateLimit(20, 60.0)) == 60_600
    assert window_ms(RateLimit(4, 86_400.0)) == 86_401_000  # at most a second more


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[list[redis.Redis]]:
    made = [redis_server.client() for _ in range(3)]
    yield made
    for client in made:
        await client.aclose()


async def test_three_limiters_share_one_window(clients: list[redis.Redis]) -> None:
    limits = [RateLimit(5, 1.0), RateLimit(8, 3.0)]
    outage = Outage(logging.getLogger("test"), "redis://test", "waiting")
    limiters = [RedisLimits(client, "t", "slack#0", limits, outage) for client in clients]
    granted: list[float] = []
    deadline = time.monotonic() + 4.0

    async def hammer(limiter: RedisLimits) -> None:
        while time.monotonic() < deadline:
            wait_s = await limiter.try_acquire()
            if wait_s == 0:
                granted.append(time.monotonic())
            else:
                await asyncio.sleep(min(wait_s, max(0.0, deadline - time.monotonic())))

    await asyncio.gather(*(hammer(limiter) for limiter in limiters for _ in range(3)))
    assert most_in_any_window(granted, 1.0) <= 5
    assert most_in_any_window(granted, 3.0) <= 8
    assert len(granted) >= 8  # the limiters granted, not only refused


async def test_an_unreachable_redis_grants_nothing(redis_server: RedisServer) -> None:
    client = redis_server.client()
    try:
        outage = Outage(logging.getLogger("test"), "redis://test", "waiting")
        limiter = RedisLimits(client, "t", "slack#0", [RateLimit(5, 1.0)], outage)
        assert await limiter.try_acquire() == 0
        await redis_server.stop()
        assert await limiter.try_acquire() > 0
        assert outage.ongoing
    finally:
        await client.aclose()


class ArrivalLog(Receiver):
    """A receiver that also notes when each body arrived."""

    arrivals: list[float]

    async def _handle(self, request):  # type: ignore[no-untyped-def]
        self.arrivals.append(time.monotonic())
        return await super()._handle(request)


async def three_workers_under_one_limit(
    redis_server: RedisServer, rate: str, period_s: float, total: int, timeout_s: float
) -> list[float]:
    receiver = ArrivalLog()
    receiver.arrivals = []
    await receiver.start()
    home = cluster_home(
        redis_server.url,
        receiver,
        node="manager-a",
        extra_settings=f'rate_limit = "{rate}"\nconcurrency = 4\n',
    )
    with removed_after(home):
        append_alerts(alerts_path(home), range(total))
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(3)]
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        try:
            for role in (*workers, reader):
                await role.start()
            await until(
                lambda: len(receiver.received.get(HOOK, [])) >= total,
                timeout_s,
                f"{total} deliveries",
                workers[0],
            )
        finally:
            for role in (reader, *workers):
                await role.stop()
            await receiver.stop()
    return receiver.arrivals


@pytest.mark.timeout(240)
async def test_three_workers_hold_ten_a_second_together(redis_server: RedisServer) -> None:
    arrivals = await three_workers_under_one_limit(redis_server, "10/s", 1.0, 45, 180)
    assert most_in_any_window(arrivals, 1.0) <= 10
    assert arrivals[-1] - arrivals[0] >= 4.0  # 45 at 10 a second cannot be faster


@pytest.mark.soak
@pytest.mark.timeout(300)
async def test_three_workers_hold_twenty_a_minute_together(redis_server: RedisServer) -> None:
    arrivals = await three_workers_under_one_limit(redis_server, "20/minute", 60.0, 26, 200)
    assert most_in_any_window(arrivals, 60.0) <= 20
    assert arrivals[20] - arrivals[0] >= 60.0
    spread_s = arrivals[20] - arrivals[0]
    print(f"\n26 alerts at 20/minute, 3 workers: the 21st came {spread_s:.1f} s after the first")
