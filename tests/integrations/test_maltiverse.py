"""Maltiverse: golden events, the exact lookups, the exact datagrams analysisd
receives, the confidence and type tables, the cache, and no leaked key."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from enrich_support import (
    Answer,
    DatagramReceiver,
    FakeService,
    closed_port_url,
    golden_cases,
    load_json,
    make_enrichment,
)

from wazuh_integrator.analysisd import AnalysisdSocket, EventTooLarge, format_event_message
from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Timeout, Transient
from wazuh_integrator.integrations.base import LookupCache
from wazuh_integrator.integrations.maltiverse import (
    Indicator,
    MaltiverseIntegration,
    build_maltiverse_event,
    indicators_of,
)
from wazuh_integrator.integrations.registry import Registry
from wazuh_integrator.store import StateStore

API_KEY = "mv-eyJhbGciOiJIUzI1NiJ9-SECRET-TOKEN"
MD5 = "44d88612fea8a8f36de82e1278abb02f"
SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
IP_ALERT: dict[str, Any] = {
    "id": "1718040660.2",
    "rule": {"level": 10, "id": "31151"},
    "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.5"},
    "data": {"srcip": "185.220.101.4"},
    "location": "/var/log/nginx/access.log",
}
IP_ANSWER = {
    "type": "ip",
    "ip_addr": "185.220.101.4",
    "classification": "malicious",
    "blacklist": [{"source": "Tor Project", "description": "Tor exit node"}],
}
HASH_ALERT: dict[str, Any] = {
    "id": "1718040600.1",
    "agent": {"id": "000", "name": "manager"},
    "syscheck": {"path": "/tmp/eicar.com", "md5_after": MD5, "sha1_after": SHA1},
}
SAMPLE_ANSWER = {"type": "sample", "classification": "malicious", "blacklist": [{"source": "A"}]}


def make_maltiverse(
    hook_url: str,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    *,
    cache: LookupCache | None = None,
    timeout_s: int = 10,
) -> MaltiverseIntegration:
    return make_enrichment(
        MaltiverseIntegration,
        hook_url,
        session,
        sink,
        api_key=API_KEY,
        settings=IntegrationSettings(),
        cache=cache,
        timeout_s=timeout_s,
    )


def serve(service: FakeService, answers: dict[str, Any]) -> None:
    for path, answer in answers.items():
        service.answers[path] = Answer(answer["status"], answer["body"])


# -- pure event building ---------------------------------------------------


@pytest.mark.parametrize("case", golden_cases("maltiverse"), ids=lambda case: case.name)
def test_golden_events(case: Path) -> None:
    alert = load_json(case / "alert.json")
    answers = load_json(case / "answers.json")
    events = []
    for indicator in indicators_of(alert):
        answer = answers.get(f"/{indicator.path}", {"status": 404, "body": {}})
        if answer["status"] == 200 and answer["body"]:
            events.append(
                build_maltiverse_event(alert, indicator.name, indicator.kind, answer["body"])
            )
    assert events == load_json(case / "events.json")


@pytest.mark.parametrize(
    ("classification", "sightings", "confidence"),
    [
        ("malicious", 2, "High"),
        ("malicious", 1, "Medium"),
        ("malicious", 0, "Medium"),
        ("suspicious", 3, "Medium"),
        ("suspicious", 1, "Low"),
        ("neutral", 2, "Low"),
        ("neutral", 1, "None"),
        ("whitelist", 5, "Low"),
        ("whitelist", 0, "None"),
        ("unknown-class", 9, "None"),
        ("", 3, "Not Specified"),
        (None, 3, "Not Specified"),
    ],
)
def test_confidence_table(classification: str | None, sightings: int, confidence: str) -> None:
    answer: dict[str, Any] = {"type": "ip", "blacklist": [{"source": "s"}] * sightings}
    if classification is not None:
        answer["classification"] = classification
    event = build_maltiverse_event(IP_ALERT, "185.220.101.4", "ip", answer)
    assert event["threat"]["indicator"]["confidence"] == confidence
    assert event["threat"]["indicator"]["sightings"] == sightings


@pytest.mark.parametrize(
    ("answer", "ecs_type", "reference"),
    [
        ({"type": "ip"}, "ipv4-addr", "https://maltiverse.com/ip/x"),
        ({"type": "ip", "ip_version": 4}, "ipv4-addr", "https://maltiverse.com/ip/x"),
        ({"type": "ip", "ip_version": 6}, "ipv6-addr", "https://maltiverse.com/ip/x"),
        ({"type": "hostname"}, "domain-name", "https://maltiverse.com/hostname/x"),
        ({"type": "sample"}, "file", "https://maltiverse.com/sample/x"),
        ({"type": "url"}, "url", "https://maltiverse.com/url/x"),
        ({"type": "tweet"}, None, "https://maltiverse.com/tweet/x"),
        ({}, None, ""),
    ],
)
def test_type_and_reference(answer: dict[str, Any], ecs_type: str | None, reference: str) -> None:
    indicator = build_maltiverse_event(IP_ALERT, "x", "hostname", answer)["threat"]["indicator"]
    assert (indicator["type"], indicator["reference"]) == (ecs_type, reference)
    assert ("ip" in indicator) == (answer.get("type") == "ip")


@pytest.mark.parametrize(
    ("blacklist", "description", "provider", "sightings"),
    [
        pytest.param(
            [{"description": "b", "source": "y"}, {"description": "a", "source": "x"}],
            "a, b",
            "x, y",
            2,
            id="sorted",
        ),
        pytest.param(
            [{"description": "a", "source": "x"}, {"description": "a", "source": "x"}],
            "a",
            "x",
            2,
            id="distinct-but-every-entry-a-sighting",
        ),
        pytest.param(
            [{"description": "", "source": "x"}, {"description": "a", "source": ""}],
            ", a",
            ", x",
            2,
            id="empty-strings-kept-as-stock-joins-them",
        ),
        pytest.param(
            [{"source": "x"}, {"description": "a", "source": "x"}],
            "a",
            "x",
            2,
            id="missing-values-left-out",
        ),
        pytest.param([{"description": "a", "source": "x"}, "junk"], "a", "x", 2, id="junk-entry"),
        pytest.param([], "", "", 0, id="empty"),
        pytest.param(None, "", "", 0, id="null"),
    ],
)
def test_blacklist_description_provider_and_sightings(
    blacklist: Any, description: str, provider: str, sightings: int
) -> None:
    answer = {"type": "hostname", "classification": "malicious", "blacklist": blacklist}
    indicator = build_maltiverse_event(IP_ALERT, "h.example", "hostname", answer)["threat"][
        "indicator"
    ]
    assert (indicator["description"], indicator["provider"]) == (description, provider)
    assert indicator["sightings"] == sightings
    assert indicator["confidence"] == ("High" if sightings > 1 else "Medium")


def test_threat_software_only_from_mitre_software_ids() -> None:
    answer = {
        "type": "sample",
        "blacklist": [
            {
                "external_references": [
                    {"source_name": "mitre-attack", "external_id": "T1059", "url": "t"},
                    {"source_name": "other", "external_id": "S0001", "url": "o"},
                ]
            },
            {"external_references": "not a list"},
        ],
    }
    assert "software" not in build_maltiverse_event(HASH_ALERT, MD5, "md5", answer)["threat"]


@pytest.mark.parametrize(
    ("srcip", "looked_up"),
    [
        ("185.220.101.4", True),
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("169.254.10.10", False),
        ("fe80::1", False),
        ("224.0.0.251", False),
        ("ff02::1", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("100.64.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::1", False),
        ("8.8.8.8 ", False),
        ("not-an-ip", False),
        (None, False),
        (134744072, False),
    ],
)
def test_only_public_source_addresses_are_looked_up(srcip: Any, looked_up: bool) -> None:
    alert = {"id": "1", "data": {"srcip": srcip}}
    assert [i.kind for i in indicators_of(alert)] == (["ip"] if looked_up else [])


@pytest.mark.parametrize(
    ("syscheck", "kinds"),
    [
        ({"md5_after": MD5, "sha1_after": SHA1}, ["md5", "sha1"]),
        ({"md5_after": MD5.upper(), "sha1_after": SHA1.upper()}, ["md5", "sha1"]),
        ({"md5_after": SHA1, "sha1_after": MD5}, []),
        ({"md5_after": MD5 + " ", "sha1_after": "z" * 40}, []),
        ({"md5_after": "", "sha1_after": None}, []),
    ],
)
def test_only_well_formed_hashes_are_looked_up(syscheck: dict[str, Any], kinds: list[str]) -> None:
    assert [i.kind for i in indicators_of({"syscheck": syscheck})] == kinds


def test_indicator_paths() -> None:
    url = "http://a.example/x?y=1"
    url_sha256 = "80412051455cce4a31e73feb60d65ea2e6f520c9d5477e39ee285ed961b5193d"
    alert = {
        "syscheck": {"md5_after": MD5, "sha1_after": SHA1},
        "data": {"srcip": "2001:4860:4860::8888", "hostname": "a/b.example", "url": url},
    }
    indicators = indicators_of(alert)
    assert [i.path for i in indicators] == [
        f"sample/md5/{MD5}",
        f"sample/sha1/{SHA1}",
        "ip/2001:4860:4860::8888",
        "hostname/a%2Fb.example",
        f"url/{url_sha256}",
    ]
    assert indicators[-1] == Indicator("url", url, url_sha256)


# -- end to end: real local server, real analysisd socket -------------------


@pytest.mark.parametrize("case", golden_cases("maltiverse"), ids=lambda case: case.name)
async def test_golden_case_end_to_end(
    case: Path,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    alert = load_json(case / "alert.json")
    serve(service, load_json(case / "answers.json"))
    maltiverse = make_maltiverse(service.url + "/", session, sink)

    await maltiverse.send(alert)

    assert [r.path for r in service.requests] == [f"/{i.path}" for i in indicators_of(alert)]
    for request in service.requests:
        assert request.method == "GET"
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    expected = load_json(case / "events.json")
    assert analysisd.drain() == [
        format_event_message(event, alert, "maltiverse") for event in expected
    ]


async def test_exact_datagram_for_an_agent_alert(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers["/ip/185.220.101.4"] = Answer(200, IP_ANSWER)
    maltiverse = make_maltiverse(service.url, session, sink)

    await maltiverse.send(IP_ALERT)

    assert analysisd.drain() == [
        b"1:[001] (web-01) 10.0.0.5->maltiverse:"
        b'{"integration": "maltiverse", "alert_id": "1718040660.2", '
        b'"maltiverse": {"source": {"type": "ip", "ip_addr": "185.220.101.4", '
        b'"classification": "malicious", '
        b'"blacklist": [{"source": "Tor Project", "description": "Tor exit node"}]}}, '
        b'"threat": {"indicator": {"name": "185.220.101.4", "type": "ipv4-addr", '
        b'"description": "Tor exit node", "provider": "Tor Project", '
        b'"first_seen": null, "modified_at": null, "last_seen": null, '
        b'"confidence": "Medium", "sightings": 1, '
        b'"reference": "https://maltiverse.com/ip/185.220.101.4", "ip": "185.220.101.4"}}}'
    ]


async def test_an_alert_without_indicators_does_nothing(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    maltiverse = make_maltiverse(service.url, session, sink)
    await maltiverse.send({"id": "1", "rule": {"level": 3}, "data": {"srcip": "10.0.0.1"}})
    assert service.requests == []
    assert analysisd.drain() == []


# -- cache ------------------------------------------------------------------


async def test_answers_come_from_the_cache_across_restarts(
    tmp_path: Path,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[f"/sample/md5/{MD5}"] = Answer(200, SAMPLE_ANSWER)
    service.answers[f"/sample/sha1/{SHA1}"] = Answer(404, {})
    first_store = StateStore(tmp_path / "state.db")
    try:
        await make_maltiverse(service.url, session, sink, cache=first_store).send(HASH_ALERT)
    finally:
        first_store.close()
    second_store = StateStore(tmp_path / "state.db")
    try:
        restarted = make_maltiverse(service.url, session, sink, cache=second_store)
        await restarted.send({**HASH_ALERT, "id": "2"})
    finally:
        second_store.close()

    assert len(service.requests) == 2  # md5 found and sha1 not found, each asked once
    datagrams = analysisd.drain()
    assert datagrams == [
        format_event_message(
            build_maltiverse_event({**HASH_ALERT, "id": alert_id}, MD5, "md5", SAMPLE_ANSWER),
            HASH_ALERT,
            "maltiverse",
        )
        for alert_id in (HASH_ALERT["id"], "2")
    ]


async def test_a_failed_lookup_sends_nothing_and_its_retry_sends_each_event_once(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    store: StateStore,
) -> None:
    service.answers[f"/sample/md5/{MD5}"] = Answer(200, SAMPLE_ANSWER)
    service.answers[f"/sample/sha1/{SHA1}"] = Answer(503, b"busy")
    maltiverse = make_maltiverse(service.url, session, sink, cache=store)
    with pytest.raises(Transient):
        await maltiverse.send(HASH_ALERT)
    assert analysisd.drain() == []

    service.answers[f"/sample/sha1/{SHA1}"] = Answer(200, SAMPLE_ANSWER)
    await maltiverse.send(HASH_ALERT)

    assert [r.path for r in service.requests] == [
        f"/sample/md5/{MD5}",
        f"/sample/sha1/{SHA1}",
        f"/sample/sha1/{SHA1}",
    ]
    assert len(analysisd.drain()) == 2


# -- failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "error_type", "status"),
    [
        (Answer(401, {"status": "error", "message": "Unauthorized"}), Permanent, 401),
        (Answer(403, {}), Permanent, 403),
        (Answer(400, {}), Permanent, 400),
        (Answer(500, b"oops"), Transient, 500),
        (Answer(429, {}, {"Retry-After": "7"}), RateLimited, 429),
        (Answer(200, ["not", "an", "object"]), Permanent, None),
        (Answer(200, b"<html>proxy</html>"), Transient, 200),
    ],
)
async def test_failures_are_classified(
    answer: Answer,
    error_type: type[DeliveryError],
    status: int | None,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers["/ip/185.220.101.4"] = answer
    with pytest.raises(error_type) as caught:
        await make_maltiverse(service.url, session, sink).send(IP_ALERT)
    assert caught.value.status == status
    assert analysisd.drain() == []


async def test_time_out_follows_the_block(
    service: FakeService, session: aiohttp.ClientSession, sink: AnalysisdSocket
) -> None:
    service.answers["/ip/185.220.101.4"] = Answer(hang=True)
    with pytest.raises(Timeout):
        await make_maltiverse(service.url, session, sink, timeout_s=1).send(IP_ALERT)


def test_registered_with_its_required_keys() -> None:
    cls = Registry(entry_point_plugins=False).resolve("maltiverse")
    assert cls is MaltiverseIntegration
    assert cls.required == ("hook_url", "api_key")


# -- secrets ------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["403", "500", "refused", "time-out"])
async def test_the_api_key_never_leaks(
    failure: str,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Our logger too: a test that ran set_up_logging before may have raised its level.
    caplog.set_level(logging.DEBUG, logger="wazuh_integrator")
    caplog.set_level(logging.DEBUG)
    # Answers that echo the key, as some proxies and error pages do.
    echo = {"message": f"token Bearer {API_KEY} refused"}
    hook_url = service.url
    if failure == "403":
        service.answers["/ip/185.220.101.4"] = Answer(403, echo)
    elif failure == "500":
        service.answers["/ip/185.220.101.4"] = Answer(500, echo)
    elif failure == "time-out":
        service.answers["/ip/185.220.101.4"] = Answer(hang=True)
    else:
        hook_url = closed_port_url()
    maltiverse = make_maltiverse(hook_url, session, sink, timeout_s=1)

    with pytest.raises(DeliveryError) as caught:
        await maltiverse.send(IP_ALERT)
    await maltiverse.on_give_up(IP_ALERT, caught.value)

    error = caught.value
    if failure in ("403", "500"):
        assert "token <secret> refused" in str(error)  # quoted, scrubbed
    seen = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(maltiverse.block),
        *(record.getMessage() for record in caplog.records),
        *(repr(record.args) for record in caplog.records),
        *(datagram.decode() for datagram in analysisd.drain()),
    ]
    assert not [text for text in seen if API_KEY in text]


async def test_an_oversized_event_does_not_hold_back_the_others(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    huge = {**SAMPLE_ANSWER, "blacklist": [{"source": "A", "description": "x" * 70_000}]}
    service.answers[f"/sample/md5/{MD5}"] = Answer(200, huge)
    service.answers[f"/sample/sha1/{SHA1}"] = Answer(200, SAMPLE_ANSWER)
    with pytest.raises(EventTooLarge):
        await make_maltiverse(service.url, session, sink).send(HASH_ALERT)
    assert analysisd.drain() == [
        format_event_message(
            build_maltiverse_event(HASH_ALERT, SHA1, "sha1", SAMPLE_ANSWER),
            HASH_ALERT,
            "maltiverse",
        )
    ]
