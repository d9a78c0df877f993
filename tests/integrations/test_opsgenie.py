"""Opsgenie: the Alerts API v2 body, priority bands, the endpoint under the
base URL, the GenieKey header (the retry table and no leaks of the key:
test_output_contract.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from wazuh_integrator.integrations.opsgenie import (
    OpsgenieIntegration,
    alerts_url,
    build_opsgenie_payload,
    opsgenie_priority,
)
from wazuh_integrator.secret import Secret

API_KEY = "ogApiKeyNeverLeak-0123456789"
ALERT: dict[str, Any] = {
    "timestamp": "2026-11-27T17:00:00.000+0000",
    "rule": {"level": 10, "description": "sshd: brute force", "id": "5712", "groups": ["sshd"]},
    "agent": {"id": "001", "name": "web01", "ip": "10.0.0.11"},
    "manager": {"name": "wazuh-manager"},
    "id": "1764262800.42",
    "full_log": "Failed password for root from 203.0.113.7",
    "location": "/var/log/auth.log",
    "data": {"srcip": "203.0.113.7", "dstuser": "root"},
}


def test_payload() -> None:
    assert build_opsgenie_payload(ALERT, None) == {
        "message": "[Wazuh] sshd: brute force",
        "alias": "wazuh-1764262800.42",
        "description": "sshd: brute force\n\nRule: 5712 (level 10)\nAgent: (001) web01\n"
        "Location: /var/log/auth.log\n\nFailed password for root from 203.0.113.7",
        "priority": "P2",
        "tags": ["wazuh", "sshd"],
        "details": {
            "alert_id": "1764262800.42",
            "rule_id": "5712",
            "level": "10",
            "agent_id": "001",
            "agent_name": "web01",
            "agent_ip": "10.0.0.11",
            "manager": "wazuh-manager",
            "location": "/var/log/auth.log",
            "srcip": "203.0.113.7",
            "dstuser": "root",
            "timestamp": "2026-11-27T17:00:00.000+0000",
        },
        "entity": "web01",
        "source": "Wazuh",
    }


def test_options_merge_at_the_top_level() -> None:
    options = {"responders": [{"type": "team", "name": "SOC"}], "alias": "ssh-brute-force"}
    payload = build_opsgenie_payload(ALERT, options)
    assert payload["responders"] == [{"type": "team", "name": "SOC"}]
    assert payload["alias"] == "ssh-brute-force"


def test_limits_of_the_api_are_respected() -> None:
    long_rule = {
        **ALERT["rule"],
        "description": "x" * 500,
        "groups": [f"g{n}" * 30 for n in range(40)],
    }
    payload = build_opsgenie_payload({**ALERT, "rule": long_rule}, None)
    assert len(payload["message"]) == 130 and payload["message"].endswith("...")
    assert len(payload["tags"]) == 20
    assert all(len(tag) <= 50 for tag in payload["tags"])
    assert all(isinstance(value, str) for value in payload["details"].values())


def test_no_alias_without_an_alert_id() -> None:
    alert = {key: value for key, value in ALERT.items() if key != "id"}
    assert "alias" not in build_opsgenie_payload(alert, None)


@pytest.mark.parametrize(
    ("level", "priority"),
    [(0, "P5"), (3, "P5"), (4, "P4"), (6, "P4"), (7, "P3"), (9, "P3"), (10, "P2"), (12, "P2"),
     (13, "P1"), (16, "P1")],
)  # fmt: skip
def test_priority_bands(level: int, priority: str) -> None:
    assert opsgenie_priority(level) == priority
    alert = {**ALERT, "rule": {**ALERT["rule"], "level": level}}
    assert build_opsgenie_payload(alert, None)["priority"] == priority


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (None, "https://api.opsgenie.com/v2/alerts"),
        ("https://api.eu.opsgenie.com", "https://api.eu.opsgenie.com/v2/alerts"),
        ("https://api.eu.opsgenie.com/", "https://api.eu.opsgenie.com/v2/alerts"),
        ("https://proxy.example/opsgenie", "https://proxy.example/opsgenie/v2/alerts"),
        ("https://api.opsgenie.com/v2/alerts", "https://api.opsgenie.com/v2/alerts"),
    ],
)
def test_endpoint_under_the_base_url(base: str | None, url: str) -> None:
    assert alerts_url(base) == url


async def test_send_posts_the_alert_with_the_genie_key(
    receiver: Any, make_block: Any, context: Any
) -> None:
    receiver.answer(202, b'{"result":"Request will be processed","requestId":"r1"}')
    block = make_block("opsgenie", api_key=Secret(API_KEY), hook_url=Secret(receiver.url("/eu/")))
    await OpsgenieIntegration(block, context).send(ALERT)
    [request] = receiver.requests
    assert (request.method, request.path_qs) == ("POST", "/eu/v2/alerts")
    assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert orjson.loads(request.body) == build_opsgenie_payload(ALERT, None)


def test_preview_is_the_body_and_holds_no_key(make_block: Any, dry_context: Any) -> None:
    block = make_block("opsgenie", api_key=Secret(API_KEY))
    preview = OpsgenieIntegration(block, dry_context).preview(ALERT)
    assert preview == build_opsgenie_payload(ALERT, None)
    assert API_KEY not in orjson.dumps(preview).decode()


def test_required_keys() -> None:
    assert OpsgenieIntegration.required == ("api_key",)
