"""The parked-retry loop on RedisParkedRows when Redis goes away in the middle
of a claimed batch: the real deliverer, store and metrics, a real redis-server
stopped and started again, the claims renewed as a worker renews them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from tests.cluster.redis_server import RedisServer
from tests.delivery.support import Harness, ScriptedIntegration, until

from wazuh_integrator.cluster.connection import connect
from wazuh_integrator.cluster.parked import RedisParkedRows
from wazuh_integrator.config.models import ClusterSettings, IntegrationSettings
from wazuh_integrator.delivery.deliverer import Deliverer
from wazuh_integrator.errors import DeliveryError, Transient
from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.integrations.sessions import HttpSessions
from wazuh_integrator.metrics import Metrics
from wazuh_integrator.secret import Secret
from wazuh_integrator.store import StateStore

pytestmark = pytest.mark.timeout(120)

PREFIX = "wazuh-integrator:alerts"


class RedisStoppingIntegration(ScriptedIntegration):
    """Its give-up step stops Redis: the loop is then between claiming a batch
    and giving the rest of it back."""

    redis_server: RedisServer | None = None

    async def on_give_up(self, alert: Alert, error: DeliveryError) -> None:
        self.gave_up.append(alert["id"])
        if self.redis_server is not None:
            await self.redis_server.stop()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with HttpSessions() as sessions:
        with StateStore(tmp_path / "state.db") as store:
            h = Harness(tmp_path, sessions.for_settings(IntegrationSettings()), store, Metrics())
            yield h
            for deliverer in h.deliverers:
                await deliverer.stop(0.0)


def park(rows: RedisParkedRows, key: str, alert_id: str, *, first_failed_at: float) -> None:
    rows.park(
        key,
        orjson.dumps({"id": alert_id, "rule": {"level": 3}}),
        attempts=1,
        first_failed_at=first_failed_at,
        next_attempt_at=first_failed_at if alert_id == "old" else time.time() - 5,
        last_error="HTTP 503",
    )


async def test_rows_of_a_batch_redis_never_took_back_are_retried_after_its_restart(
    harness: Harness, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The circuit is open; a batch of four is claimed: one expired (dead-lettered,
    and its give-up step stops Redis), three young. The loop cannot release
    two of them nor give the third to a probe. Once Redis is back and the
    receiver answers, all three are delivered, each once, although this
    worker keeps renewing the claims it holds all along."""
    client = connect(ClusterSettings(redis_url=Secret(redis_server.url)))  # as a worker's
    rows = RedisParkedRows(client, PREFIX, claim_s=1)
    settings = IntegrationSettings(initial_backoff_s=0.2, max_backoff_s=0.5, max_retry_age_s=3600)
    deliverer: Deliverer = harness.make(
        RedisStoppingIntegration, settings=settings, circuit_threshold=1, parked_rows=rows
    )
    integration = deliverer.integration
    assert isinstance(integration, RedisStoppingIntegration)
    integration.outcomes = [Transient("HTTP 503")]  # opens the circuit (threshold 1)
    stop_renewing = asyncio.Event()
    renewing = asyncio.create_task(rows.keep_claims(stop_renewing))
    try:
        await deliverer.start()
        await deliverer.submit(harness.delivery(0))
        await deliverer.join()
        assert deliverer.stats()["circuit_open"] == 1
        now = time.time()
        park(rows, deliverer.key, "old", first_failed_at=now - 7200)
        for young in ("young1", "young2", "young3"):
            park(rows, deliverer.key, young, first_failed_at=now)
        integration.redis_server = redis_server
        await rows.flush()
        await until(lambda: redis_server.process is None, "Redis stopped by the give-up", 30)
        assert integration.gave_up == ["old"]
        await until(
            lambda: any("cannot retry parked" in r.getMessage() for r in caplog.records),
            "the loop to fail giving the batch back",
            30,
        )
        await redis_server.start()
        expected = ["1764262800.0", "young1", "young2", "young3"]
        await until(lambda: sorted(integration.sent) == expected, "every row delivered", 60)
        await until(lambda: harness.store.count_dead_letters(deliverer.key) == 1, "no more", 5)
        await asyncio.sleep(1.5)  # a claim lapsing now would send one twice
        assert sorted(integration.sent) == expected
        assert await rows.count(deliverer.key) == 0
    finally:
        stop_renewing.set()
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await deliverer.stop(0.0)
        await client.aclose()
