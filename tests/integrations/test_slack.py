"""Slack: golden bodies, what reaches a real webhook (the retry table and no
leaks: test_output_contract.py)."""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from wazuh_integrator.integrations.slack import (
    SlackIntegration,
    build_slack_payload,
    slack_color,
)
from wazuh_integrator.secret import Secret

GOLDEN_INTEGRATION = "slack"
TOKENS = ["T0SECRET1", "B0SECRET2", "xoxTokenNeverLeak123456"]
HOOK_PATH = "/services/" + "/".join(TOKENS)

ALERT: dict[str, Any] = {
    "timestamp": "2024-05-01T10:20:30.123+0000",
    "rule": {"level": 9, "description": "Test rule", "id": "100001", "groups": ["test"]},
    "agent": {"id": "001", "name": "web-01"},
    "id": "1714558830.1",
    "full_log": "something happened",
    "location": "/var/log/syslog",
}


def test_payload_matches_golden(golden_case: Any) -> None:
    payload = build_slack_payload(golden_case.alert, golden_case.options)
    assert orjson.dumps(payload) == golden_case.expected_bytes


def test_preview_is_the_golden_body(golden_case: Any, make_block: Any, dry_context: Any) -> None:
    block = make_block(
        "slack", hook_url=Secret("https://hooks.example/x"), options=golden_case.options
    )
    preview = SlackIntegration(block, dry_context).preview(golden_case.alert)
    assert orjson.dumps(preview) == golden_case.expected_bytes


async def test_send_posts_the_golden_body(
    golden_case: Any, receiver: Any, make_block: Any, context: Any
) -> None:
    block = make_block(
        "slack", hook_url=Secret(receiver.url(HOOK_PATH)), options=golden_case.options
    )
    await SlackIntegration(block, context).send(golden_case.alert)
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path_qs == HOOK_PATH
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == golden_case.expected_bytes


@pytest.mark.parametrize(
    ("level", "color"),
    [(0, "good"), (4, "good"), (5, "warning"), (7, "warning"), (8, "danger"), (16, "danger")],
)
def test_color_bands(level: int, color: str) -> None:
    assert slack_color(level) == color
    alert = {**ALERT, "rule": {**ALERT["rule"], "level": level}}
    assert build_slack_payload(alert, None)["attachments"][0]["color"] == color


def test_options_merge_leaves_alert_and_options_untouched() -> None:
    alert = copy.deepcopy(ALERT)
    options = MappingProxyType({"pretext": "Prod", "mrkdwn_in": ["text"]})
    payload = build_slack_payload(alert, options)
    attachment = payload["attachments"][0]
    assert attachment["pretext"] == "Prod"
    assert attachment["mrkdwn_in"] == ["text"]
    assert alert == ALERT
    assert dict(options) == {"pretext": "Prod", "mrkdwn_in": ["text"]}


def test_required_keys() -> None:
    assert SlackIntegration.name == "slack"
    assert SlackIntegration.required == ("hook_url",)
