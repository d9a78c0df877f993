"""Secrets as a type, so that printing one by mistake prints nothing useful,
and scrubbing: every form a receiver may echo a secret in, removed from text."""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

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


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every occurrence of each secret value from ``text``, in each
    form a receiver may echo it in (see :func:`secret_forms`)."""
    for form in _forms_of(tuple(secrets)):
        if form in text:
            text = text.replace(form, _REDACTED)
    return text


# Path segments that name a route rather than hold a token: plain lowercase
# words ("services", "hooks", "api") and versions ("v1").
_ROUTE_WORD = re.compile(r"[a-z]+(?:[-_.][a-z]+)*|v[0-9]+(?:\.[0-9]+)*")
_TOKEN_MIN_CHARS = 4
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def url_secret_parts(url: str) -> list[str]:
    """The parts of ``url`` that may each carry a token, the URL itself first.

    An answer may echo the whole URL, its path, its query, one query value,
    the user or password, or one path segment alone (a Slack token is the
    last one). Segments that are plain route words are left out, so that a
    message saying "services" keeps its word.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [url]
    if parts.path not in ("", "/"):
        found.append(parts.path)
        segments = [segment for segment in parts.path.split("/") if segment]
        for position, segment in enumerate(segments):
            last = position == len(segments) - 1
            if len(segment) >= _TOKEN_MIN_CHARS and (last or not _ROUTE_WORD.fullmatch(segment)):
                found.append(segment)
    if parts.query:
        found.append(parts.query)
        found.extend(value for _, value in parse_qsl(parts.query) if len(value) >= _TOKEN_MIN_CHARS)
    # Shorter than that, a value would be scrubbed out of every word it occurs in.
    found.extend(
        value
        for value in (parts.username, parts.password)
        if value and len(value) >= _TOKEN_MIN_CHARS
    )
    if parts.username or parts.password:  # a user alone is sent too, as "user:"
        found.extend(_basic_credentials(parts.username or "", parts.password or ""))
    return found


# Request headers whose value is a credential, by name: Authorization and
# Proxy-Authorization, and the custom ones services use (X-API-Key, X-Auth-Token,
# X-Gitlab-Token, X-Hub-Signature, Cookie...). Others (X-Source: wazuh) stay quotable.
_CREDENTIAL_HEADER = re.compile(
    r"auth|key|token|secret|passw|signature|cookie|session|credential", re.IGNORECASE
)


def header_secret_parts(headers: Mapping[str, str]) -> list[str]:
    """The values of ``headers`` that are credentials (by the header's
    name), each also without its scheme word (``Bearer``, ``Basic``): a
    receiver that echoes its request headers, or only the token, echoes these."""
    found: list[str] = []
    for name, value in headers.items():
        if _CREDENTIAL_HEADER.search(name):
            found.extend(
                part for part in (value, value.partition(" ")[2]) if len(part) >= _TOKEN_MIN_CHARS
            )
    return found


def _basic_credentials(user: str, password: str) -> list[str]:
    """The user info of a URL as the HTTP client sends it: ``Authorization:
    Basic`` and the base64 of ``user:password`` (percent-decoded first). A
    receiver that echoes the request's headers echoes the password in this
    form, which none of its own encodings match."""
    pair = f"{unquote(user)}:{unquote(password)}"
    credentials = []
    for encoding in ("latin-1", "utf-8"):  # aiohttp's default, and what others send
        try:
            credentials.append(base64.b64encode(pair.encode(encoding)).decode("ascii"))
        except UnicodeEncodeError:
            continue
    return credentials


def secret_forms(value: str) -> set[str]:
    """``value`` as a receiver may echo it: raw, percent-encoded (either case
    of hex, ``+`` or ``%20`` for a space, ``/`` kept or escaped), JSON-escaped,
    HTML-escaped, and with its white space collapsed (as error snippets are)."""
    forms = {value, " ".join(value.split()), html.escape(value)}
    for safe in ("", "/", "!*'()"):
        for encode in (quote, quote_plus):
            encoded = encode(value, safe=safe)
            forms.add(encoded)
            forms.add(_PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), encoded))
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))
    return {form for form in forms if form}


def longest_form_bytes(secrets: Iterable[str]) -> int:
    """The longest any of ``secrets`` may be once encoded: how much more than
    a quoted snippet's length to read, so that a secret straddling the cut is
    still whole when it is scrubbed."""
    return max((len(form.encode()) for form in _forms_of(tuple(secrets))), default=0)


@functools.lru_cache(maxsize=256)
def _forms_of(secrets: tuple[str, ...]) -> tuple[str, ...]:
    forms: set[str] = set()
    for value in secrets:
        if value:
            forms |= secret_forms(value)
    # Longest first, so that a secret is not half-replaced through a shorter one.
    return tuple(sorted(forms, key=len, reverse=True))


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def redact_urls_in(text: str) -> str:
    """Redact every URL found inside free text (exception messages, answers)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
