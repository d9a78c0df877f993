"""PagerDuty: golden Events API bodies, severity bands, dedup_key, the endpoint
(the retry table and no leaks of the routing key: test_output_contract.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from wazuh_integrator.integrations.pagerduty import (
    EVENTS_API_URL,
    PagerDutyIntegration,
    build_pagerduty_payload,
    pagerduty_severity,
)
from wazuh_integrator.secret import Secret

GOLDEN_INTEGRATION = "pagerduty"
GOLDEN_ROUTING_KEY = "golden-routing-key"
ROUTING_KEY = "pdRoutingKeyNeverLeak0123456789ab"

ALERT: dict[str, Any] = {
    "timestamp": "2024-05-01T10:20:30.123+0000",
    "rule": {"level": 9, "description": "Test rule", "id": "100001", "groups": ["a", "b"]},
    "agent": {"id": "001", "name": "web-01"},
    "id": "1714558830.1",
    "full_log": "something happened",
    "location": "/var/log/syslog",
}


def test_payload_matches_golden(golden_case: Any) -> None:
    payload = build_pagerduty_payload(golden_case.alert, golden_case.options, GOLDEN_ROUTING_KEY)
    assert orjson.dumps(payload) == golden_case.expected_bytes


async def test_send_posts_the_golden_body_with_the_api_key(
    golden_case: Any, receiver: Any, make_block: Any, context: Any
) -> None:
    block = make_block(
        "pagerduty",
        api_key=Secret(GOLDEN_ROUTING_KEY),
        hook_url=Secret(receiver.url("/v2/enqueue")),
        options=golden_case.options,
    )
    await PagerDutyIntegration(block, context).send(golden_case.alert)
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path_qs == "/v2/enqueue"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == golden_case.expected_bytes


def test_preview_hides_the_routing_key(make_block: Any, dry_context: Any) -> None:
    block = make_block("pagerduty", api_key=Secret(ROUTING_KEY))
    preview = PagerDutyIntegration(block, dry_context).preview(ALERT)
    assert preview["routing_key"] == "<secret>"
    assert ROUTING_KEY not in orjson.dumps(preview).decode()
    assert preview == build_pagerduty_payload(ALERT, None, "<secret>")


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (0, "info"),
        (6, "info"),
        (7, "warning"),
        (9, "warning"),
        (10, "error"),
        (12, "error"),
        (13, "critical"),
        (16, "critical"),
    ],
)
def test_severity_bands(level: int, severity: str) -> None:
    assert pagerduty_severity(level) == severity
    alert = {**ALERT, "rule": {**ALERT["rule"], "level": level}}
    assert build_pagerduty_payload(alert, None, "k")["payload"]["severity"] == severity


@pytest.mark.parametrize(
    ("options", "dedup_key"),
    [
        (None, "1714558830.1"),
        ({"client": "SOC"}, "1714558830.1"),
        ({"dedup_key": "mine"}, "mine"),
    ],
)
def test_dedup_key_from_alert_id_unless_options_set_one(
    options: dict[str, Any] | None, dedup_key: str
) -> None:
    assert build_pagerduty_payload(ALERT, options, "k")["dedup_key"] == dedup_key


def test_no_dedup_key_without_an_alert_id() -> None:
    alert = {key: value for key, value in ALERT.items() if key != "id"}
    assert "dedup_key" not in build_pagerduty_payload(alert, None, "k")


@pytest.mark.parametrize(
    ("extra", "source"),
    [
        ({"agent": {"id": "002", "name": "db-01"}}, "db-01"),
        ({"agentless": {"host": "root@192.0.2.9"}}, "root@192.0.2.9"),
        ({"manager": {"name": "wazuh-manager"}}, "wazuh-manager"),
        ({}, "/var/log/syslog"),
    ],
)
def test_source_without_an_agent_falls_back(extra: dict[str, Any], source: str) -> None:
    alert = {key: value for key, value in ALERT.items() if key != "agent"} | extra
    assert build_pagerduty_payload(alert, None, "k")["payload"]["source"] == source


def test_default_endpoint_is_the_events_api() -> None:
    assert EVENTS_API_URL == "https://events.pagerduty.com/v2/enqueue"


def test_required_keys() -> None:
    assert PagerDutyIntegration.name == "pagerduty"
    assert PagerDutyIntegration.required == ("api_key",)
