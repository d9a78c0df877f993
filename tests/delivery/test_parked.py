"""The parked-retry loop: retries from the store, max_retry_age, other processes.

Each runs the real deliverer, store and metrics against a local receiver or
a scripted integration (tests/delivery/support.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
from tests.delivery.support import (
    Answer,
    Harness,
    PostIntegration,
    Receiver,
    ScriptedIntegration,
    until,
)

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import Transient
from wazuh_integrator.store import StateStore


async def test_retries_exhausted_park_then_the_store_retry_delivers(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(503)
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=1)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    # Settled by parking: the checkpoint may move on while the receiver is down.
    assert harness.settled == {"1764262800.0": 1}
    assert receiver.accepted == []
    assert receiver.attempts >= 2
    assert harness.store.count_parked(deliverer.key) == 1
    receiver.default = Answer(200)
    await until(lambda: receiver.accepted == ["1764262800.0"], "the parked retry")
    await until(lambda: harness.store.count_parked(deliverer.key) == 0, "the row removed")
    assert deliverer.stats()["parked"] == 0
    assert harness.outcome(deliverer, "parked") == 1
    assert harness.outcome(deliverer, "delivered") == 1
    assert harness.settled == {"1764262800.0": 1}


async def test_a_parked_delivery_older_than_max_retry_age_is_dead_lettered(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(503)
    settings = IntegrationSettings(initial_backoff_s=0.01, max_backoff_s=0.05, max_retry_age_s=0.3)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, retries=0, circuit_threshold=1000
    )
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: harness.store.count_dead_letters(deliverer.key) == 1, "the dead letter")
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert letter.status == 503
    assert letter.attempts >= 2
    assert harness.store.count_parked(deliverer.key) == 0
    integration = deliverer.integration
    assert isinstance(integration, PostIntegration)
    assert [alert_id for alert_id, _ in integration.gave_up] == ["1764262800.0"]
    assert harness.settled == {"1764262800.0": 1}


async def test_an_expired_delivery_is_dead_lettered_untried_while_the_circuit_is_open(
    harness: Harness, store: StateStore
) -> None:
    settings = IntegrationSettings(initial_backoff_s=0.2, max_backoff_s=0.5, max_retry_age_s=3600)
    deliverer = harness.make(ScriptedIntegration, settings=settings, circuit_threshold=1)
    integration = deliverer.integration
    assert isinstance(integration, ScriptedIntegration)
    integration.outcomes = [Transient("HTTP 503") for _ in range(100)]
    await deliverer.start()
    # The first failure opens the circuit (threshold 1).
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert deliverer.stats()["circuit_open"] == 1
    now = time.time()
    store.park(
        deliverer.key,
        orjson.dumps({"id": "old", "rule": {"level": 3}}),
        attempts=7,
        first_failed_at=now - 7200,
        next_attempt_at=now,
        last_error="HTTP 503",
    )
    await until(lambda: store.count_dead_letters(deliverer.key) == 1, "the expired one")
    (letter,) = store.dead_letters(deliverer.key)
    assert orjson.loads(letter.alert)["id"] == "old"
    assert letter.status is None
    assert letter.attempts == 7
    assert "max_retry_age" in letter.last_error and "HTTP 503" in letter.last_error
    assert integration.gave_up == ["old"]
    assert integration.sent == []
    assert store.count_parked(deliverer.key) == 1


async def test_rows_parked_by_another_process_are_picked_up(
    harness: Harness, receiver: Receiver, tmp_path: Path
) -> None:
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await asyncio.sleep(0.05)
    # What `dead-letter replay` does: its own handle on the same database.
    with StateStore(tmp_path / "state.db") as other:
        now = time.time()
        other.park(
            deliverer.key,
            orjson.dumps({"id": "replayed"}),
            attempts=0,
            first_failed_at=now,
            next_attempt_at=now,
            last_error="replayed dead letter 1: HTTP 500",
        )
    await until(lambda: receiver.accepted == ["replayed"], "the replayed alert")
