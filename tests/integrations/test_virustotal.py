"""VirusTotal: golden events, the exact requests of API v2 and v3, the exact
datagrams analysisd receives, error events, the cache, and no leaked key."""

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
    split_datagram,
)

from wazuh_integrator.analysisd import AnalysisdSocket, AnalysisdUnavailable, format_event_message
from wazuh_integrator.config.models import IntegrationSettings, RateLimit
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Timeout, Transient
from wazuh_integrator.integrations.base import LookupCache
from wazuh_integrator.integrations.registry import Registry
from wazuh_integrator.integrations.virustotal import (
    VirusTotalIntegration,
    answer_from_v2,
    answer_from_v3,
    build_error_event,
    build_virustotal_event,
)
from wazuh_integrator.store import StateStore

API_KEY = "vt-0123456789abcdef-SECRET-KEY"
MD5 = "44d88612fea8a8f36de82e1278abb02f"
SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
AGENT = {"id": "001", "name": "web-01", "ip": "10.0.0.5"}
ALERT: dict[str, Any] = {
    "id": "1718040600.1234",
    "rule": {"level": 7, "id": "550", "groups": ["syscheck"]},
    "agent": AGENT,
    "syscheck": {"path": "/tmp/eicar.com", "md5_after": MD5, "sha1_after": SHA1},
    "location": "syscheck",
}
V3_FOUND = {
    "data": {
        "attributes": {
            "sha1": SHA1,
            "last_analysis_date": 1718040123,
            "last_analysis_stats": {"malicious": 3, "undetected": 2, "harmless": 1},
        }
    }
}
V3_NOT_FOUND = {"error": {"code": "NotFoundError", "message": "not found"}}
V2_PATH = "/vtapi/v2/file/report"
V3_PATH = f"/api/v3/files/{MD5}"


def make_virustotal(
    base_url: str,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    *,
    api_version: str | None = None,
    cache: LookupCache | None = None,
    cache_ttl_s: float = 3600.0,
    timeout_s: int = 10,
) -> VirusTotalIntegration:
    settings = IntegrationSettings(api_version=api_version, cache_ttl_s=cache_ttl_s)
    return make_enrichment(
        VirusTotalIntegration,
        base_url,
        session,
        sink,
        api_key=API_KEY,
        settings=settings,
        cache=cache,
        timeout_s=timeout_s,
    )


def reduced(case: Path, alert: dict[str, Any]) -> dict[str, Any]:
    answer = load_json(case / "answer.json")
    if answer["api"] == "v2":
        return answer_from_v2(answer["body"])
    if answer["status"] == 404:
        return {"response_code": 0}
    return answer_from_v3(alert["syscheck"]["md5_after"], answer["body"])


# -- pure event building ---------------------------------------------------


@pytest.mark.parametrize("case", golden_cases("virustotal"), ids=lambda case: case.name)
def test_golden_event(case: Path) -> None:
    alert = load_json(case / "alert.json")
    assert build_virustotal_event(alert, reduced(case, alert)) == load_json(case / "event.json")


def test_v2_answer_is_reduced_to_the_fields_the_event_uses() -> None:
    body = {"response_code": 1, "positives": 1, "total": 2, "scans": {"A": {}}, "md5": MD5}
    assert answer_from_v2(body) == {
        "response_code": 1,
        "sha1": None,
        "scan_date": None,
        "positives": 1,
        "total": 2,
        "permalink": None,
    }


@pytest.mark.parametrize(
    "body", [None, [], {"data": {}}, {"data": {"attributes": []}}, {"error": {}}]
)
def test_v3_answer_without_attributes_is_permanent(body: Any) -> None:
    with pytest.raises(Permanent):
        answer_from_v3(MD5, body)


@pytest.mark.parametrize("body", [None, [], {}, {"response_code": "1"}])
def test_v2_answer_without_response_code_is_permanent(body: Any) -> None:
    with pytest.raises(Permanent):
        answer_from_v2(body)


# -- end to end: real local server, real analysisd socket -------------------


