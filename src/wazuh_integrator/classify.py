"""The one place that decides what an HTTP answer or a client failure means.

Integrations never decide on their own whether a failure is worth retrying:
they hand the status (or the exception) to this module and raise what it
returns. Integrations that know a service-specific transient code pass it as
data (``extra_transient``) rather than branching on it themselves.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import aiohttp

from wazuh_integrator import compat
from wazuh_integrator.errors import (
    DeliveryError,
    Permanent,
    RateLimited,
    Timeout,
    Transient,
)
from wazuh_integrator.secret import longest_form_bytes, redact_urls_in, scrub

__all__ = [
    "BODY_SNIPPET_BYTES",
    "classify_exception",
    "classify_status",
    "parse_retry_after",
    "snippet_read_bytes",
]

# The part of an error answer worth quoting: enough for Slack's
# "invalid_payload" or PagerDuty's error list, never a whole HTML page.
BODY_SNIPPET_BYTES = 1024

_RATE_LIMIT_STATUSES = frozenset({429, 503})
_TRANSIENT_4XX = frozenset({408, 429})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or None.

    Accepts both forms of RFC 9110: delta-seconds (``"120"``) and an HTTP-date.
    A date in the past means "now" (0.0); anything unreadable means None, so
    the caller falls back to its own backoff rather than trusting garbage.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    # delta-seconds is ASCII digits only (RFC 9110); str.isdigit() also takes
    # "²" or "٣", which a latin-1 header byte can carry and float() refuses.
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # An HTTP-date is GMT by definition; a date without a zone is read as such.
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc)
    seconds = (when - current).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _snippet(body: bytes, secrets: Collection[str]) -> str:
    """The quotable start of an answer: secrets scrubbed first, then white
    space collapsed (one line per message) and the text cut to its limit, so
    that neither a collapsed nor a cut secret escapes the scrubbing."""
    text = scrub(body.decode("utf-8", errors="replace"), secrets)
    text = redact_urls_in(" ".join(text.split()))
    encoded = text.encode()
    if len(encoded) > BODY_SNIPPET_BYTES:
        text = encoded[:BODY_SNIPPET_BYTES].decode(errors="ignore")
    return text


def snippet_read_bytes(secrets: Collection[str]) -> int:
    """How much of an error answer to read to quote its first
    :data:`BODY_SNIPPET_BYTES` safely: a secret straddling the limit is read whole."""
    return BODY_SNIPPET_BYTES + longest_form_bytes(secrets)


def _describe(status: int, body: bytes, secrets: Collection[str]) -> str:
    snippet = _snippet(body, secrets)
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"


def classify_status(
    status: int,
    *,
    retry_after: str | None = None,
    body: bytes = b"",
    extra_transient: frozenset[int] = frozenset(),
    secrets: Collection[str] = (),
) -> DeliveryError | None:
    """The outcome of an HTTP answer: None for 2xx, else the error to raise.

    408, 429, every 5xx and ``extra_transient`` are :class:`Transient`; 429 and
    503 are :class:`RateLimited` with the ``Retry-After`` delay when one was
    given. Everything else (1xx, 3xx, other 4xx, nonsense) is
    :class:`Permanent`. Messages quote the start of the answer with
    ``secrets`` (in every encoding) and any URL in it redacted.
    """
    if 200 <= status <= 299:
        return None
    message = _describe(status, body, secrets)
    if status in _RATE_LIMIT_STATUSES:
        return RateLimited(message, retry_after_s=parse_retry_after(retry_after), status=status)
    if status in _TRANSIENT_4XX or 500 <= status <= 599 or status in extra_transient:
        return Transient(message, status=status)
    return Permanent(message, status=status)


def _exception_text(exc: BaseException) -> str:
    detail = redact_urls_in(" ".join(str(exc).split()))
    name = type(exc).__name__
    return f"{name}: {detail}" if detail else name


def classify_exception(exc: BaseException) -> DeliveryError:
    """The outcome of an exception raised while talking to a service.

    Time-outs are :class:`Timeout`; connection and socket failures are
    :class:`Transient`; a malformed URL, or anything we do not recognise, is
    :class:`Permanent` since repeating the same call cannot change it. A
    :class:`DeliveryError` is returned unchanged.
    """
    if isinstance(exc, DeliveryError):
        return exc
    text = _exception_text(exc)
    # ServerTimeoutError is also a ClientError: test for time-outs first (it is an
    # asyncio.TimeoutError, which compat.TIMEOUT_ERRORS covers on every Python).
    if isinstance(exc, compat.TIMEOUT_ERRORS):
        return Timeout(f"timed out: {text}")
    if isinstance(exc, aiohttp.InvalidURL):
        # Its text is the URL itself, possibly too malformed to be recognised
        # and redacted as one: say nothing more than the type.
        return Permanent(f"invalid URL ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return Transient(f"connection failed: {text}")
    return Permanent(f"unexpected failure: {text}")
