"""URL redaction copes with whatever free text holds."""

from __future__ import annotations

import pytest

from wazuh_integrator.secret import redact_url, redact_urls_in


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
