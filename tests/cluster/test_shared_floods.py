"""Throttle windows and digest batches shared by the workers, kept in a real
redis-server: the stage itself with several clients, then real readers and
workers."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as redis
from tests.cluster.harness import (
    Role,
    alerts_path,
    bodies,
    cluster_home,
    removed_after,
)
from tests.cluster.redis_server import RedisServer
from tests.e2e.harness import Receiver, make_alert, until

from wazuh_integrator.cluster.connection import Outage
from wazuh_integrator.cluster.floods import ClusterShaper, Decisions
from wazuh_integrator.config.models import DigestSettings, IntegrationSettings, ThrottleSettings

PREFIX = "wazuh-integrator:alerts"
GROUP = "wazuh-integrator"
AGENTS = ("001", "002", "003")
THROTTLE = '[integrations.shuffle.throttle]\nkey = ["agent.id"]\nwindow = "1h"\nlimit = 2\n'
DIGEST = (
    '[integrations.shuffle.digest]\ngroup_by = ["rule.id"]\ngroup_wait = "{wait}"\n'
    'group_interval = "1m"\nmax_alerts = 10\n'
)


def flood_alert(number: int) -> dict[str, Any]:
    alert = make_alert(number)
    alert["agent"] = {"id": AGENTS[number % 3], "name": f"web{number % 3}"}
    return alert


def append_flood(home: Path, numbers: range) -> None:
    with alerts_path(home).open("ab") as handle:
        handle.write(b"".join(orjson.dumps(flood_alert(n)) + b"\n" for n in numbers))


def outage() -> Outage:
    return Outage(logging.getLogger("test"), "redis://test", "waiting")


def stage(
    client: redis.Redis, settings: IntegrationSettings, lease_s: float = 30.0
) -> ClusterShaper:
    return ClusterShaper(
        "shuffle#0",
        settings,
        client=client,
        prefix=PREFIX,
        decisions=Decisions(client, PREFIX),
        lease_s=lease_s,
        outage=outage(),
    )


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[list[redis.Redis]]:
    made = [redis_server.client() for _ in range(3)]
    yield made
    for client in made:
        await client.aclose()


def entry(number: int) -> bytes:
    return f"1764262800000-{number}".encode()


async def test_three_stages_share_one_throttle(clients: list[redis.Redis]) -> None:
    settings = IntegrationSettings(throttle=ThrottleSettings(("agent.id",), 3600.0, 2))
    stages = [stage(client, settings) for client in clients]
    sent: list[dict[str, Any]] = []

    async def worker(index: int) -> None:
        for number in range(index, 10_000, 3):
            alert = flood_alert(number)
            shaped = await stages[index].shape_shared(alert, orjson.dumps(alert), entry(number))
            if shaped.alert is not None:
                sent.append(shaped.alert)
            else:
                assert shaped.reason is not None and "(limit 2)" in shaped.reason

    await asyncio.gather(*(worker(index) for index in range(3)))
    assert Counter(alert["agent"]["id"] for alert in sent) == {"001": 2, "002": 2, "003": 2}
    assert not any("suppressed" in alert for alert in sent)


async def test_an_entry_decided_again_gets_its_first_decision(clients: list[redis.Redis]) -> None:
    settings = IntegrationSettings(throttle=ThrottleSettings(("agent.id",), 3600.0, 1))
    first, claimer = stage(clients[0], settings), stage(clients[1], settings)
    alert = flood_alert(0)
    raw = orjson.dumps(alert)
    assert (await first.shape_shared(alert, raw, entry(0))).alert is not None
    assert (await first.shape_shared(alert, raw, entry(3))).alert is None
    # A worker died before acknowledging both: the claimer decides the same.
    assert (await claimer.shape_shared(alert, raw, entry(0))).alert is not None
    again = await claimer.shape_shared(alert, raw, entry(3))
    assert again.alert is None and again.reason is not None and "before a claim" in again.reason
    # Acknowledged entries leave no decision behind.
    decisions = Decisions(clients[2], PREFIX)
    names = [decisions.field(entry(n), "shuffle#0|throttle") for n in (0, 3)]
    assert await clients[2].hmget(decisions.key, names) != [None, None]
    pipeline = clients[2].pipeline(transaction=True)
    assert decisions.forget(pipeline, [entry(0), entry(3)])
    await pipeline.execute()
    assert await clients[2].exists(decisions.key) == 0


async def test_the_next_alert_sent_says_how_many_were_suppressed(
    clients: list[redis.Redis],
) -> None:
    settings = IntegrationSettings(throttle=ThrottleSettings(("agent.id",), 0.5, 1))
    one, other = stage(clients[0], settings), stage(clients[1], settings)
    alert = flood_alert(0)
    raw = orjson.dumps(alert)
    assert (await one.shape_shared(alert, raw, entry(0))).alert == alert
    for number in range(1, 5):
        assert (await other.shape_shared(alert, raw, entry(number * 3))).alert is None
    await asyncio.sleep(0.6)
    shaped = await one.shape_shared(alert, raw, entry(99))
    assert shaped.alert is not None
    assert shaped.alert["suppressed"]["count"] == 4
    assert shaped.alert["suppressed"]["since"].endswith("Z")


Submitted = list[tuple[dict[str, Any], Callable[[], None]]]


def collecting(into: Submitted) -> Callable[..., Any]:
    async def submit(document: dict[str, Any], raw: bytes, settled: Callable[[], None]) -> None:
        assert orjson.loads(raw) == document
        into.append((document, settled))

    return submit


async def test_two_stages_send_one_digest_counting_all(clients: list[redis.Redis]) -> None:
    settings = IntegrationSettings(digest=DigestSettings(("rule.id",), 0.5, 60.0, 10))
    stages = [stage(client, settings) for client in clients[:2]]
    sent: Submitted = []
    for number in range(500):
        alert = flood_alert(number)
        shaped = await stages[number % 2].shape_shared(alert, orjson.dumps(alert), entry(number))
        assert shaped.alert is None and shaped.digest == "rule.id=5712"
    # A claimed entry counted before is not counted again.
    await stages[1].shape_shared(flood_alert(0), orjson.dumps(flood_alert(0)), entry(0))
    # The senders start only now: a loaded machine may take longer than group_wait above.
    for shaper in stages:
        shaper.start(collecting(sent))
    try:
        await until(lambda: bool(sent), 20, "a digest")
        await asyncio.sleep(1.5)  # both senders looked again: nothing else is due
    finally:
        for shaper in stages:
            await shaper.stop()
    ((document, settled),) = sent
    assert document["count"] == 500
    assert len(document["alerts"]) == 10
    assert document["digest"] == {
        "group": "rule.id=5712",
        "fields": {"rule.id": "5712"},
        "integration": "shuffle#0",
    }
    settled()
    for shaper in stages:  # whichever sent it deletes it
        await shaper.flush_settled()
    assert await clients[0].hlen(f"{PREFIX}:digest:shuffle#0:sending") == 0


async def test_a_digest_whose_sender_died_is_sent_by_another(clients: list[redis.Redis]) -> None:
    settings = IntegrationSettings(digest=DigestSettings(("rule.id",), 0.2, 60.0, 10))
    dying, survivor = stage(clients[0], settings, 1.0), stage(clients[1], settings, 1.0)
    from_dying: Submitted = []
    from_survivor: Submitted = []
    for number in range(20):
        alert = flood_alert(number)
        await dying.shape_shared(alert, orjson.dumps(alert), entry(number))
    dying.start(collecting(from_dying))
    await until(lambda: bool(from_dying), 20, "the first send")
    await dying.stop()  # dies before its digest settles: the lease is not renewed
    survivor.start(collecting(from_survivor))
    try:
        await until(lambda: bool(from_survivor), 20, "the digest sent again")
        from_survivor[0][1]()  # settled: nobody sends it a third time
        await asyncio.sleep(2.5)
    finally:
        await survivor.stop()
    assert len(from_survivor) == 1
    assert from_survivor[0][0]["count"] == from_dying[0][0]["count"] == 20


async def test_a_digest_settled_after_its_stage_stopped_leaves_redis(
    clients: list[redis.Redis],
) -> None:
    """A block retired on reload stops its stage before its deliverer parks
    what it holds: the batch must still leave Redis, or it is sent again."""
    settings = IntegrationSettings(digest=DigestSettings(("rule.id",), 0.1, 60.0, 10))
    retired = stage(clients[0], settings)
    sent: Submitted = []
    alert = flood_alert(0)
    await retired.shape_shared(alert, orjson.dumps(alert), entry(0))
    retired.start(collecting(sent))
    await until(lambda: bool(sent), 20, "the digest")
    await retired.stop()
    sending = f"{PREFIX}:digest:shuffle#0:sending"
    assert await clients[1].hlen(sending) == 1
    sent[0][1]()  # parked by the deliverer's stop
    for _ in range(100):
        if await clients[1].hlen(sending) == 0:
            break
        await asyncio.sleep(0.05)
    assert await clients[1].hlen(sending) == 0


# -- real readers and workers -----------------------------------------------


async def settled_in_stream(client: redis.Redis, total: int) -> bool:
    try:
        groups = await client.xinfo_groups(PREFIX)
    except redis.ResponseError:  # no stream yet
        return False
    for group in groups:
        if group["name"] == GROUP.encode():
            return int(group["entries-read"] or 0) >= total and int(group["pending"]) == 0
    return False


async def wait_settled(client: redis.Redis, total: int, timeout_s: float, role: Role) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await settled_in_stream(client, total):
        assert loop.time() < deadline, f"{total} entries not all acknowledged\n{role.log()[-3000:]}"
        await asyncio.sleep(0.2)


async def stop_all(*roles: Role) -> None:
    for role in roles:
        if role.process is not None:
            await role.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.timeout(300)
async def test_three_workers_throttle_10000_alerts_of_3_keys_to_6(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    home = cluster_home(redis_server.url, receiver, node="manager-a", extra_settings=THROTTLE)
    client = redis_server.client()
    with removed_after(home):
        append_flood(home, range(10_000))
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(3)]
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        try:
            for worker in workers:
                await worker.start()
            await reader.start()
            await wait_settled(client, 10_000, 240, workers[0])
            await asyncio.sleep(0.5)  # a delivery decided last may still be on its way
        finally:
            await stop_all(reader, *workers)
            await client.aclose()
        assert [worker.process.returncode for worker in workers if worker.process] == [0, 0, 0]
        logs = "".join(worker.log() for worker in workers)
        assert "not applied" not in logs
        assert "secret-token" not in logs
    assert Counter(body["all_fields"]["agent"]["id"] for body in bodies(receiver)) == {
        "001": 2,
        "002": 2,
        "003": 2,
    }


@pytest.mark.timeout(300)
async def test_a_filter_alone_narrows_in_a_worker(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    narrowing = '[integrations.shuffle.filter]\nagents = ["001"]\n'
    home = cluster_home(redis_server.url, receiver, node="manager-a", extra_settings=narrowing)
    client = redis_server.client()
    with removed_after(home):
        append_flood(home, range(30))
        worker = Role(home, ["--role", "worker"], name="worker")
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        try:
            await worker.start()
            await reader.start()
            await wait_settled(client, 30, 120, worker)
            await asyncio.sleep(0.5)
        finally:
            await stop_all(reader, worker)
            await client.aclose()
    agents = Counter(body["all_fields"]["agent"]["id"] for body in bodies(receiver))
    assert agents == {"001": 10}


async def digest_of_500_with_two_workers(
    redis_server: RedisServer, receiver: Receiver, *, kill: bool
) -> None:
    wait = "20s" if kill else "10s"  # all 500 in, the kill's claims too, before it is due
    home = cluster_home(
        redis_server.url, receiver, node="manager-a", extra_settings=DIGEST.format(wait=wait)
    )
    open_batch = f"{PREFIX}:digest:shuffle#0:open:rule.id=5712"
    client = redis_server.client()
    with removed_after(home):
        alerts_path(home).write_bytes(b"")
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(2)]
        reader = Role(home, ["--role", "reader"], name="reader")
        try:
            for worker in workers:
                await worker.start()
                await worker.wait_for_log("delivering from stream", 60)
            await reader.start()
            await reader.wait_for_log("Reading", 60)
            for chunk in range(10):  # a trickle, so that both workers count some
                append_flood(home, range(chunk * 50, chunk * 50 + 50))
                await asyncio.sleep(0.3)
                if kill and chunk == 4:
                    victim = workers[0]
                    assert victim.process is not None
                    victim.process.send_signal(signal.SIGKILL)
                    await victim.wait()
            await wait_settled(client, 500, 120, workers[1])
            if kill:  # settled before the batch is due: counted, and not sent yet
                counted = int(await client.hget(open_batch, "count") or 0)
                assert counted == 500, workers[1].log()[-3000:]
            await until(lambda: bool(bodies(receiver)), 60, "the digest", workers[1])
            await asyncio.sleep(1.5)  # no second digest follows
        finally:
            await stop_all(reader, *workers)
            await client.aclose()
    (digest,) = bodies(receiver)
    assert digest["count"] == 500
    assert digest["digest"]["group"] == "rule.id=5712"
    assert len(digest["alerts"]) == 10


@pytest.mark.timeout(300)
async def test_two_workers_send_one_digest_counting_500(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    await digest_of_500_with_two_workers(redis_server, receiver, kill=False)


@pytest.mark.soak
@pytest.mark.timeout(300)
async def test_one_digest_counting_500_when_a_worker_is_killed_midway(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    await digest_of_500_with_two_workers(redis_server, receiver, kill=True)
