"""Parked deliveries in Redis and the 429 pause shared by every worker:
workers as real processes, a real redis-server, a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from tests.cluster.harness import (
    HOOK,
    Role,
    alerts_path,
    cluster_home,
    delivered_ids,
    removed_after,
)
from tests.cluster.redis_server import RedisServer, free_port
from tests.e2e.harness import Receiver, append_alerts, until

pytestmark = pytest.mark.timeout(240)

STREAM = "wazuh-integrator:alerts"
GROUP = "wazuh-integrator"
ROWS = f"{STREAM}:parked:shuffle#0:rows"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def alert_ids(numbers: range) -> set[str]:
    return {f"1764262800.{number}" for number in numbers}


async def stop_all(*roles: Role) -> None:
    for role in roles:
        if role.process is not None and role.process.returncode is None:
            await role.stop()


async def all_parked_in_redis(redis_server: RedisServer, total: int, *roles: Role) -> None:
    """Wait until every entry is acknowledged and every alert is a parked row in Redis."""
    client = redis_server.client()
    try:
        for _ in range(1200):
            try:
                pending = (await client.xpending(STREAM, GROUP))["pending"]
                length = await client.xlen(STREAM)
            except Exception:  # no group yet
                pending, length = -1, 0
            if length == total and pending == 0 and await client.hlen(ROWS) == total:
                return
            await asyncio.sleep(0.1)
        logs = "\n".join(f"{role.name}:\n{role.log()[-2000:]}" for role in roles)
        raise AssertionError(f"never {total} parked rows ({await client.hlen(ROWS)})\n{logs}")
    finally:
        await client.aclose()


async def test_a_row_parked_by_a_killed_worker_is_delivered_by_a_worker_elsewhere(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    """Worker A parks (the receiver fails) and is SIGKILLed while it retries;
    worker B, on another machine's home (its own state database), delivers
    every row once the receiver is back."""
    receiver.script[HOOK] = [(503, {})]
    receiver.delay_s[HOOK] = 0.2  # A is killed with parked rows claimed, mid-retry
    home_a = cluster_home(redis_server.url, receiver, node="manager-a")
    home_b = cluster_home(redis_server.url, receiver, node="worker-b")
    with removed_after(home_a, home_b):
        append_alerts(alerts_path(home_a), range(100))
        first = Role(home_a, ["--role", "worker"], name="worker0")
        reader = Role(home_a, ["--role", "reader", "--from-start"], name="reader")
        second = Role(home_b, ["--role", "worker"], name="worker1")
        try:
            await first.start()
            await reader.start()
            await all_parked_in_redis(redis_server, 100, first, reader)
            assert delivered_ids(receiver) == {}
            assert first.process is not None
            first.process.send_signal(signal.SIGKILL)
            await first.wait()
            receiver.script[HOOK] = [(200, {})]
            receiver.delay_s[HOOK] = 0.0
            await second.start()
            await until(lambda: len(delivered_ids(receiver)) >= 100, 120, "100 alerts", second)
            await asyncio.sleep(1.0)  # a second delivery of any would show by now
        finally:
            await stop_all(reader, first, second)
        client = redis_server.client()
        try:
            left = await client.hlen(ROWS)
        finally:
            await client.aclose()
    received = delivered_ids(receiver)
    assert set(received) == alert_ids(range(100))
    assert max(received.values()) == 1, received.most_common(3)
    assert left == 0


async def worker_health(port: int) -> dict[str, object]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/health") as answer,
    ):
        return dict(await answer.json())


async def test_two_workers_never_send_one_parked_row_twice(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    """300 rows parked while the receiver failed; when it is back, two workers
    retry them side by side (slow answers, so that their retries overlap):
    every alert is received once, and both workers delivered some."""
    receiver.script[HOOK] = [(503, {})]
    ports = [free_port(), free_port()]
    homes = [
        cluster_home(
            redis_server.url,
            receiver,
            node=f"node-{n}",
            top_settings=f'metrics_address = "127.0.0.1:{port}"\n',
            # Claims of 8 rows (4 per send slot) at 0.1 s an answer: one worker
            # alone would take seconds, so both are at it together.
            extra_settings="concurrency = 2\n",
        )
        for n, port in enumerate(ports)
    ]
    reader_home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(reader_home, *homes):
        append_alerts(alerts_path(reader_home), range(300))
        workers = [
            Role(home, ["--role", "worker"], name=f"worker{n}") for n, home in enumerate(homes)
        ]
        reader = Role(reader_home, ["--role", "reader", "--from-start"], name="reader")
        try:
            for worker in workers:
                await worker.start()
            await reader.start()
            await all_parked_in_redis(redis_server, 300, reader, *workers)
            receiver.delay_s[HOOK] = 0.1
            receiver.script[HOOK] = [(200, {})]
            await until(lambda: len(delivered_ids(receiver)) >= 300, 180, "300", workers[1])
            await asyncio.sleep(1.0)
            delivered_by = []
            for port in ports:
                health = await worker_health(port)
                integrations = health["integrations"]
                assert isinstance(integrations, dict)
                delivered_by.append(integrations["shuffle#0"]["delivered_total"])
        finally:
            await stop_all(reader, *workers)
    received = delivered_ids(receiver)
    assert set(received) == alert_ids(range(300))
    assert max(received.values()) == 1, received.most_common(3)
    print(f"\ndelivered by each worker: {delivered_by}")
    assert all(count > 0 for count in delivered_by), delivered_by
    assert sum(delivered_by) == 300


class PausingReceiver:
    """Answers 200 after ``delay_s``, except the ``pause_at``-th request: 429
    with ``Retry-After: 2``. Records when each request arrived."""

    def __init__(self, pause_at: int, delay_s: float) -> None:
        self.pause_at = pause_at
        self.delay_s = delay_s
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, status answered)
        self.ids: Counter[str] = Counter()
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(HOOK, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        number = len(self.arrivals) + 1
        status = 429 if number == self.pause_at else 200
        self.arrivals.append((arrived, status))
        body = json.loads(await request.read())
        await asyncio.sleep(self.delay_s)
        if status == 429:
            return web.Response(status=429, headers={"Retry-After": "2"}, text="slow down")
        self.ids[str(body["id"])] += 1
        return web.Response(text="ok")


async def test_a_429_seen_by_one_worker_pauses_the_other(redis_server: RedisServer) -> None:
    """Two workers share 2,000 alerts; the 200th request is answered 429 with
    Retry-After: 2. Both stop sending for about 2 s (one of them was told, the
    other reads the pause from Redis), then deliver the rest."""
    paused = PausingReceiver(pause_at=200, delay_s=0.03)
    await paused.start()
    homes = [
        cluster_home(redis_server.url, paused, node=f"node-{n}")  # type: ignore[arg-type]
        for n in range(2)
    ]
    try:
        with removed_after(*homes):
            append_alerts(alerts_path(homes[0]), range(2000))
            workers = [
                Role(home, ["--role", "worker"], name=f"worker{n}") for n, home in enumerate(homes)
            ]
            reader = Role(homes[0], ["--role", "reader", "--from-start"], name="reader")
            try:
                for worker in workers:
                    await worker.start()
                for worker in workers:
                    await worker.wait_for_log("delivering from stream", 60)
                await reader.start()
                await until(lambda: sum(paused.ids.values()) >= 2000, 180, "2000", workers[1])
            finally:
                await stop_all(reader, *workers)
            logs = [worker.log() for worker in workers]
    finally:
        await paused.stop()
    assert set(paused.ids) == alert_ids(range(2000))
    told_at = next(at for at, status in paused.arrivals if status == 429)
    after = [at - told_at for at, _ in paused.arrivals if at > told_at]
    # Requests already on their way land at once; then nothing until the pause ends.
    during = [round(offset, 2) for offset in after if 0.5 <= offset <= 1.5]
    resumed = next((offset for offset in after if offset > 0.5), None)
    print(f"\nafter the 429: {len(after) - len(during)} requests, sending resumed at {resumed} s")
    assert during == [], during
    # Both workers were sending when it came: the stream was far from drained.
    assert len(after) > 1000
    assert sum("every worker waits" in log for log in logs) == 1, logs


async def test_parked_rows_outlive_a_redis_restart(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    """Rows parked in Redis (append-only file on) are retried after Redis was
    stopped and started again, each delivered once."""
    receiver.script[HOOK] = [(503, {})]
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(50))
        worker = Role(home, ["--role", "worker"], name="worker")
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        try:
            await worker.start()
            await reader.start()
            await all_parked_in_redis(redis_server, 50, worker, reader)
            await redis_server.stop()
            await worker.wait_for_log("is unreachable", 60)
            receiver.script[HOOK] = [(200, {})]
            await redis_server.start()
            await until(lambda: len(delivered_ids(receiver)) >= 50, 120, "50 alerts", worker)
            await asyncio.sleep(1.0)
        finally:
            await stop_all(reader, worker)
    received = delivered_ids(receiver)
    assert set(received) == alert_ids(range(50))
    assert max(received.values()) == 1, received.most_common(3)
