"""What each integration sends for a suppressed note and for a digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.floods.alerts import alert

from wazuh_integrator.config.models import DigestSettings, IntegrationBlock, IntegrationSettings
from wazuh_integrator.floods.digest import DigestCollector
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.pagerduty import PagerDutyIntegration, build_pagerduty_payload
from wazuh_integrator.integrations.shuffle import ShuffleIntegration, build_shuffle_payload
from wazuh_integrator.integrations.slack import SlackIntegration, build_slack_payload
from wazuh_integrator.secret import Secret

NOTE = {"count": 4998, "since": "2026-11-27T17:00:00.123Z"}


def digest(count: int, max_alerts: int = 3, key: str = "slack#0") -> dict[str, Any]:
    collector = DigestCollector(
        DigestSettings(group_by=("rule.id",), group_wait_s=0.0, max_alerts=max_alerts),
        integration_key=key,
    )
    for n in range(count):
        collector.collect(alert(n, level=5 + n % 3), b"", now=100.0)
    (ready,) = collector.take_due(100.0)
    return ready.document


def make(cls: Any, name: str, tmp_path: Path) -> Any:
    block = IntegrationBlock(
        index=0,
        path="etc/ossec.conf",
        line=1,
        name=name,
        hook_url=Secret("https://hooks.example/T0/B0/secret"),
        api_key=Secret("routing-secret"),
    )
    return cls(block, IntegrationContext(tmp_path, tmp_path, IntegrationSettings()))


def test_slack_adds_a_suppressed_field() -> None:
    body = build_slack_payload(alert(0, suppressed=NOTE), None)
    (attachment,) = body["attachments"]
    assert attachment["fields"][-1] == {
        "title": "Suppressed",
        "value": "4998 similar alerts since 2026-11-27T17:00:00.123Z",
    }
    assert all(
        f["title"] != "Suppressed"
        for f in build_slack_payload(alert(0), None)["attachments"][0]["fields"]
    )


def test_pagerduty_puts_it_in_custom_details_and_shuffle_at_the_top() -> None:
    pagerduty = build_pagerduty_payload(alert(0, suppressed=NOTE), None, "key")
    assert pagerduty["payload"]["custom_details"]["suppressed"] == NOTE
    assert build_shuffle_payload(alert(0, suppressed=NOTE), None)["suppressed"] == NOTE


def test_a_slack_digest_is_one_message_listing_then_counting(tmp_path: Path) -> None:
    body = make(SlackIntegration, "slack", tmp_path).preview(digest(500))
    (attachment,) = body["attachments"]
    lines = attachment["text"].split("\n")
    assert attachment["title"] == "500 alerts for rule.id=5712"
    assert lines[0] == (
        "2026-11-27T17:00:00.000+0000 rule 5712 (level 5) agent 001 web01: sshd: brute force 0"
    )
    assert len(lines) == 4 and lines[3] == "and 497 more"
    assert attachment["color"] == "warning"  # the highest level listed, 7


def test_a_shuffle_digest_carries_alerts_and_count(tmp_path: Path) -> None:
    body = make(ShuffleIntegration, "shuffle", tmp_path).preview(digest(5, max_alerts=2))
    assert body["count"] == 5
    assert [a["id"] for a in body["alerts"]] == ["1764262800.0", "1764262800.1"]
    assert body["digest"]["group"] == "rule.id=5712"


def test_pagerduty_sends_one_event_per_digest_with_a_stable_dedup_key(tmp_path: Path) -> None:
    pagerduty = make(PagerDutyIntegration, "pagerduty", tmp_path)
    first, second = pagerduty.preview(digest(5)), pagerduty.preview(digest(7))
    other = pagerduty.preview(digest(5, key="pagerduty#1"))
    assert first["dedup_key"] == second["dedup_key"] != other["dedup_key"]
    assert first["payload"]["summary"] == "5 Wazuh alerts for rule.id=5712"
    assert first["payload"]["custom_details"]["count"] == 5
    assert "routing-secret" not in str(first)
