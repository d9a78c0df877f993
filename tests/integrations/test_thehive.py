"""TheHive 5: the alert body, observables from addresses, hashes and URLs,
severity bands, the endpoint, the Bearer header, a duplicate taken as
delivered (the retry table and no leaks of the key: test_output_contract.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.thehive import (
    TheHiveIntegration,
    alert_endpoint,
    build_thehive_payload,
    thehive_observables,
    thehive_severity,
)
from wazuh_integrator.secret import Secret

API_KEY = "hiveApiKeyNeverLeak-0123456789"
MD5 = "44d88612fea8a8f36de82e1278abb02f"
SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
ALERT: dict[str, Any] = {
    "timestamp": "2026-11-27T17:00:00.000+0000",
    "rule": {"level": 12, "description": "Web attack", "id": "31106", "groups": ["web", "attack"]},
    "agent": {"id": "002", "name": "www"},
    "manager": {"name": "wazuh-manager"},
    "id": "1764262800.7",
    "full_log": 'GET /index.php?id=1%27 HTTP/1.1" 200',
    "location": "/var/log/nginx/access.log",
    "data": {"srcip": "203.0.113.7", "dstip": "192.0.2.10", "url": "/index.php?id=1%27"},
}


def test_payload() -> None:
    payload = build_thehive_payload(ALERT, None)
    assert payload["type"] == "wazuh"
    assert payload["source"] == "Wazuh"
    assert payload["sourceRef"] == "wazuh-manager:1764262800.7"
    assert payload["title"] == "Web attack"
    assert payload["severity"] == 3
    assert payload["date"] == 1795798800000  # 2026-11-27T17:00:00Z
    assert payload["tags"] == ["wazuh", "wazuh:rule=31106", "web", "attack", "wazuh:agent=www"]
    assert "| Rule | 31106 (level 12) |" in payload["description"]
    assert "| Agent | (002) www |" in payload["description"]
    assert payload["observables"] == [
        {"dataType": "ip", "data": "203.0.113.7", "message": "data.srcip",
         "tags": ["wazuh:data.srcip"]},
        {"dataType": "ip", "data": "192.0.2.10", "message": "data.dstip",
         "tags": ["wazuh:data.dstip"]},
        {"dataType": "url", "data": "/index.php?id=1%27", "message": "data.url",
         "tags": ["wazuh:data.url"]},
    ]  # fmt: skip


def test_hashes_from_syscheck_and_data_are_observables() -> None:
    alert = {
        **ALERT,
        "data": {"md5": MD5.upper()},
        "syscheck": {"md5_after": MD5, "sha1_after": SHA1, "sha256_after": SHA256},
    }
    hashes = [o for o in thehive_observables(alert) if o["dataType"] == "hash"]
    # The same MD5 in two fields is one observable with both tags.
    assert [(o["data"], o["tags"]) for o in hashes] == [
        (MD5, ["wazuh:syscheck.md5_after", "wazuh:data.md5"]),
        (SHA1, ["wazuh:syscheck.sha1_after"]),
        (SHA256, ["wazuh:syscheck.sha256_after"]),
    ]


@pytest.mark.parametrize(
    "data",
    [
        {"srcip": "not-an-address", "md5": "xyz"},
        {"srcip": "", "url": "  "},
        {"sha1": MD5},  # a hash is known by its length only when it is hex
        {"md5": "g" * 32},
    ],
)
def test_malformed_indicators_are_not_observables(data: dict[str, Any]) -> None:
    assert [
        o for o in thehive_observables({**ALERT, "data": data}) if o["dataType"] != "hash"
    ] == []
    hashes = [o["data"] for o in thehive_observables({**ALERT, "data": data})]
    assert all(len(h) in (32, 40, 64) and h == h.lower() for h in hashes)


def test_same_address_as_source_and_destination_is_one_observable() -> None:
    alert = {**ALERT, "data": {"srcip": "198.51.100.1", "dstip": "198.51.100.1"}}
    assert thehive_observables(alert) == [
        {"dataType": "ip", "data": "198.51.100.1", "message": "data.srcip, data.dstip",
         "tags": ["wazuh:data.srcip", "wazuh:data.dstip"]}
    ]  # fmt: skip


def test_source_ref_is_stable_and_unique_per_alert() -> None:
    first = build_thehive_payload(ALERT, None)["sourceRef"]
    assert build_thehive_payload(ALERT, None)["sourceRef"] == first
    assert build_thehive_payload({**ALERT, "id": "1764262800.8"}, None)["sourceRef"] != first
    no_id = {key: value for key, value in ALERT.items() if key != "id"}
    assert build_thehive_payload(no_id, None)["sourceRef"].startswith("sha256:")


@pytest.mark.parametrize(
    ("level", "severity"), [(0, 1), (6, 1), (7, 2), (9, 2), (10, 3), (12, 3), (13, 4), (16, 4)]
)
def test_severity_bands(level: int, severity: int) -> None:
    assert thehive_severity(level) == severity


def test_options_merge_except_the_organisation() -> None:
    payload = build_thehive_payload(ALERT, {"tlp": 3, "organisation": "SOC", "type": "ids"})
    assert payload["tlp"] == 3 and payload["type"] == "ids"
    assert "organisation" not in payload


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://hive.example", "https://hive.example/api/v1/alert"),
        ("https://hive.example/thehive/", "https://hive.example/thehive/api/v1/alert"),
        ("https://hive.example/api/v1/alert", "https://hive.example/api/v1/alert"),
    ],
)
def test_endpoint_under_the_base_url(base: str, url: str) -> None:
    assert alert_endpoint(base) == url


async def test_send_posts_the_alert_with_the_bearer_key(
    receiver: Any, make_block: Any, context: Any
) -> None:
    receiver.answer(201, b'{"_id":"~123"}')
    block = make_block(
        "thehive",
        api_key=Secret(API_KEY),
        hook_url=Secret(receiver.url("/")),
        options={"organisation": "SOC"},
    )
    await TheHiveIntegration(block, context).send(ALERT)
    [request] = receiver.requests
    assert (request.method, request.path_qs) == ("POST", "/api/v1/alert")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["X-Organisation"] == "SOC"
    assert orjson.loads(request.body) == build_thehive_payload(ALERT, None)


@pytest.mark.parametrize("status", [400, 409])
async def test_an_alert_that_already_exists_is_delivered(
    status: int, receiver: Any, make_block: Any, context: Any
) -> None:
    receiver.answer(
        status, b'{"type":"CreateError","message":"Alert wazuh:Wazuh:x already exists"}'
    )
    block = make_block("thehive", api_key=Secret(API_KEY), hook_url=Secret(receiver.url("/")))
    await TheHiveIntegration(block, context).send(ALERT)  # no error


async def test_another_400_is_permanent(receiver: Any, make_block: Any, context: Any) -> None:
    receiver.answer(400, b'{"type":"BadRequest","message":"Invalid severity"}')
    block = make_block("thehive", api_key=Secret(API_KEY), hook_url=Secret(receiver.url("/")))
    with pytest.raises(Permanent, match="Invalid severity"):
        await TheHiveIntegration(block, context).send(ALERT)


def test_block_problem_names_a_bad_organisation(make_block: Any) -> None:
    block = make_block("thehive", options={"organisation": 3})
    assert TheHiveIntegration.block_problem(block) == (
        'options: "organisation" must be a non-empty string'
    )
    assert TheHiveIntegration.block_problem(make_block("thehive")) is None
