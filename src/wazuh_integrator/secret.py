"""Secrets as a type, so that printing one by mistake prints nothing useful."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_REDACTED = "<secret>"


class Secret:
    """A string that never shows itself in ``str``, ``repr`` or f-strings.

    Call :meth:`reveal` at the single place that needs the real value (the
    HTTP request, the script's argv).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return _REDACTED

    def __repr__(self) -> str:
        return f"Secret({_REDACTED})"

    def __format__(self, format_spec: str) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact_url(url: str | Secret) -> str:
    """Keep scheme and host of a URL, hide the path and query that carry tokens.

    ``https://hooks.slack.com/services/T0/B0/xyz`` becomes
    ``https://hooks.slack.com/<redacted>``.
    """
    raw = url.reveal() if isinstance(url, Secret) else url
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises for "host:443:", as free text may hold
    except ValueError:
        return "<redacted url>"
    if not parts.scheme or not parts.netloc:
        return "<redacted url>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    tail = "/<redacted>" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{tail}"


def scrub(text: str, secrets: list[str]) -> str:
    """Remove every occurrence of each secret value from ``text``."""
    for value in secrets:
        if value:
            text = text.replace(value, _REDACTED)
    return text


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def redact_urls_in(text: str) -> str:
    """Redact every URL found inside free text (exception messages, answers)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
