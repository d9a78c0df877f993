"""The intake: the queue, the overflow of raw lines, the spill to the store.

Each runs the real deliverer, store and metrics against a local receiver or
a scripted integration (tests/delivery/support.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
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
from wazuh_integrator.delivery import Deliverer
from wazuh_integrator.delivery.intake import HOLD_AT_MOST_S, RECHECK_S, SPILL_AFTER_S, IntakeGroup


async def stuck_deliverer(
    harness: Harness, receiver: Receiver, *, queue_size: int = 1, first: int = 0, **make: Any
) -> Deliverer:
    """A started deliverer whose one worker hangs on delivery ``first``: what
    is submitted next fills its queue, then its overflow. ``make``: more of
    :meth:`Harness.make` (``overflow_bytes``, ``intake_group``, ``index``)."""
    receiver.default = Answer(hang=True)
    settings = IntegrationSettings(concurrency=1, queue_size=queue_size)
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings, **make)
    await deliverer.start()
    await deliverer.submit(harness.delivery(first))
    await until(lambda: receiver.attempts == 1, "the worker busy")
    return deliverer


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
    one_line = len(harness.delivery(0).raw)
    deliverer = await stuck_deliverer(harness, receiver, queue_size=2, overflow_bytes=2 * one_line)
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


async def test_alone_in_its_group_a_full_queue_holds_the_reader_instead_of_spilling(
    harness: Harness, receiver: Receiver
) -> None:
    """A receiver slower than SPILL_AFTER_S per answer, but answering: with
    no other integration to starve, the submits wait for room, and nothing
    goes through the overflow or the store."""
    receiver.default = Answer(delay_s=4 * SPILL_AFTER_S)
    settings = IntegrationSettings(concurrency=1, queue_size=1)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, intake_group=IntakeGroup()
    )
    await deliverer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for number in range(5):
        await deliverer.submit(harness.delivery(number))
        assert deliverer.stats()["queued"] <= 1
    # Three of them waited for an answer each: the reader was held.
    assert loop.time() - started >= 2 * 4 * SPILL_AFTER_S
    await deliverer.join()
    assert sorted(receiver.accepted) == [f"1764262800.{n}" for n in range(5)]
    assert deliverer.stats()["parked_total"] == 0
    assert harness.store.count_parked(deliverer.key) == 0


async def test_a_full_queue_holds_the_reader_while_the_others_have_work(
    harness: Harness, receiver: Receiver
) -> None:
    """The reader waits on one integration's full queue while the other
    still has a quarter of its queue to do, and stops waiting (to the
    overflow) once the other has drained below that."""
    other_receiver = Receiver()
    await other_receiver.start()
    try:
        receiver.default = Answer(hang=True)
        other_receiver.default = Answer(hang=True)
        group = IntakeGroup()
        slow = harness.make(
            PostIntegration,
            url=receiver.url(),
            settings=IntegrationSettings(concurrency=1, queue_size=1),
            index=0,
            intake_group=group,
        )
        other = harness.make(
            PostIntegration,
            url=other_receiver.url(),
            settings=IntegrationSettings(concurrency=1, queue_size=4),
            index=1,
            intake_group=group,
        )
        await slow.start()
        await other.start()
        await slow.submit(harness.delivery(0))
        await other.submit(harness.delivery(100))
        await until(lambda: receiver.attempts == 1, "the slow worker busy")
        await until(lambda: other_receiver.attempts == 1, "the other worker busy")
        await submit_all(other, harness, range(101, 105))
        await slow.submit(harness.delivery(1))
        held = asyncio.ensure_future(slow.submit(harness.delivery(2)))
        await asyncio.sleep(4 * SPILL_AFTER_S)
        assert not held.done(), "the other has work: the reader waits"
        other_receiver.released.set()
        await asyncio.wait_for(held, 5)
        assert slow.stats()["queued"] == 2  # one in the queue, one in the overflow
        assert receiver.attempts == 1
        await until(lambda: len(other_receiver.accepted) == 5, "the other's alerts delivered")
        receiver.released.set()
    finally:
        await other_receiver.stop()


async def test_a_queue_that_makes_no_room_holds_the_reader_a_second_at_most(
    harness: Harness, receiver: Receiver
) -> None:
    deliverer = await stuck_deliverer(harness, receiver, intake_group=IntakeGroup())
    await deliverer.submit(harness.delivery(1))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(deliverer.submit(harness.delivery(2)), 10 * HOLD_AT_MOST_S)
    assert loop.time() - started >= HOLD_AT_MOST_S
    assert deliverer.stats()["queued"] == 2  # the second in the queue, the third in the overflow
    receiver.released.set()


async def test_a_spill_writes_a_sixteenth_of_the_overflow_at_once(
    harness: Harness, receiver: Receiver
) -> None:
    one_line = len(harness.delivery(100).raw)  # 100 to 199: lines of one length
    deliverer = await stuck_deliverer(
        harness, receiver, queue_size=1, overflow_bytes=64 * one_line, first=100
    )
    # One in the queue, then 64 lines fill the overflow to its limit exactly.
    await submit_all(deliverer, harness, range(101, 166))
    assert harness.store.count_parked(deliverer.key) == 0
    # The next goes past the limit: the oldest are spilled until a sixteenth
    # of the limit (4 lines) is free, in one write.
    await deliverer.submit(harness.delivery(166))
    spilled = parked_rows(harness.store, deliverer.key)
    assert sorted(orjson.loads(row.alert)["id"] for row in spilled) == [
        f"1764262800.{n}" for n in range(102, 107)
    ]
    assert all(row.attempts == 0 and "queue was full" in row.last_error for row in spilled)
    assert deliverer.stats()["queued"] == 1 + 60
    assert harness.outcome(deliverer, "parked") == 5
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(102, 107)}
    # Below the limit again, the next ones wait in the overflow.
    await submit_all(deliverer, harness, range(167, 171))
    assert harness.store.count_parked(deliverer.key) == 5


async def test_a_spill_the_store_refuses_leaves_the_alerts_behind_the_checkpoint(
    harness: Harness, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    one_line = len(harness.delivery(0).raw)
    deliverer = await stuck_deliverer(harness, receiver, queue_size=1, overflow_bytes=2 * one_line)
    await submit_all(deliverer, harness, range(1, 4))
    harness.store.close()  # a store that takes no more writes

    # The reader is not stopped by it: the spilled alert is abandoned, not
    # settled (the checkpoint stays before it), and said so.
    await deliverer.submit(harness.delivery(4))
    assert "1764262800.2" not in harness.settled
    assert harness.outcome(deliverer, "failed") == 1
    assert "will be read again after a restart" in caplog.text
    assert deliverer.stats()["queued"] == 3


async def test_a_wait_ends_once_another_that_had_work_runs_dry(
    harness: Harness, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader waits on a full queue while the other integration has work;
    once the other has none left, the wait ends at once (the next look, not
    SPILL_AFTER_S later: it is made far longer here, so only that rule can
    end it), and the alert goes to the overflow."""
    monkeypatch.setattr("wazuh_integrator.delivery.intake.SPILL_AFTER_S", 60.0)
    fast_receiver = Receiver()
    await fast_receiver.start()
    try:
        group = IntakeGroup()
        slow = await stuck_deliverer(harness, receiver, intake_group=group, index=0)
        fast_receiver.default = Answer(hang=True)
        fast = harness.make(
            PostIntegration,
            url=fast_receiver.url(),
            settings=IntegrationSettings(concurrency=1, queue_size=8),
            index=1,
            intake_group=group,
        )
        await fast.start()
        await submit_all(fast, harness, range(100, 103))  # one sent (hanging), two queued
        await until(lambda: fast_receiver.attempts == 1, "the fast worker busy")
        await slow.submit(harness.delivery(1))  # fills the slow queue
        held = asyncio.ensure_future(slow.submit(harness.delivery(2)))
        await asyncio.sleep(4 * RECHECK_S)
        assert not held.done(), "the other still has work: the reader waits"
        fast_receiver.released.set()
        await until(lambda: len(fast_receiver.accepted) == 3, "the fast one drained")
        await asyncio.wait_for(held, 5)
        assert slow.stats()["queued"] == 2  # one in the queue, one in the overflow
        assert harness.store.count_parked(slow.key) == 0
    finally:
        receiver.released.set()
        await fast_receiver.stop()
