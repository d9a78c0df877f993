"""Redis misbehaving under a running reader and worker: out of memory (OOM
errors on writes), slow to answer (DEBUG SLEEP). Every alert arrives once
Redis behaves again; neither role stops."""

from __future__ import annotations

import asyncio
import signal

import pytest
from tests.cluster.harness import (
    HOOK,
    Role,
    alerts_path,
    cluster_home,
    delivered_ids,
    removed_after,
)
from tests.cluster.redis_server import RedisServer
from tests.e2e.harness import Receiver, append_alerts, until

pytestmark = pytest.mark.timeout(240)

STREAM = "wazuh-integrator:alerts"


def alert_ids(numbers: range) -> set[str]:
    return {f"1764262800.{number}" for number in numbers}


async def test_redis_out_of_memory_is_waited_out(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(100))
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        worker = Role(home, ["--role", "worker"], name="worker")
        client = redis_server.client()
        try:
            await worker.start()
            await worker.wait_for_log("delivering from stream", 60)
            await reader.start()
            await until(lambda: len(delivered_ids(receiver)) >= 100, 60, "the first 100", worker)
            await client.config_set("maxmemory-policy", "noeviction")
            await client.config_set("maxmemory", "1")
            append_alerts(alerts_path(home), range(100, 200))
            await reader.wait_for_log("maxmemory", 60)
            await asyncio.sleep(3)  # workers' loops meet the OOM errors too
            for role in (reader, worker):
                assert role.process is not None and role.process.returncode is None, role.log()
            await client.config_set("maxmemory", "0")
            await until(lambda: len(delivered_ids(receiver)) >= 200, 90, "all 200", worker)
        finally:
            await client.aclose()
            for role in (reader, worker):
                if role.process is not None and role.process.returncode is None:
                    await role.stop()
        assert set(delivered_ids(receiver)) == alert_ids(range(200))
        assert "Worker stopping" not in worker.log()


async def test_a_worker_parking_while_redis_is_out_of_memory_waits(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    """Parked rows are written by Lua scripts, which Redis refuses with OOM."""
    receiver.script[HOOK] = [(503, {})]
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(100))
        reader = Role(home, ["--role", "reader", "--from-start", "--once"], name="reader")
        worker = Role(home, ["--role", "worker"], name="worker")
        client = redis_server.client()
        try:
            await reader.start()
            assert await reader.wait(60) == 0, reader.log()
            assert await client.xlen(STREAM) == 100
            await client.xgroup_create(STREAM, "wazuh-integrator", id="0")
            await client.config_set("maxmemory-policy", "noeviction")
            await client.config_set("maxmemory", "1")
            await worker.start()
            await worker.wait_for_log("maxmemory", 60)  # Redis refused the parked rows
            await asyncio.sleep(5)  # longer than claim_idle: the worker keeps its entries
            assert worker.process is not None and worker.process.returncode is None, worker.log()
            assert "Claimed" not in worker.log()
            await client.config_set("maxmemory", "0")
            receiver.script[HOOK] = [(200, {})]
            await until(lambda: len(delivered_ids(receiver)) >= 100, 120, "all 100", worker)
        finally:
            await client.aclose()
            for role in (reader, worker):
                if role.process is not None and role.process.returncode is None:
                    await role.stop()
        received = delivered_ids(receiver)
        assert set(received) == alert_ids(range(100))
        assert max(received.values()) == 1  # each parked once, delivered once
        assert "Worker stopping" not in worker.log()


async def test_after_an_outage_longer_than_claim_idle_no_worker_claims_a_live_ones_entries(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    """Every pending entry looks idle once Redis is back from an outage longer
    than claim_idle: the first worker back must not take (and deliver again)
    what the other, alive, still holds."""
    receiver.delay_s[HOOK] = 0.2  # entries stay in flight across the outage
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(600))
        reader = Role(home, ["--role", "reader", "--from-start", "--once"], name="reader")
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(2)]
        try:
            await reader.start()
            assert await reader.wait(60) == 0, reader.log()
            for worker in workers:
                await worker.start()
            await until(lambda: len(delivered_ids(receiver)) >= 100, 60, "100", workers[0])
            assert redis_server.process is not None
            redis_server.process.send_signal(signal.SIGSTOP)  # as a network partition
            await asyncio.sleep(4)  # twice claim_idle
            redis_server.process.send_signal(signal.SIGCONT)
            await until(lambda: len(delivered_ids(receiver)) >= 600, 120, "all 600", workers[0])
            await asyncio.sleep(3)  # a late claim would deliver again now
        finally:
            for role in (reader, *workers):
                if role.process is not None and role.process.returncode is None:
                    await role.stop()
        received = delivered_ids(receiver)
        assert set(received) == alert_ids(range(600))
        claims = [worker.log().count("Claimed") for worker in workers]
        duplicates = sum(received.values()) - len(received)
        assert (claims, duplicates) == ([0, 0], 0)
