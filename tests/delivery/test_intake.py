"""The intake: the queue, the overflow of raw lines, the spill to the store.

Each runs the real deliverer, store and metrics against a local receiver or
a scripted integration (tests/delivery/support.py).
"""

from __future__ import annotations

import asyncio

import orjson
from tests.delivery.support import (
    Answer,
    Harness,
    PostIntegration,
    Receiver,
    ScriptedIntegration,
    parked_rows,
    submit_all,
    until,
)

from wazuh_integrator.config.models import IntegrationSettings


async def test_deliveries_arrive_and_settle_once(harness: Harness, receiver: Receiver) -> None:
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await submit_all(deliverer, harness, range(5))
    await deliverer.join()
    assert sorted(receiver.accepted) == [f"1764262800.{n}" for n in range(5)]
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(5)}
    assert deliverer.stats()["delivered_total"] == 5
    assert harness.outcome(deliverer, "delivered") == 5
    attempts = harness.metrics.delivery_attempts_total.labels(integration=deliverer.key)
    assert attempts.value == 5
    assert harness.metrics.delivery_seconds.labels(integration=deliverer.key).count == 5


async def test_past_the_queue_deliveries_wait_in_the_overflow_then_in_the_store(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    settings = IntegrationSettings(concurrency=1, queue_size=2)
    one_line = len(harness.delivery(0).raw)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, overflow_bytes=2 * one_line
    )
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the worker busy")
    # The reader never waits: 2 fill the queue, 2 the overflow, and the
    # oldest overflow ones go to the store, untried, as more arrive.
    await submit_all(deliverer, harness, range(1, 8))
    assert deliverer.stats()["queued"] == 4
    spilled = parked_rows(harness.store, deliverer.key)
    assert sorted(orjson.loads(row.alert)["id"] for row in spilled) == [
        f"1764262800.{n}" for n in range(3, 6)
    ]
    assert all(row.attempts == 0 and "queue was full" in row.last_error for row in spilled)
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(3, 6)}
    assert harness.metrics.queue_depth.labels(integration=deliverer.key).value == 4
    receiver.released.set()
    await until(lambda: len(receiver.accepted) == 8, "every alert delivered")
    assert sorted(receiver.accepted) == [f"1764262800.{n}" for n in range(8)]
    await deliverer.join()
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(8)}
    await until(lambda: harness.store.count_parked(deliverer.key) == 0, "the store emptied")


async def test_stop_parks_what_waits_in_the_overflow(harness: Harness, receiver: Receiver) -> None:
    receiver.default = Answer(hang=True)
    settings = IntegrationSettings(concurrency=1, queue_size=1)
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the worker busy")
    await submit_all(deliverer, harness, range(1, 4))
    await deliverer.stop(grace_s=0.1)
    await asyncio.wait_for(deliverer.join(), 5)
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(4)}
    rows = parked_rows(harness.store, deliverer.key)
    assert sorted(orjson.loads(row.alert)["id"] for row in rows) == [
        f"1764262800.{n}" for n in range(4)
    ]


async def test_a_slow_integration_does_not_slow_another(
    harness: Harness, receiver: Receiver
) -> None:
    fast_receiver = Receiver()
    await fast_receiver.start()
    try:
        receiver.default = Answer(hang=True)
        slow = harness.make(
            PostIntegration,
            url=receiver.url(),
            settings=IntegrationSettings(concurrency=1, queue_size=1),
            index=0,
        )
        fast = harness.make(PostIntegration, url=fast_receiver.url(), index=1)
        await slow.start()
        await fast.start()
        await submit_all(slow, harness, range(2))
        await submit_all(fast, harness, range(100, 150))
        await fast.join()
        assert len(fast_receiver.accepted) == 50
        assert receiver.accepted == []
        assert slow.stats()["in_flight"] == 1
    finally:
        await fast_receiver.stop()


async def test_join_with_nothing_submitted_returns(harness: Harness) -> None:
    deliverer = harness.make(ScriptedIntegration)
    await deliverer.start()
    await asyncio.wait_for(deliverer.join(), timeout=5)
    assert deliverer.stats()["delivered_total"] == 0
