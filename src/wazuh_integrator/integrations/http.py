"""The HTTP calls integrations make: send a body (JSON or any other), GET a JSON answer.

Both translate every failure into a classified
:class:`~wazuh_integrator.errors.DeliveryError` once, here, and make sure its
message can be logged: the URL appears only redacted, the request's secrets are
scrubbed from the quoted answer, and the aiohttp exception that may carry the
full URL is not chained.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import orjson

from wazuh_integrator import __version__
from wazuh_integrator.classify import (
    classify_exception,
    classify_status,
    snippet_read_bytes,
)
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Transient
from wazuh_integrator.integrations.http1 import Requester, Target, pool_for, request_target
from wazuh_integrator.secret import header_secret_parts, redact_url, scrub, url_secret_parts

__all__ = [
    "DEFAULT_MAX_ANSWER_BYTES",
    "USER_AGENT",
    "RecordedAnswer",
    "RetryAfterInBody",
    "get_json",
    "post_json",
    "recording_answers",
    "send_body",
    "url_secrets",
]

logger = logging.getLogger(__name__)

# A lookup answer larger than this is not one we understand (a VirusTotal v2
# report is a few tens of KiB).
DEFAULT_MAX_ANSWER_BYTES = 8 * 1024 * 1024
# What we read of a successful POST's answer before discarding it: enough to
# drain the usual "ok" so that the connection can be reused.
_DRAIN_BYTES = 64 * 1024
# Receivers' logs and proxies see who calls, not aiohttp's default.
USER_AGENT = f"wazuh-integrator/{__version__}"
_JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
_GET_HEADERS = {"User-Agent": USER_AGENT}

# Reads a service's own "wait this long" from the start of a rate-limit answer
# (Telegram's ``parameters.retry_after``): seconds, or None where it says nothing.
RetryAfterInBody = Callable[[bytes], "float | None"]


@dataclass(frozen=True)
class RecordedAnswer:
    """One answer to a request, as received: the URL is the caller's to redact."""

    method: str
    url: str
    status: int
    body: bytes
    truncated: bool


# What `test --send` shows: set, every answer is also kept here (see recording_answers).
_RECORDED: contextvars.ContextVar[list[RecordedAnswer] | None] = contextvars.ContextVar(
    "recorded_answers", default=None
)


@contextlib.contextmanager
def recording_answers() -> Iterator[list[RecordedAnswer]]:
    """Keep every answer that post_json and get_json receive in this context
    (the start of each body), for ``test --send`` to print."""
    answers: list[RecordedAnswer] = []
    token = _RECORDED.set(answers)
    try:
        yield answers
    finally:
        _RECORDED.reset(token)


async def _record_then_raise(
    response: aiohttp.ClientResponse,
    answers: list[RecordedAnswer],
    method: str,
    url: str,
    extra_transient: frozenset[int],
    secrets: list[str],
    retry_after_in_body: RetryAfterInBody | None = None,
) -> None:
    """Like _raise_for_answer, keeping the answer first."""
    body, truncated = await _read_at_most(response, _DRAIN_BYTES)
    answers.append(RecordedAnswer(method, url, response.status, body, truncated))
    error = classify_status(
        response.status,
        retry_after=response.headers.get("Retry-After"),
        body=body[: snippet_read_bytes(secrets)],
        extra_transient=extra_transient,
        secrets=secrets,
    )
    if error is not None:
        raise _with_delay_from_body(error, body, retry_after_in_body)


def _with_delay_from_body(
    error: DeliveryError, body: bytes, retry_after_in_body: RetryAfterInBody | None
) -> DeliveryError:
    """A rate limit without a ``Retry-After`` header, given the delay its body names."""
    if (
        retry_after_in_body is None
        or not isinstance(error, RateLimited)
        or error.retry_after_s is not None
    ):
        return error
    delay_s = retry_after_in_body(body)
    if delay_s is None:
        return error
    return RateLimited(str(error), retry_after_s=delay_s, status=error.status)


