"""The live workers: quick retries, Retry-After, dead letters, and a stop.

Each runs the real deliverer, store and metrics against a local receiver or
a scripted integration (tests/delivery/support.py).
"""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from tests.delivery.support import (
    TOKEN,
    Answer,
    Harness,
    NoRetryPostIntegration,
    PostIntegration,
    Receiver,
    parked_rows,
    submit_all,
    until,
)

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.integrations.base import Alert


async def test_a_quick_retry_delivers_after_server_errors(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.script = [Answer(500), Answer(502)]
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=3)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert receiver.accepted == ["1764262800.0"]
    assert receiver.attempts == 3
    assert harness.outcome(deliverer, "retried") == 2
    assert harness.store.count_parked(deliverer.key) == 0
    assert harness.settled == {"1764262800.0": 1}


@pytest.mark.parametrize("retries", [0, 3])
async def test_429_with_retry_after_is_waited_out_then_delivered(
    harness: Harness, receiver: Receiver, retries: int
) -> None:
    receiver.script = [Answer(429, {"Retry-After": "1"})]
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=retries)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert receiver.accepted == ["1764262800.0"]
    assert receiver.attempts == 2
    assert receiver.attempt_times[1] - receiver.attempt_times[0] >= 1.0
    assert harness.store.count_parked(deliverer.key) == 0
    assert harness.metrics.rate_limited_total.labels(integration=deliverer.key).value >= 1


async def test_429_pauses_the_whole_integration(harness: Harness, receiver: Receiver) -> None:
    receiver.script = [Answer(429, {"Retry-After": "1"})]
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the 429")
    told_at = receiver.attempt_times[0]
    await deliverer.submit(harness.delivery(1))
    await deliverer.join()
    assert sorted(receiver.accepted) == ["1764262800.0", "1764262800.1"]
    # The other delivery, with a worker free, still waited for the pause to end.
    assert min(receiver.attempt_times[1:]) - told_at >= 1.0


async def test_a_long_retry_after_parks_instead_of_holding_workers(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.script = [Answer(429, {"Retry-After": "600"})]
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    await deliverer.submit(harness.delivery(1))
    await deliverer.join()
    rows = parked_rows(harness.store, deliverer.key)
    assert receiver.attempts == 1
    assert [orjson.loads(row.alert)["id"] for row in rows] == ["1764262800.0", "1764262800.1"]
    first, second = rows
    assert first.attempts == 1 and "HTTP 429" in first.last_error
    assert first.next_attempt_at - first.first_failed_at >= 599
    assert second.attempts == 0 and "rate limit" in second.last_error
    assert harness.settled == {"1764262800.0": 1, "1764262800.1": 1}


async def test_a_permanent_failure_is_dead_lettered_once(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(400, body=b'{"error": "invalid_payload"}')
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert receiver.attempts == 1
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert letter.status == 400
    assert letter.attempts == 1
    assert letter.integration_name == "custom-post"
    assert "HTTP 400" in letter.last_error and "invalid_payload" in letter.last_error
    assert orjson.loads(letter.alert)["id"] == "1764262800.0"
    integration = deliverer.integration
    assert isinstance(integration, PostIntegration)
    # The delivery is settled once stored; its give-up step runs just after.
    await until(lambda: bool(integration.gave_up), "the give-up step")
    assert [(alert_id, err.status) for alert_id, err in integration.gave_up] == [
        ("1764262800.0", 400)
    ]
    assert harness.settled == {"1764262800.0": 1}
    assert harness.metrics.dead_letters.labels(integration=deliverer.key).value == 1
    assert harness.outcome(deliverer, "dead_lettered") == 1


@pytest.mark.parametrize(
    ("cls", "retry", "dead_lettered"),
    [
        (PostIntegration, False, True),
        (NoRetryPostIntegration, None, True),
        (NoRetryPostIntegration, True, False),
        (PostIntegration, None, False),
    ],
)
async def test_with_retries_disabled_the_first_failure_is_final(
    harness: Harness,
    receiver: Receiver,
    cls: type[PostIntegration],
    retry: bool | None,
    dead_lettered: bool,
) -> None:
    receiver.script = [Answer(500)]
    settings = IntegrationSettings(initial_backoff_s=0.01, max_backoff_s=0.05, retry=retry)
    deliverer = harness.make(cls, url=receiver.url(), settings=settings)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    letters = harness.store.dead_letters(deliverer.key)
    if dead_lettered:
        assert receiver.attempts == 1
        assert [(letter.status, letter.attempts) for letter in letters] == [(500, 1)]
        assert receiver.accepted == []
    else:
        assert letters == []
        assert receiver.accepted == ["1764262800.0"]
    assert harness.settled == {"1764262800.0": 1}


async def test_stop_parks_queued_and_in_flight_deliveries(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    settings = IntegrationSettings(concurrency=1, initial_backoff_s=0.01, max_backoff_s=0.05)
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(3))
    await until(lambda: receiver.attempts == 1, "the first request in flight")
    await deliverer.stop(grace_s=0.1)
    rows = parked_rows(harness.store, deliverer.key)
    by_id = {orjson.loads(row.alert)["id"]: row for row in rows}
    assert sorted(by_id) == [f"1764262800.{n}" for n in range(3)]
    assert "interrupted by shutdown" in by_id["1764262800.0"].last_error
    assert "not attempted" in by_id["1764262800.2"].last_error
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(3)}
    assert deliverer.stats()["in_flight"] == 0
    # Handed over after the stop: parked, never lost.
    await deliverer.submit(harness.delivery(9))
    assert harness.settled["1764262800.9"] == 1
    assert harness.store.count_parked(deliverer.key) == 4


async def test_stop_lets_in_flight_deliveries_finish_within_the_grace(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the request in flight")
    stopping = asyncio.create_task(deliverer.stop(grace_s=30.0))
    await asyncio.sleep(0.05)
    receiver.released.set()
    await stopping
    assert receiver.accepted == ["1764262800.0"]
    assert harness.store.count_parked(deliverer.key) == 0


async def test_a_repeating_failure_is_logged_once(
    harness: Harness, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.default = Answer(500)
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=0, circuit_threshold=1000)
    await deliverer.start()
    with caplog.at_level(logging.INFO):
        await submit_all(deliverer, harness, range(20))
        await deliverer.join()
    parked_lines = [r for r in caplog.records if "parked for a later retry" in r.getMessage()]
    assert len(parked_lines) == 1
    assert harness.store.count_parked(deliverer.key) == 20
    assert TOKEN not in caplog.text


class SkipOddIntegration(PostIntegration):
    """Skips alerts whose number is odd, the way Shuffle skips its own rules."""

    name = "custom-skip-odd"

    def would_skip(self, alert: Alert) -> str | None:
        return "odd" if int(alert["id"].rsplit(".", 1)[1]) % 2 else None


async def test_an_alert_the_integration_skips_is_settled_unsent(
    harness: Harness, receiver: Receiver
) -> None:
    deliverer = harness.make(SkipOddIntegration, url=receiver.url())
    await deliverer.start()
    await submit_all(deliverer, harness, range(6))
    await deliverer.join()
    assert sorted(receiver.accepted) == [f"1764262800.{n}" for n in (0, 2, 4)]
    assert receiver.attempts == 3
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(6)}
    assert harness.outcome(deliverer, "skipped") == 3
    assert harness.outcome(deliverer, "delivered") == 3
    assert deliverer.stats()["skipped_total"] == 3
