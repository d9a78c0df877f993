"""The one classifier: every status 100-599, Retry-After, exceptions, messages."""

from __future__ import annotations

from datetime import datetime, timezone

import aiohttp
import pytest

from wazuh_integrator.classify import (
    BODY_SNIPPET_BYTES,
    classify_exception,
    classify_status,
    parse_retry_after,
)
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Timeout, Transient


def _expected(status: int) -> type[DeliveryError] | None:
    """The rule, restated: 2xx ok; 429 and 503 rate limits; 408 and 5xx transient."""
    if 200 <= status <= 299:
        return None
    if status in (429, 503):
        return RateLimited
    if status == 408 or 500 <= status <= 599:
        return Transient
    return Permanent


@pytest.mark.parametrize("status", range(100, 600))
def test_every_status(status: int) -> None:
    outcome = classify_status(status)
    expected = _expected(status)
    if expected is None:
        assert outcome is None
    else:
        assert type(outcome) is expected
        assert outcome.status == status
        assert str(outcome).startswith(f"HTTP {status}")


@pytest.mark.parametrize("status", [0, 99, 600, 999, -1])
def test_nonsense_statuses_are_permanent(status: int) -> None:
    assert type(classify_status(status)) is Permanent


@pytest.mark.parametrize(("status", "extra"), [(409, {409}), (425, {409, 425}), (302, {302})])
def test_extra_transient_codes(status: int, extra: set[int]) -> None:
    assert type(classify_status(status, extra_transient=frozenset(extra))) is Transient
    assert type(classify_status(status)) is Permanent


def test_extra_transient_does_not_turn_success_into_failure() -> None:
    assert classify_status(200, extra_transient=frozenset({200})) is None


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("header", "seconds"), [("120", 120.0), ("0", 0.0), (None, None), ("soon", None), ("", None)]
)
def test_rate_limits_carry_retry_after(
    status: int, header: str | None, seconds: float | None
) -> None:
    outcome = classify_status(status, retry_after=header)
    assert isinstance(outcome, RateLimited)
    assert outcome.retry_after_s == seconds


NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("Wed, 01 May 2024 10:01:30 GMT", 90.0),
        ("Wed, 01 May 2024 09:00:00 GMT", 0.0),  # in the past: go now
        ("Wednesday, 01-May-24 10:00:05 GMT", 5.0),  # RFC 850, still allowed
        ("Wed May  1 10:00:10 2024", 10.0),  # asctime
        (" 42 ", 42.0),
        ("-5", None),
        ("1.5", None),
        ("Wed, 99 Foo 2024", None),
        ("\u00b2", None),  # latin-1 byte 0xB2: a digit to str.isdigit(), not to float()
        ("1\u00b3", None),
        ("\u0663", None),  # an Arabic-Indic three: delta-seconds is ASCII digits only
    ],
)
def test_parse_retry_after(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_permanent_message_quotes_the_answer_start_with_urls_redacted() -> None:
    body = (
        b'{"error": "invalid_token",\n "see": "https://hooks.slack.com/services/T0/B0/tok3n"}'
        + b"x" * 5000
    )
    outcome = classify_status(403, body=body)
    assert isinstance(outcome, Permanent)
    message = str(outcome)
    assert message.startswith(
        'HTTP 403: {"error": "invalid_token", "see": "https://hooks.slack.com/'
    )
    assert "tok3n" not in message
    assert "\n" not in message
    assert len(message) < BODY_SNIPPET_BYTES + 50


def test_body_cut_inside_a_multibyte_character_is_still_text() -> None:
    body = "é".encode() * BODY_SNIPPET_BYTES
    outcome = classify_status(400, body=body)
    assert outcome is not None
    assert str(outcome).startswith("HTTP 400: éé")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError("read"), Timeout),
        (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), Timeout),
        (aiohttp.ConnectionTimeoutError("connect"), Timeout),
        (aiohttp.SocketTimeoutError("sock read"), Timeout),
        (aiohttp.ServerDisconnectedError(), Transient),
        (aiohttp.ClientConnectionError("reset"), Transient),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), Transient),
        (aiohttp.ClientPayloadError("truncated"), Transient),
        (ConnectionRefusedError(111, "Connection refused"), Transient),
        (OSError(101, "Network is unreachable"), Transient),
        (aiohttp.InvalidURL("http://[::1"), Permanent),
        (ValueError("unexpected"), Permanent),
        (RuntimeError("bug"), Permanent),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_exceptions(exc: BaseException, expected: type[DeliveryError]) -> None:
    outcome = classify_exception(exc)
    assert type(outcome) is expected
    assert outcome.status is None


def test_delivery_errors_pass_through_unchanged() -> None:
    error = RateLimited("slow down", retry_after_s=3.0, status=429)
    assert classify_exception(error) is error


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ClientConnectionError("failed for https://hooks.slack.com/services/T0/B0/tok3n"),
        aiohttp.InvalidURL("hooks.slack.com/services/T0/B0/tok3n"),
        OSError("cannot reach http://shuffle:3001/api/v1/hooks/tok3n"),
    ],
    ids=["client-error", "invalid-url", "os-error"],
)
def test_exception_messages_never_carry_the_url_path(exc: BaseException) -> None:
    outcome = classify_exception(exc)
    assert "tok3n" not in str(outcome)
    assert "tok3n" not in repr(outcome)
