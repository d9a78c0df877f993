"""Shuffle: golden bodies, the loop-avoiding skip list (the retry table and
no leaks: test_output_contract.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from wazuh_integrator.integrations.shuffle import (
    SKIPPED_RULE_IDS,
    ShuffleIntegration,
    build_shuffle_payload,
    shuffle_severity,
)
from wazuh_integrator.secret import Secret

GOLDEN_INTEGRATION = "shuffle"
HOOK_TOKEN = "webhook_0f3a8e2c-7d1b-4c55-secret-never-leak"
HOOK_PATH = f"/api/v1/hooks/{HOOK_TOKEN}"
# REFERENCE.md's list, restated rather than imported, so that a change to it shows.
STOCK_SKIPS = [
    "87924", "87900", "87901", "87902", "87903", "87904", "86001",
    "86002", "86003", "87932", "80710", "87929", "87928", "5710",
]  # fmt: skip

ALERT: dict[str, Any] = {
    "timestamp": "2024-05-01T10:20:30.123+0000",
    "rule": {"level": 9, "description": "Test rule", "id": "100001", "groups": ["test"]},
    "agent": {"id": "001", "name": "web-01"},
    "id": "1714558830.1",
    "full_log": "something happened",
    "location": "/var/log/syslog",
}


def _with_rule_id(rule_id: Any) -> dict[str, Any]:
    return {**ALERT, "rule": {**ALERT["rule"], "id": rule_id}}


def test_payload_matches_golden(golden_case: Any) -> None:
    payload = build_shuffle_payload(golden_case.alert, golden_case.options)
    assert orjson.dumps(payload) == golden_case.expected_bytes


async def test_send_posts_the_golden_body(
    golden_case: Any, receiver: Any, make_block: Any, context: Any
) -> None:
    block = make_block(
        "shuffle", hook_url=Secret(receiver.url(HOOK_PATH)), options=golden_case.options
    )
    integration = ShuffleIntegration(block, context)
    assert orjson.dumps(integration.preview(golden_case.alert)) == golden_case.expected_bytes
    await integration.send(golden_case.alert)
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path_qs == HOOK_PATH
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == golden_case.expected_bytes


@pytest.mark.parametrize(("level", "severity"), [(0, 1), (4, 1), (5, 2), (7, 2), (8, 3), (16, 3)])
def test_severity_bands(level: int, severity: int) -> None:
    assert shuffle_severity(level) == severity
    alert = {**ALERT, "rule": {**ALERT["rule"], "level": level}}
    assert build_shuffle_payload(alert, None)["severity"] == severity


def test_skip_list_is_stocks() -> None:
    assert sorted(SKIPPED_RULE_IDS) == sorted(STOCK_SKIPS)


@pytest.mark.parametrize("rule_id", STOCK_SKIPS)
async def test_skipped_rules_send_nothing(
    rule_id: Any, receiver: Any, make_block: Any, context: Any
) -> None:
    integration = ShuffleIntegration(
        make_block("shuffle", hook_url=Secret(receiver.url(HOOK_PATH))), context
    )
    alert = _with_rule_id(rule_id)
    assert integration.preview(alert) is None
    assert integration.would_skip(alert) == (
        f"rule {rule_id} is in Shuffle's skip list (alerts of Shuffle's own containers)"
    )
    await integration.send(alert)
    assert receiver.requests == []


# Stock compares the id as written: a number, padding or spaces are not on its list.
@pytest.mark.parametrize(
    "rule_id", ["5711", "87905", "8792", "100001", 5710, 87924, "05710", " 5710", None, ["5710"]]
)
def test_neighbouring_rules_are_not_skipped(
    rule_id: str, make_block: Any, dry_context: Any
) -> None:
    integration = ShuffleIntegration(
        make_block("shuffle", hook_url=Secret("http://h/x")), dry_context
    )
    assert integration.preview(_with_rule_id(rule_id)) is not None
    assert integration.would_skip(_with_rule_id(rule_id)) is None


def test_required_keys() -> None:
    assert ShuffleIntegration.name == "shuffle"
    assert ShuffleIntegration.required == ("hook_url",)
