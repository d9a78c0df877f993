"""RedisParkedRows against a real redis-server: claims are exclusive, a lapsed
claim comes back, rows given back keep or change their due time, and
``status`` counts the cluster's rows."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from tests.cluster.harness import cluster_home, removed_after
from tests.cluster.redis_server import RedisServer
from tests.e2e.harness import Receiver

from wazuh_integrator.cluster.parked import RedisParkedRows
from wazuh_integrator.store import ParkState, StateStore

pytestmark = pytest.mark.timeout(60)

PREFIX = "wazuh-integrator:alerts"
KEY = "shuffle#0"


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    connection = redis_server.client()
    yield connection
    await connection.aclose()


def park(rows: RedisParkedRows, number: int, *, due: float, attempts: int = 1) -> None:
    rows.park(
        KEY,
        b'{"id": "%d"}' % number,
        attempts=attempts,
        first_failed_at=1.0,
        next_attempt_at=due,
        last_error="HTTP 503",
    )


async def test_a_parked_row_is_written_only_by_flush(client: redis.Redis) -> None:
    rows = RedisParkedRows(client, PREFIX, claim_s=30)
    park(rows, 1, due=10.0)
    assert await rows.count(KEY) == 0
    await rows.flush()
    assert await rows.count(KEY) == 1
    assert await rows.next_due_at(KEY) == 10.0
    (row,) = await rows.claim_due(KEY, now=10.0, limit=5)
    assert (row.alert, row.attempts, row.first_failed_at, row.next_attempt_at, row.last_error) == (
        b'{"id": "1"}',
        1,
        1.0,
        10.0,
        "HTTP 503",
    )


async def test_rows_parked_together_are_written_by_one_flush(client: redis.Redis) -> None:
    rows = RedisParkedRows(client, PREFIX, claim_s=30)
    alerts = [b'{"id": "%d"}' % number for number in range(5)]
    rows.park_many(KEY, alerts, ParkState(0, 2.0, 2.0, "not attempted: the queue was full"))
    assert await rows.count(KEY) == 0
    await rows.flush()
    claimed = await rows.claim_due(KEY, now=2.0, limit=10)
    assert sorted(row.alert for row in claimed) == alerts
    assert {(row.attempts, row.next_attempt_at, row.last_error) for row in claimed} == {
        (0, 2.0, "not attempted: the queue was full")
    }


async def test_two_workers_claiming_at_once_never_take_one_row_twice(client: redis.Redis) -> None:
    first = RedisParkedRows(client, PREFIX, claim_s=30)
    second = RedisParkedRows(client, PREFIX, claim_s=30)
    for number in range(200):
        park(first, number, due=float(number))
    await first.flush()
    claims = await asyncio.gather(
        *(rows.claim_due(KEY, now=1e12, limit=7) for _ in range(20) for rows in (first, second))
    )
    ids = [row.id for batch in claims for row in batch]
    assert len(ids) == len(set(ids)) == 200
    # Claimed rows are not due for anyone, and still counted.
    assert await first.next_due_at(KEY) is None
    assert await second.count(KEY) == 200


async def test_a_lapsed_claim_is_due_again_and_a_held_one_is_renewed(client: redis.Redis) -> None:
    dead = RedisParkedRows(client, PREFIX, claim_s=1)
    living = RedisParkedRows(client, PREFIX, claim_s=1)
    park(dead, 1, due=5.0)
    park(living, 2, due=5.0)
    await dead.flush()
    await living.flush()
    (kept,) = await living.claim_due(KEY, now=5.0, limit=1)
    (lost,) = await dead.claim_due(KEY, now=5.0, limit=1)
    for _ in range(6):  # 1.5 s: past the 1 s claim of the row nobody renews
        await asyncio.sleep(0.25)
        await living.renew_claims()
    other = RedisParkedRows(client, PREFIX, claim_s=30)
    assert await other.next_due_at(KEY) is not None
    taken = await other.claim_due(KEY, now=1e12, limit=10)
    assert [row.id for row in taken] == [lost.id]
    assert other.taken_over == 1
    assert kept.id != lost.id


async def test_an_abandoned_claim_lapses_while_the_held_ones_are_renewed(
    client: redis.Redis,
) -> None:
    """A row the retry loop could not give back (Redis was away) is abandoned:
    the worker stops renewing its claim, so another worker retries it."""
    rows = RedisParkedRows(client, PREFIX, claim_s=1)
    park(rows, 1, due=5.0)
    park(rows, 2, due=6.0)
    await rows.flush()
    kept, dropped = await rows.claim_due(KEY, now=10.0, limit=10)
    rows.abandon(dropped)
    for _ in range(6):  # 1.5 s: past the 1 s claim
        await asyncio.sleep(0.25)
        await rows.renew_claims()
    other = RedisParkedRows(client, PREFIX, claim_s=30)
    assert [row.id for row in await other.claim_due(KEY, now=1e12, limit=10)] == [dropped.id]
    assert kept.id != dropped.id


async def test_rows_given_back(client: redis.Redis) -> None:
    rows = RedisParkedRows(client, PREFIX, claim_s=30)
    park(rows, 1, due=5.0)
    park(rows, 2, due=6.0)
    park(rows, 3, due=7.0)
    await rows.flush()
    one, two, three = await rows.claim_due(KEY, now=10.0, limit=10)
    await rows.release(one)
    await rows.reschedule(two, attempts=2, next_attempt_at=50.0, last_error="HTTP 502")
    await rows.remove(three)
    assert await rows.count(KEY) == 2
    assert [row.id for row in await rows.claim_due(KEY, now=10.0, limit=10)] == [one.id]
    (again,) = await rows.claim_due(KEY, now=50.0, limit=10)
    assert (again.id, again.attempts, again.last_error) == (two.id, 2, "HTTP 502")


async def test_bring_forward_moves_only_rows_tried_before(client: redis.Redis) -> None:
    rows = RedisParkedRows(client, PREFIX, claim_s=30)
    park(rows, 1, due=100.0, attempts=3)
    park(rows, 2, due=100.0, attempts=0)  # waits for a rate limit, never tried
    await rows.flush()
    assert await rows.bring_forward(KEY, now=20.0) == 1
    (due,) = await rows.claim_due(KEY, now=20.0, limit=10)
    assert due.alert == b'{"id": "1"}'


async def test_release_held_gives_back_every_claimed_row(client: redis.Redis) -> None:
    rows = RedisParkedRows(client, PREFIX, claim_s=30)
    for number in range(5):
        park(rows, number, due=1.0)
    await rows.flush()
    assert len(await rows.claim_due(KEY, now=2.0, limit=10)) == 5
    assert await rows.release_held() == 5
    other = RedisParkedRows(client, PREFIX, claim_s=30)
    assert len(await other.claim_due(KEY, now=1e12, limit=10)) == 5


async def test_rows_the_state_store_holds_move_to_redis(
    client: redis.Redis, tmp_path: Path
) -> None:
    with StateStore(tmp_path / "state.db") as store:
        for number in range(3):
            store.park(
                KEY,
                b'{"id": "%d"}' % number,
                attempts=1,
                first_failed_at=1.0,
                next_attempt_at=2.0,
                last_error="HTTP 503",
            )
        rows = RedisParkedRows(client, PREFIX, claim_s=30)
        assert await rows.take_over(store, [KEY, "slack#1"]) == 3
        assert store.count_parked() == 0
    assert await rows.count(KEY) == 3


async def test_status_counts_the_clusters_parked_rows(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    rows = RedisParkedRows(client, PREFIX, claim_s=30)
    for number in range(3):
        park(rows, number, due=1.0)
    await rows.flush()
    home = cluster_home(redis_server.url, Receiver(port=1))
    with removed_after(home):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wazuh_integrator",
            "--home",
            str(home),
            "status",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    shown = out.decode() + err.decode()
    assert f"Parked      the cluster's, in Redis at {redis_server.url}" in shown, shown
    (line,) = [line for line in out.decode().splitlines() if line.startswith(KEY)]
    assert line.split()[3] == "3", shown
