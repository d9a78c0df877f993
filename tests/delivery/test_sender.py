"""One attempt: the safety time-out, an unexpected exception, the rate limits.

Each runs the real deliverer, store and metrics against a local receiver or
a scripted integration (tests/delivery/support.py).
"""

from __future__ import annotations

import logging
import time

import orjson
import pytest
from tests.delivery.support import (
    TOKEN,
    Answer,
    Harness,
    PostIntegration,
    Receiver,
    ScriptedIntegration,
    parked_rows,
    submit_all,
)

from wazuh_integrator.config.models import IntegrationSettings, RateLimit
from wazuh_integrator.integrations.base import Alert


async def test_the_safety_time_out_catches_a_hanging_integration(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), timeout_s=0, retries=0, safety_margin_s=0.2
    )
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    (row,) = parked_rows(harness.store, deliverer.key)
    assert row.attempts == 1
    assert "no answer within 0.2 s" in row.last_error


async def test_an_unexpected_exception_is_logged_with_context_and_retried(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    deliverer = harness.make(ScriptedIntegration)
    integration = deliverer.integration
    assert isinstance(integration, ScriptedIntegration)
    integration.outcomes = [KeyError(f"https://example.invalid/{TOKEN}")]
    await deliverer.start()
    with caplog.at_level(logging.WARNING):
        await deliverer.submit(harness.delivery(0))
        await deliverer.join()
    assert integration.sent == ["1764262800.0"]
    assert harness.outcome(deliverer, "retried") == 1
    (record,) = [r for r in caplog.records if "unexpected error on alert" in r.getMessage()]
    message = record.getMessage()
    assert deliverer.key in message
    assert "1764262800.0" in message
    assert "attempt 1" in message
    assert "KeyError" in message
    assert TOKEN not in caplog.text


async def test_rate_limits_hold_across_deliveries(harness: Harness, receiver: Receiver) -> None:
    limit = RateLimit(2, 0.3)
    settings = IntegrationSettings(rate_limits=(limit,), concurrency=4)
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(5))
    await deliverer.join()
    times = sorted(receiver.attempt_times)
    assert len(times) == 5
    for i in range(len(times) - limit.count):
        assert times[i + limit.count] - times[i] >= limit.period_s * 0.9
    assert harness.metrics.rate_limited_total.labels(integration=deliverer.key).value >= 1


async def test_a_quota_spent_for_the_day_parks_new_alerts(
    harness: Harness, receiver: Receiver
) -> None:
    settings = IntegrationSettings(rate_limits=(RateLimit(1, 86400.0),))
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(2))
    await deliverer.join()
    assert receiver.attempts == 1
    (row,) = parked_rows(harness.store, deliverer.key)
    assert row.attempts == 0
    assert "rate limit" in row.last_error
    assert row.next_attempt_at - time.time() > 80000


class CachedAnswerIntegration(ScriptedIntegration):
    """Answers even-numbered alerts without calling its service, like a cached lookup."""

    def needs_request(self, alert: Alert) -> bool:
        return int(alert["id"].rsplit(".", 1)[1]) % 2 == 1


async def test_alerts_that_need_no_request_skip_the_rate_limit(harness: Harness) -> None:
    settings = IntegrationSettings(rate_limits=(RateLimit(1, 86400.0),))
    deliverer = harness.make(CachedAnswerIntegration, settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(6))
    await deliverer.join()
    integration = deliverer.integration
    assert isinstance(integration, CachedAnswerIntegration)
    # One request fits the day's quota; the cached answers never wait for it.
    assert integration.sent == ["1764262800.0", "1764262800.1", "1764262800.2", "1764262800.4"]
    parked = sorted(
        orjson.loads(row.alert)["id"] for row in parked_rows(harness.store, deliverer.key)
    )
    assert parked == ["1764262800.3", "1764262800.5"]
