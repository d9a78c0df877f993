"""Secrets out of free text: URL redaction, and every form a receiver may echo a
secret in scrubbed."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from wazuh_integrator.classify import BODY_SNIPPET_BYTES, classify_status
from wazuh_integrator.secret import (
    header_secret_parts,
    redact_url,
    redact_urls_in,
    scrub,
    url_secret_parts,
)

HOOK_SECRET = "sec ret|tok/9+Z"
API_KEY = "VT KEY/SIX+"


def lower_hex(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            out.append(text[i : i + 3].lower())
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    "echoed",
    [
        HOOK_SECRET,
        quote(HOOK_SECRET, safe=""),
        lower_hex(quote(HOOK_SECRET, safe="")),
        quote_plus(HOOK_SECRET, safe=""),
        quote_plus(HOOK_SECRET, safe="/"),
        lower_hex(quote_plus(HOOK_SECRET)),
        quote(HOOK_SECRET),
        HOOK_SECRET.replace("/", "\\/"),
    ],
)
def test_each_encoding_of_a_secret_is_scrubbed(echoed: str) -> None:
    text = scrub(f"answer: {echoed} (end)", [HOOK_SECRET])
    assert text == "answer: <secret> (end)"


def test_the_v2_key_echoed_url_encoded() -> None:
    assert scrub("bad key VT+KEY/SIX%2B", [API_KEY]) == "bad key <secret>"


@pytest.mark.parametrize(
    ("user_info", "sent"),
    [
        ("hookUser:pa%20ss%40word", b"hookUser:pa ss@word"),  # percent-decoded, as sent
        ("tokenAsUser", b"tokenAsUser:"),  # a user alone is sent with an empty password
        ("user:p%C3%A4ss", "user:päss".encode("latin-1")),  # aiohttp's default encoding
    ],
)
def test_the_basic_credentials_of_a_url_are_secret(user_info: str, sent: bytes) -> None:
    echoed = f"Authorization: Basic {base64.b64encode(sent).decode()}"
    parts = url_secret_parts(f"https://{user_info}@example.com/hook")
    assert scrub(echoed, parts) == "Authorization: Basic <secret>"


def test_credential_headers_are_secret_and_others_are_not() -> None:
    headers = {
        "Authorization": "Bearer tokAA11",
        "X-API-Key": "keyBB22",
        "X-Auth-Token": "tokCC33",
        "X-Hub-Signature-256": "sha256=sigDD44",
        "Cookie": "session=ckEE55",
        "X-Source": "wazuhFF66",
        "Content-Type": "application/json",
        "X-Key": "abc",  # too short to scrub without eating words
    }
    parts = header_secret_parts(headers)
    for value in ("Bearer tokAA11", "tokAA11", "keyBB22", "tokCC33", "sha256=sigDD44"):
        assert value in parts
    assert "session=ckEE55" in parts
    assert not {"wazuhFF66", "application/json", "abc"} & set(parts)


def test_a_key_with_white_space_is_scrubbed_before_and_after_collapsing() -> None:
    key = "abc\tdef  ghi"
    assert scrub(f"x {key} y", [key]) == "x <secret> y"
    assert scrub("x abc def ghi y", [key]) == "x <secret> y"


def test_each_secret_part_of_a_hook_url_is_its_own_secret() -> None:
    url = "https://hooks.slack.com/services/T0ABC123/B0DEF456/xoxTokenAbc?sig=s1gnature"
    parts = url_secret_parts(url)
    for part in ("T0ABC123", "B0DEF456", "xoxTokenAbc", "s1gnature", "/services/T0ABC123"):
        assert any(part in found for found in parts)
    assert "services" not in parts  # a route word, not a token
    assert scrub("no such token: xoxTokenAbc", parts) == "no such token: <secret>"


def test_a_secret_straddling_the_snippet_limit_is_scrubbed_before_the_cut() -> None:
    key = "straddlingKey0123456789abcdef"
    for shift in range(-len(key), 1, 7):
        body = ("x" * (BODY_SNIPPET_BYTES + shift) + quote_plus(key) + "y" * 50).encode()
        error = classify_status(400, body=body, secrets=[key])
        assert error is not None
        text = str(error)
        assert key[:8] not in text and quote_plus(key)[:8] not in text, shift
        assert len(text.encode()) <= BODY_SNIPPET_BYTES + len("HTTP 400: ")


def test_white_space_in_an_echoed_key_does_not_defeat_the_scrub() -> None:
    key = "key  with\tspaces"
    error = classify_status(401, body=f"invalid api key: {key}".encode(), secrets=[key])
    assert str(error) == "HTTP 401: invalid api key: <secret>"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "POST https://hooks.slack.com/services/T/B/tok failed",
            "https://hooks.slack.com/<redacted>",
        ),
        ("to https://h.example:8443/x?key=k", "https://h.example:8443/<redacted>"),
        # A colon after the port is not a port: once this raised out of an error handler.
        ("receiver https://h.example:443: refused", "<redacted url>"),
    ],
)
def test_urls_in_text_are_redacted(text: str, shown: str) -> None:
    redacted = redact_urls_in(text)

    assert shown in redacted
    assert "tok" not in redacted
    assert "key=k" not in redacted


def test_a_bare_host_keeps_its_port() -> None:
    assert redact_url("http://127.0.0.1:9758") == "http://127.0.0.1:9758"