def _json_default(value: object) -> object:
    # Options may come from the config reader as read-only mappings.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that may carry a token, longest first
    (:func:`~wazuh_integrator.secret.url_secret_parts`)."""
    return sorted(url_secret_parts(url), key=len, reverse=True)


def _secrets_for(
    url: str, headers: Mapping[str, str] | None, secrets: Collection[str]
) -> list[str]:
    values = [*secrets, *url_secret_parts(url)]
    if headers:
        values.extend(header_secret_parts(headers))
    return sorted({v for v in values if v}, key=len, reverse=True)


@functools.lru_cache(maxsize=64)
def _client_timeout(timeout_s: float) -> aiohttp.ClientTimeout:
    # Immutable, and the same few values for every request of a block.
    return aiohttp.ClientTimeout(total=timeout_s)


def _scrubbed(error: DeliveryError, secrets: list[str]) -> DeliveryError:
    """``error`` again, of the same type, with every secret removed from its text."""
    message = scrub(str(error), secrets)
    if isinstance(error, RateLimited):
        return RateLimited(message, retry_after_s=error.retry_after_s, status=error.status)
    return type(error)(message, status=error.status)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the answer, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


async def _raise_for_answer(
    response: aiohttp.ClientResponse,
    extra_transient: frozenset[int],
    secrets: list[str],
    retry_after_in_body: RetryAfterInBody | None = None,
) -> None:
    """Raise the classified error for a failed answer; return for a 2xx."""
    if 200 <= response.status <= 299:
        return
    # Only the quoted start of an error answer is read, however large it is.
    body, _ = await _read_at_most(response, snippet_read_bytes(secrets))
    error = classify_status(
        response.status,
        retry_after=response.headers.get("Retry-After"),
        body=body,
        extra_transient=extra_transient,
        secrets=secrets,
    )
    if error is not None:
        raise _with_delay_from_body(error, body, retry_after_in_body)


def _fail(exc: BaseException, url: str, secrets: list[str]) -> NoReturn:
    error = _scrubbed(classify_exception(exc), secrets)
    # A DeliveryError of ours is already safe; a foreign one is not chained,
    # because a logged traceback would print its text, which may hold the URL.
    logger.debug("request to %s failed: %s", redact_url(url), error)
    raise error from None


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    secrets: Collection[str] = (),
    extra_transient: frozenset[int] = frozenset(),
) -> None:
    """POST ``body`` as JSON to ``url``; return on 2xx, raise a DeliveryError otherwise.

    ``secrets`` are values (an API key in the body, say) that must never show
    in an error; the URL, its path and query, and an ``Authorization`` header
    are scrubbed without being listed. Redirects are not followed: aiohttp
    would turn the POST into a GET and drop the body.
    """
    try:
        data = orjson.dumps(body, default=_json_default)
    except TypeError as exc:
        hidden = _secrets_for(url, headers, secrets)
        raise Permanent(f"payload is not JSON: {scrub(str(exc), hidden)}") from None
    request_headers = {**_JSON_HEADERS, **headers} if headers else _JSON_HEADERS
    await send_body(
        session,
        url,
        data,
        timeout_s=timeout_s,
        headers=request_headers,
        secrets=secrets,
        extra_transient=extra_transient,
    )


async def send_body(
    session: aiohttp.ClientSession,
    url: str,
    data: bytes,
    *,
    timeout_s: float,
    headers: Mapping[str, str],
    method: str = "POST",
    secrets: Collection[str] = (),
    extra_transient: frozenset[int] = frozenset(),
    retry_after_in_body: RetryAfterInBody | None = None,
) -> None:
    """Send ``data`` as is with ``method`` (``headers`` name its Content-Type);
    return on 2xx, raise a DeliveryError otherwise, as :func:`post_json` does.
    ``retry_after_in_body`` reads the delay of a 429 or 503 that comes
    without a ``Retry-After`` header from its answer.

    Sessions from :class:`~wazuh_integrator.integrations.sessions.HttpSessions`
    send through their lean HTTP/1.1 pool (:mod:`.http1`) what it handles;
    everything else, and every request whose answer ``test --send`` shows,
    goes through aiohttp. Both give the same errors."""
    # The values to scrub are worked out only when there is an error to scrub:
    # this runs once per alert, and nearly every request succeeds.
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s %s: %d bytes", method, redact_url(url), len(data))
    pool = pool_for(session)
    if pool is not None and _RECORDED.get() is None:
        target = request_target(method, url, tuple(headers.items()))
        if target is not None:
            await _send_on_pool(
                pool,
                target,
                url,
                data,
                timeout_s,
                headers,
                secrets,
                extra_transient,
                retry_after_in_body,
            )
            return
    try:
        async with session.request(
            method,
            url,
            data=data,
            headers=headers,
            timeout=_client_timeout(timeout_s),
            allow_redirects=False,
        ) as response:
            answers = _RECORDED.get()
            if answers is not None:
                hidden = _secrets_for(url, headers, secrets)
                await _record_then_raise(
                    response, answers, method, url, extra_transient, hidden, retry_after_in_body
                )
                return
            if not 200 <= response.status <= 299:
                hidden = _secrets_for(url, headers, secrets)
                await _raise_for_answer(response, extra_transient, hidden, retry_after_in_body)
            if not response.content.is_eof():  # the usual short answer is already read
                await _read_at_most(response, _DRAIN_BYTES)
    except DeliveryError as error:
        raise _scrubbed(error, _secrets_for(url, headers, secrets)) from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        _fail(exc, url, _secrets_for(url, headers, secrets))


async def _send_on_pool(
    pool: Requester,
    target: Target,
    url: str,
    data: bytes,
    timeout_s: float,
    headers: Mapping[str, str],
    secrets: Collection[str],
    extra_transient: frozenset[int],
    retry_after_in_body: RetryAfterInBody | None,
) -> None:
    try:
        answer = await pool.request(target, data, timeout_s)
    except (OSError, asyncio.TimeoutError) as exc:
        _fail(exc, url, _secrets_for(url, headers, secrets))
    if 200 <= answer.status <= 299:
        return
    hidden = _secrets_for(url, headers, secrets)
    body = answer.body[: snippet_read_bytes(hidden)]
    error = classify_status(
        answer.status,
        retry_after=answer.retry_after,
        body=body,
        extra_transient=extra_transient,
        secrets=hidden,
    )
    if error is not None:
        error = _with_delay_from_body(error, body, retry_after_in_body)
        raise _scrubbed(error, hidden) from None


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    ok_statuses: frozenset[int] = frozenset({200}),
    secrets: Collection[str] = (),
    extra_transient: frozenset[int] = frozenset(),
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
) -> tuple[int, Any]:
    """GET ``url`` and return ``(status, decoded JSON or None)``.

    Statuses in ``ok_statuses`` are answers the caller handles (a lookup's 404
    "not found", VirusTotal's 204 "quota reached"); their body is decoded when
    it is JSON and None when it is empty or not JSON. Any other status raises
    the classified error, a 2xx included (it is not one the caller expects).
    A 2xx listed in ``ok_statuses`` whose body is not JSON raises
    :class:`Transient` (a proxy's page in place of the service's answer).
    ``params`` values (API keys in the query) are scrubbed from errors.
    """
    hidden = _secrets_for(url, headers, [*secrets, *(params or {}).values()])
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("GET %s", redact_url(url))
    try:
        async with session.get(
            url,
            headers={**_GET_HEADERS, **headers} if headers else _GET_HEADERS,
            params=dict(params or {}),
            timeout=_client_timeout(timeout_s),
        ) as response:
            status = response.status
            answers = _RECORDED.get()
            if status not in ok_statuses:
                if answers is not None:
                    await _record_then_raise(response, answers, "GET", url, extra_transient, hidden)
                await _raise_for_answer(response, extra_transient, hidden)
                raise Permanent(f"HTTP {status}: unexpected answer", status=status)
            raw, truncated = await _read_at_most(response, max_answer_bytes)
            if answers is not None:
                answers.append(RecordedAnswer("GET", url, status, raw, truncated))
    except DeliveryError as error:
        raise _scrubbed(error, hidden) from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        _fail(exc, url, hidden)
    if truncated:
        raise Permanent(
            f"HTTP {status}: answer larger than {max_answer_bytes} bytes", status=status
        )
    if not raw.strip():
        return status, None
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        if 200 <= status <= 299:
            raise Transient(f"HTTP {status}: answer is not JSON", status=status) from None
        return status, None
