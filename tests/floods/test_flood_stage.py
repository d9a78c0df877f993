"""The floods stage of one block: order of the steps, what it hands on, its counters,
and its digest sender."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from tests.floods.alerts import alert

from wazuh_integrator.config.models import (
    DigestSettings,
    FilterSettings,
    IntegrationSettings,
    ThrottleSettings,
)
from wazuh_integrator.floods import FloodCounters, Shaper
from wazuh_integrator.metrics import Metrics

SETTINGS = IntegrationSettings(
    filter=FilterSettings(exclude_agents=("db01",)),
    throttle=ThrottleSettings(key=("rule.id",), window_s=1.0, limit=1),
)


def counters(metrics: Metrics, key: str = "slack#0") -> FloodCounters:
    return FloodCounters(
        excluded=metrics.alerts_excluded_total.labels(integration=key),
        suppressed=metrics.alerts_suppressed_total.labels(integration=key),
        digested=metrics.alerts_digested_total.labels(integration=key),
        digests=metrics.digests_total.labels(integration=key),
    )


def test_excluded_alerts_are_not_counted_by_the_throttle() -> None:
    metrics = Metrics()
    shaper = Shaper("slack#0", SETTINGS, counters=counters(metrics))
    excluded = shaper.shape(alert(0, agent_name="db01"), b"{}", now=0.0)
    first = shaper.shape(alert(1), b"raw-1", now=0.0)
    second = shaper.shape(alert(2), b"raw-2", now=0.5)
    assert excluded.alert is None and excluded.reason == (
        "excluded: agent.name 'db01' in exclude_agents"
    )
    assert first.raw == b"raw-1" and first.reason is None  # handed on untouched
    assert second.alert is None and second.reason is not None
    rendered = metrics.render()
    assert 'wazuh_integrator_alerts_excluded_total{integration="slack#0"} 1' in rendered
    assert 'wazuh_integrator_alerts_suppressed_total{integration="slack#0"} 1' in rendered


def test_the_note_is_in_the_raw_bytes_too_so_that_parking_keeps_it() -> None:
    shaper = Shaper("slack#0", SETTINGS)
    shaper.shape(alert(1), b"{}", now=0.0)
    shaper.shape(alert(2), b"{}", now=0.1)
    noted = shaper.shape(alert(3), b"{}", now=2.0)
    assert noted.alert is not None and noted.raw is not None
    assert noted.alert["suppressed"] == {"count": 1, "since": "1970-01-01T00:00:00.100Z"}
    assert orjson.loads(noted.raw) == noted.alert


async def test_the_sender_submits_each_digest_when_due_and_settles_it() -> None:
    now = [100.0]
    shaper = Shaper(
        "shuffle#0",
        IntegrationSettings(digest=DigestSettings(group_by=("rule.id",), group_wait_s=0.2)),
        clock=lambda: now[0],
    )
    submitted: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def submit(document: dict[str, Any], raw: bytes, settled: Callable[[], None]) -> None:
        assert orjson.loads(raw) == document
        submitted.append(document)
        settled()
        arrived.set()

    shaper.start(submit)
    try:
        for n in range(5):
            held = shaper.shape(alert(n), b"{}")
            assert held.digest == "rule.id=5712"
        await asyncio.sleep(0.05)
        assert submitted == []  # not due yet by the stage's clock
        now[0] = 100.5  # the sender sleeps group_wait in real time, then looks again
        await asyncio.wait_for(arrived.wait(), timeout=10)
    finally:
        await shaper.stop()
    (document,) = submitted
    assert document["count"] == 5
