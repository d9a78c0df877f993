"""post_json and get_json against a real local server: bodies, statuses,
bounded reads, redirects, time-outs and what their errors may say."""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

import aiohttp
import pytest

from wazuh_integrator import __version__
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Timeout, Transient
from wazuh_integrator.integrations.http import get_json, post_json

TOKEN = "tok3nNeverLeak9876"
API_KEY = "apiKeyNeverLeak1234"


async def test_post_json_sends_compact_json_with_its_headers(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    body = {"b": 1, "a": [1, 2], "nested": MappingProxyType({"z": "é"})}
    await post_json(session, receiver.url("/hook"), body, timeout_s=5, headers={"X-Extra": "yes"})
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Extra"] == "yes"
    assert request.headers["User-Agent"] == f"wazuh-integrator/{__version__}"
    assert request.body == '{"b":1,"a":[1,2],"nested":{"z":"é"}}'.encode()


async def test_post_json_refuses_a_body_that_is_not_json(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(Permanent, match="payload is not JSON"):
        await post_json(session, receiver.url("/hook"), {"x": object()}, timeout_s=5)
    assert receiver.requests == []


async def test_post_json_does_not_follow_redirects(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    receiver.answer(302, b"", {"Location": receiver.url("/elsewhere")})
    with pytest.raises(Permanent) as info:
        await post_json(session, receiver.url("/hook"), {"a": 1}, timeout_s=5)
    assert info.value.status == 302
    assert [request.path_qs for request in receiver.requests] == ["/hook"]


async def test_error_answer_is_read_only_in_part(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    receiver.answer(400, b"invalid_payload " + b"x" * (4 * 1024 * 1024))
    with pytest.raises(Permanent) as info:
        await post_json(session, receiver.url("/hook"), {"a": 1}, timeout_s=5)
    message = str(info.value)
    assert message.startswith("HTTP 400: invalid_payload xxx")
    assert len(message) < 1100


async def test_rate_limit_carries_retry_after(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    receiver.answer(429, b"rate_limited", {"Retry-After": "30"})
    with pytest.raises(RateLimited) as info:
        await post_json(session, receiver.url("/hook"), {"a": 1}, timeout_s=5)
    assert info.value.retry_after_s == 30.0
    assert info.value.status == 429


async def test_extra_transient_codes(receiver: Any, session: aiohttp.ClientSession) -> None:
    receiver.answer(409)
    with pytest.raises(Transient):
        await post_json(
            session, receiver.url("/hook"), {}, timeout_s=5, extra_transient=frozenset({409})
        )


@pytest.mark.parametrize("call", ["post", "get"])
async def test_time_out(call: str, receiver: Any, session: aiohttp.ClientSession) -> None:
    receiver.answer(hang=True)
    with pytest.raises(Timeout):
        if call == "post":
            await post_json(session, receiver.url("/hook"), {}, timeout_s=0.2)
        else:
            await get_json(session, receiver.url("/lookup"), timeout_s=0.2)


@pytest.mark.parametrize("call", ["post", "get"])
async def test_connection_refused_is_transient_not_timeout(
    call: str, refused_base_url: str, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(Transient) as info:
        if call == "post":
            await post_json(session, refused_base_url + "/hook", {}, timeout_s=5)
        else:
            await get_json(session, refused_base_url + "/lookup", timeout_s=5)
    assert type(info.value) is Transient


async def test_invalid_url_is_permanent(session: aiohttp.ClientSession) -> None:
    with pytest.raises(Permanent) as info:
        await post_json(session, f"http://[::1/{TOKEN}", {}, timeout_s=5)
    assert TOKEN not in str(info.value)


async def test_get_json_decodes_the_answer_and_sends_params(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    receiver.answer(200, b'{"response_code": 1, "positives": 0}')
    status, answer = await get_json(
        session,
        receiver.url("/vtapi/v2/file/report"),
        timeout_s=5,
        params={"resource": "abc", "apikey": API_KEY},
        headers={"Accept": "application/json"},
    )
    assert (status, answer) == (200, {"response_code": 1, "positives": 0})
    [request] = receiver.requests
    assert request.method == "GET"
    assert request.path_qs == f"/vtapi/v2/file/report?resource=abc&apikey={API_KEY}"
    assert request.headers["User-Agent"] == f"wazuh-integrator/{__version__}"
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("status", "body", "ok", "expected"),
    [
        (404, b'{"message": "Not found"}', {200, 404}, (404, {"message": "Not found"})),
        (404, b"<html>not found</html>", {200, 404}, (404, None)),
        (204, b"", {200, 204}, (204, None)),
        (200, b"  ", {200}, (200, None)),
        (200, b"[]", {200}, (200, [])),
    ],
)
async def test_get_json_returns_listed_statuses(
    status: int,
    body: bytes,
    ok: set[int],
    expected: tuple[int, Any],
    receiver: Any,
    session: aiohttp.ClientSession,
) -> None:
    receiver.answer(status, body)
    answer = await get_json(session, receiver.url("/x"), timeout_s=5, ok_statuses=frozenset(ok))
    assert answer == expected


@pytest.mark.parametrize(
    ("status", "ok", "error"),
    [
        (404, {200}, Permanent),
        (204, {200}, Permanent),  # a 2xx the caller does not expect
        (403, {200, 404}, Permanent),
        (500, {200, 404}, Transient),
        (429, {200}, RateLimited),
    ],
)
async def test_get_json_raises_for_other_statuses(
    status: int,
    ok: set[int],
    error: type[DeliveryError],
    receiver: Any,
    session: aiohttp.ClientSession,
) -> None:
    receiver.answer(status, b"{}")
    with pytest.raises(DeliveryError) as info:
        await get_json(session, receiver.url("/x"), timeout_s=5, ok_statuses=frozenset(ok))
    assert type(info.value) is error
    assert info.value.status == status


async def test_get_json_ok_answer_that_is_not_json_is_transient(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    receiver.answer(200, b"<html>proxy login</html>")
    with pytest.raises(Transient, match="not JSON"):
        await get_json(session, receiver.url("/x"), timeout_s=5)


async def test_get_json_answer_too_large_is_permanent(
    receiver: Any, session: aiohttp.ClientSession
) -> None:
    receiver.answer(200, b"[" + b"1," * 10_000 + b"1]")
    with pytest.raises(Permanent, match="larger than 1000 bytes"):
        await get_json(session, receiver.url("/x"), timeout_s=5, max_answer_bytes=1000)


@pytest.mark.parametrize("call", ["post", "get"])
async def test_errors_never_echo_url_params_headers_or_secrets(
    call: str,
    receiver: Any,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    assert_no_leak: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.answer(400, echo=True)
    url = receiver.url(f"/hooks/{TOKEN}?sig={TOKEN}x")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with pytest.raises(Permanent) as info:
        if call == "post":
            await post_json(
                session, url, {"key": "bodySecretNeverLeak"}, timeout_s=5,
                headers=headers, secrets=["bodySecretNeverLeak"],
            )  # fmt: skip
        else:
            await get_json(
                session, url, timeout_s=5, headers=headers, params={"apikey": "paramNeverLeak"}
            )
    # The echo did reach the message (so the check below means something) ...
    assert "bad request to" in str(info.value)
    # ... without any of what the request carried.
    assert_no_leak(info.value, [TOKEN, API_KEY, "bodySecretNeverLeak", "paramNeverLeak"])


async def test_foreign_exception_is_not_chained(
    refused_base_url: str, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(Transient) as info:
        await post_json(session, f"{refused_base_url}/hooks/{TOKEN}", {}, timeout_s=5)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