@pytest.mark.parametrize("case", golden_cases("virustotal"), ids=lambda case: case.name)
async def test_golden_case_end_to_end(
    case: Path,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    alert = load_json(case / "alert.json")
    answer = load_json(case / "answer.json")
    md5 = alert["syscheck"]["md5_after"]
    path = V2_PATH if answer["api"] == "v2" else f"/api/v3/files/{md5}"
    service.answers[path] = Answer(answer["status"], answer["body"])
    virustotal = make_virustotal(service.url, session, sink, api_version=answer["api"])

    await virustotal.send(alert)

    [request] = service.requests
    assert (request.method, request.path) == ("GET", path)
    if answer["api"] == "v2":
        assert request.query == {"apikey": API_KEY, "resource": md5}
    else:
        assert request.query == {}
        assert request.headers["x-apikey"] == API_KEY
    expected = load_json(case / "event.json")
    assert analysisd.drain() == [format_event_message(expected, alert, "virustotal")]


async def test_exact_datagram_for_an_agent_alert(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[V3_PATH] = Answer(200, V3_FOUND)
    virustotal = make_virustotal(service.url, session, sink)

    await virustotal.send(ALERT)

    assert analysisd.drain() == [
        b"1:[001] (web-01) 10.0.0.5->virustotal:"
        b'{"virustotal": {"found": 1, "malicious": 1, '
        b'"source": {"alert_id": "1718040600.1234", "file": "/tmp/eicar.com", '
        b'"md5": "44d88612fea8a8f36de82e1278abb02f", '
        b'"sha1": "3395856ce81f2b7382dee72602f798b642f14140"}, '
        b'"sha1": "3395856ce81f2b7382dee72602f798b642f14140", '
        b'"scan_date": "2024-06-10 17:22:03", "positives": 3, "total": 6, '
        b'"permalink": "https://www.virustotal.com/gui/file/44d88612fea8a8f36de82e1278abb02f"}, '
        b'"integration": "virustotal"}'
    ]


async def test_exact_v2_datagram_copies_the_answer_as_stock_does(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    # The v2 answer's values go into the event as they are: scan_date and
    # permalink are VirusTotal's own strings, positives and total its numbers.
    service.answers[V2_PATH] = Answer(
        200,
        {
            "response_code": 1,
            "sha1": SHA1,
            "scan_date": "2024-06-10 17:22:03",
            "positives": 0,
            "total": 70,
            "permalink": "https://www.virustotal.com/gui/file/275a02/detection/f-275a02-1718040123",
            "md5": MD5,
        },
    )
    alert = {**ALERT, "agent": {"id": "000", "name": "manager"}}
    virustotal = make_virustotal(service.url, session, sink, api_version="v2")

    await virustotal.send(alert)

    assert analysisd.drain() == [
        b"1:virustotal:"
        b'{"virustotal": {"found": 1, "malicious": 0, '
        b'"source": {"alert_id": "1718040600.1234", "file": "/tmp/eicar.com", '
        b'"md5": "44d88612fea8a8f36de82e1278abb02f", '
        b'"sha1": "3395856ce81f2b7382dee72602f798b642f14140"}, '
        b'"sha1": "3395856ce81f2b7382dee72602f798b642f14140", '
        b'"scan_date": "2024-06-10 17:22:03", "positives": 0, "total": 70, '
        b'"permalink": "https://www.virustotal.com/gui/file/275a02/detection/'
        b'f-275a02-1718040123"}, '
        b'"integration": "virustotal"}'
    ]


@pytest.mark.parametrize(
    "syscheck",
    [
        None,
        {},
        {"md5_after": None},
        {"md5_after": 12345},
        {"md5_after": MD5[:-1]},
        {"md5_after": MD5 + "0"},
        {"md5_after": " " + MD5},
        {"md5_after": MD5 + "\n"},
        {"md5_after": "g" + MD5[1:]},
        {"md5_after": "xxx"},
        # Stock accepts one case or the other, never both mixed in one hash.
        {"md5_after": "5D41402abc4b2a76b9719d911017c592"},
        {"md5_after": MD5[:-1] + "F"},
    ],
)
async def test_alerts_without_a_well_formed_md5_do_nothing(
    syscheck: Any,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    alert = {**ALERT, "syscheck": syscheck}
    if syscheck is None:
        del alert["syscheck"]
    virustotal = make_virustotal(service.url, session, sink)

    await virustotal.send(alert)
    await virustotal.on_give_up(alert, Transient("HTTP 500", status=500))

    assert service.requests == []
    assert analysisd.drain() == []


# -- cache ------------------------------------------------------------------


async def test_a_hash_looked_up_recently_comes_from_the_cache_across_restarts(
    tmp_path: Path,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[V3_PATH] = Answer(200, V3_FOUND)
    first_store = StateStore(tmp_path / "state.db")
    try:
        virustotal = make_virustotal(service.url, session, sink, cache=first_store)
        await virustotal.send(ALERT)
        await virustotal.send({**ALERT, "id": "2"})
    finally:
        first_store.close()
    second_store = StateStore(tmp_path / "state.db")
    try:
        restarted = make_virustotal(service.url, session, sink, cache=second_store)
        upper = {**ALERT, "syscheck": {**ALERT["syscheck"], "md5_after": MD5.upper()}}
        await restarted.send(upper)
    finally:
        second_store.close()

    assert len(service.requests) == 1
    datagrams = analysisd.drain()
    assert len(datagrams) == 3
    events = [split_datagram(datagram)[1]["virustotal"] for datagram in datagrams]
    assert [event["source"]["alert_id"] for event in events] == [ALERT["id"], "2", ALERT["id"]]
    assert {event["positives"] for event in events} == {3}


async def test_not_found_answers_are_cached_too(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    store: StateStore,
) -> None:
    service.answers[V3_PATH] = Answer(404, V3_NOT_FOUND)
    virustotal = make_virustotal(service.url, session, sink, cache=store)
    await virustotal.send(ALERT)
    await virustotal.send(ALERT)
    assert len(service.requests) == 1
    assert [split_datagram(d)[1]["virustotal"]["found"] for d in analysisd.drain()] == [0, 0]


async def test_failures_are_not_cached(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    store: StateStore,
) -> None:
    service.answers[V3_PATH] = Answer(500, {"error": {"code": "TransientError"}})
    virustotal = make_virustotal(service.url, session, sink, cache=store)
    with pytest.raises(Transient):
        await virustotal.send(ALERT)
    service.answers[V3_PATH] = Answer(200, V3_FOUND)
    await virustotal.send(ALERT)
    assert len(service.requests) == 2
    assert len(analysisd.drain()) == 1


async def test_a_zero_ttl_disables_the_cache(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    store: StateStore,
) -> None:
    service.answers[V3_PATH] = Answer(200, V3_FOUND)
    virustotal = make_virustotal(service.url, session, sink, cache=store, cache_ttl_s=0)
    await virustotal.send(ALERT)
    await virustotal.send(ALERT)
    assert len(service.requests) == 2


# -- failures and the error events sent on giving up ------------------------

RATE_LIMIT_EVENT = {"error": 204, "description": "Error: Public API request rate limit reached"}


@pytest.mark.parametrize(
    ("api_version", "answer", "error_type", "status", "error_event"),
    [
        pytest.param("v2", Answer(204), RateLimited, 204, RATE_LIMIT_EVENT, id="v2-204"),
        pytest.param(
            "v2",
            Answer(429, {}, {"Retry-After": "30"}),
            RateLimited,
            429,
            # Stock's v2 script knows only 204 as the quota: a proxy's 429 is a failure.
            {"error": 429, "description": "Error: API request fail"},
            id="v2-429",
        ),
        pytest.param(
            "v2",
            Answer(401),
            Permanent,
            401,
            {"error": 401, "description": "Error: API request fail"},
            id="v2-401",
        ),
        pytest.param(
            "v3",
            Answer(403, {"error": {"code": "ForbiddenError"}}),
            Permanent,
            403,
            {"error": 403, "description": "Error: Check credentials"},
            id="v3-403",
        ),
        pytest.param(
            "v2",
            Answer(404, b"<html>no such page</html>"),
            Permanent,
            404,
            {"error": 404, "description": "Error: API request fail"},
            id="v2-404",
        ),
        pytest.param(
            "v3",
            Answer(429, {"error": {"code": "QuotaExceededError"}}),
            RateLimited,
            429,
            RATE_LIMIT_EVENT,
            id="v3-429",
        ),
        pytest.param(
            "v2",
            Answer(403),
            Permanent,
            403,
            {"error": 403, "description": "Error: Check credentials"},
            id="v2-403",
        ),
        pytest.param(
            "v3",
            Answer(401, {"error": {"code": "WrongCredentialsError"}}),
            Permanent,
            401,
            {"error": 401, "description": "Error: Check credentials"},
            id="v3-401",
        ),
        pytest.param(
            "v2",
            Answer(500, b"<html>oops</html>"),
            Transient,
            500,
            {"error": 500, "description": "Error: API request fail"},
            id="v2-500",
        ),
        pytest.param(
            "v3",
            Answer(404, b"<html>no such page</html>"),
            Permanent,
            404,
            {"error": 404, "description": "Error: API request fail"},
            id="v3-404-not-from-virustotal",
        ),
        pytest.param(
            "v3",
            Answer(400, {"error": {"code": "BadRequestError"}}),
            Permanent,
            400,
            {"error": 400, "description": "Error: API request fail"},
            id="v3-400",
        ),
    ],
)
async def test_failure_is_classified_and_its_error_event_sent_on_give_up(
    api_version: str,
    answer: Answer,
    error_type: type[DeliveryError],
    status: int,
    error_event: dict[str, Any],
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[V2_PATH if api_version == "v2" else V3_PATH] = answer
    virustotal = make_virustotal(service.url, session, sink, api_version=api_version)

    with pytest.raises(error_type) as caught:
        await virustotal.send(ALERT)
    assert caught.value.status == status
    assert analysisd.drain() == []

    await virustotal.on_give_up(ALERT, caught.value)
    assert analysisd.drain() == [
        format_event_message(
            {"virustotal": error_event, "integration": "virustotal"}, ALERT, "virustotal"
        )
    ]


async def test_retry_after_of_a_429_reaches_the_delivery_layer(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[V3_PATH] = Answer(429, {}, {"Retry-After": "42"})
    virustotal = make_virustotal(service.url, session, sink)
    with pytest.raises(RateLimited) as caught:
        await virustotal.send(ALERT)
    assert caught.value.retry_after_s == 42.0


async def test_time_out_gives_error_408(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[V3_PATH] = Answer(hang=True)
    virustotal = make_virustotal(service.url, session, sink, timeout_s=1)
    with pytest.raises(Timeout) as caught:
        await virustotal.send(ALERT)

    await virustotal.on_give_up(ALERT, caught.value)

    assert analysisd.drain() == [
        b"1:[001] (web-01) 10.0.0.5->virustotal:"
        b'{"virustotal": {"error": 408, "description": "Error: API request timed out"}, '
        b'"integration": "virustotal"}'
    ]


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_connection_refused_is_transient_and_sends_no_error_event(
    api_version: str,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    # Stock's script only reports answers it got (and time-outs); a refused
    # connection ends it with nothing sent to analysisd.
    virustotal = make_virustotal(closed_port_url(), session, sink, api_version=api_version)
    with pytest.raises(Transient) as caught:
        await virustotal.send(ALERT)
    assert caught.value.status is None
    await virustotal.on_give_up(ALERT, caught.value)
    assert analysisd.drain() == []


@pytest.mark.parametrize("api_version", ["v2", "v3"])
async def test_an_unreadable_200_sends_no_error_event(
    api_version: str,
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[V2_PATH if api_version == "v2" else V3_PATH] = Answer(200, b"<html>hi</html>")
    virustotal = make_virustotal(service.url, session, sink, api_version=api_version)
    with pytest.raises(Transient) as caught:
        await virustotal.send(ALERT)
    await virustotal.on_give_up(ALERT, caught.value)
    assert analysisd.drain() == []


@pytest.mark.parametrize(
    ("api_version", "error", "expected"),
    [
        ("v2", RateLimited("quota", status=204), (204, RATE_LIMIT_EVENT["description"])),
        ("v3", RateLimited("quota", status=429), (204, RATE_LIMIT_EVENT["description"])),
        ("v2", RateLimited("slow down", status=429), (429, "Error: API request fail")),
        ("v2", Timeout("timed out"), (408, "Error: API request timed out")),
        ("v3", Timeout("timed out"), (408, "Error: API request timed out")),
        ("v2", Permanent("forbidden", status=403), (403, "Error: Check credentials")),
        ("v2", Permanent("unauthorized", status=401), (401, "Error: API request fail")),
        ("v3", Permanent("unauthorized", status=401), (401, "Error: Check credentials")),
        ("v2", Transient("bad gateway", status=502), (502, "Error: API request fail")),
        ("v2", Transient("connection failed"), None),
        ("v3", Permanent("no data.attributes"), None),
        ("v2", Transient("answer is not JSON", status=200), None),
    ],
)
def test_error_event_table(
    api_version: str, error: DeliveryError, expected: tuple[int, str] | None
) -> None:
    event = build_error_event(error, api_version)
    if expected is None:
        assert event is None
        return
    code, text = expected
    assert event == {
        "virustotal": {"error": code, "description": text},
        "integration": "virustotal",
    }


async def test_no_error_event_when_it_is_analysisd_that_failed(
    service: FakeService,
    analysisd: DatagramReceiver,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
) -> None:
    service.answers[V3_PATH] = Answer(200, V3_FOUND)
    virustotal = make_virustotal(service.url, session, sink)
    async with AnalysisdSocket(analysisd.path.with_name("absent")) as absent:
        virustotal.context.events = absent
        with pytest.raises(AnalysisdUnavailable) as caught:
            await virustotal.send(ALERT)
    virustotal.context.events = sink
    await virustotal.on_give_up(ALERT, caught.value)
    assert analysisd.drain() == []


# -- settings and registration ------------------------------------------------


def test_registered_with_its_defaults() -> None:
    cls = Registry(entry_point_plugins=False).resolve("virustotal")
    assert cls is VirusTotalIntegration
    assert cls.required == ("api_key",)
    assert cls.default_rate_limits == (RateLimit(4, 60), RateLimit(500, 86400))
    assert cls.default_concurrency <= 4


async def test_unknown_api_version_is_refused(
    analysisd: DatagramReceiver, session: aiohttp.ClientSession, sink: AnalysisdSocket
) -> None:
    with pytest.raises(ValueError, match="api_version must be one of v2, v3, not 'v4'"):
        make_virustotal("http://127.0.0.1:1", session, sink, api_version="v4")


# -- secrets ------------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["v2", "v3"])
@pytest.mark.parametrize("failure", ["403", "500", "refused", "time-out"])
async def test_the_api_key_never_leaks(
    api_version: str,
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
    echo = {"error": f"invalid key {API_KEY}", "url": f"{service.url}{V2_PATH}?apikey={API_KEY}"}
    path = V2_PATH if api_version == "v2" else V3_PATH
    base_url = service.url
    if failure == "403":
        service.answers[path] = Answer(403, echo)
    elif failure == "500":
        service.answers[path] = Answer(500, echo)
    elif failure == "time-out":
        service.answers[path] = Answer(hang=True)
    else:
        base_url = closed_port_url()
    virustotal = make_virustotal(base_url, session, sink, api_version=api_version, timeout_s=1)

    with pytest.raises(DeliveryError) as caught:
        await virustotal.send(ALERT)
    await virustotal.on_give_up(ALERT, caught.value)

    error = caught.value
    if failure in ("403", "500"):
        assert "invalid key <secret>" in str(error)  # the echoed answer is quoted, scrubbed
    seen = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(virustotal.block),
        *(record.getMessage() for record in caplog.records),
        *(repr(record.args) for record in caplog.records),
        *(datagram.decode() for datagram in analysisd.drain()),
    ]
    assert len(seen) > 4
    assert not [text for text in seen if API_KEY in text]
