"""Keep-alive HTTP/1.1 connections for the one request per alert that webhooks send.

aiohttp's request path costs about 100 µs of CPU per request, most of the
daemon's time when it delivers. A webhook request is always the same head
(method, path, headers) with a different body, so this client builds the head
once per (method, URL, headers), writes head and body in one ``write`` on a
pooled connection, and parses the answer with httptools (llhttp, the parser
uvicorn uses). It keeps of an answer only what the caller uses: the status,
``Retry-After``, and the start of an error's body.

What it does not do is left to aiohttp (:func:`request_target` returns None
and :func:`~wazuh_integrator.integrations.http.send_body` uses the session):
methods other than POST, PUT and PATCH, schemes other than http and https,
credentials in the URL, headers that frame the message (Host,
Content-Length, Transfer-Encoding, Connection) or that hold a line break.
Redirects are not followed on either path, and neither path uses a proxy
(the sessions do not read the environment).
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, cast

import aiohttp
import httptools
from yarl import URL

__all__ = [
    "Answer",
    "BadAnswer",
    "Http1Pool",
    "Requester",
    "ServerDisconnected",
    "Target",
    "attach_pool",
    "pool_for",
    "request_target",
]

# Like aiohttp's keepalive_timeout: a connection idle longer than this is
# closed rather than reused, as servers drop idle ones on their side.
IDLE_S = 15.0
# What is kept of an error answer's body: the caller quotes its first KiB, a
# secret straddling that included (classify.snippet_read_bytes).
ERROR_KEEP_BYTES = 64 * 1024
# What webhooks send. A HEAD's answer has a length but no body, which the
# parser cannot know: that and the rest go through aiohttp.
_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers this client writes itself, or whose meaning it does not implement.
_FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# A line break or NUL would end a header early (aiohttp refuses such values).
_LINE_BREAK = re.compile(r"[\r\n\0]")


class ServerDisconnected(ConnectionError):
    """The server closed the connection before its answer was complete."""


class BadAnswer(ConnectionError):
    """The server's answer is not HTTP/1.1 this client can read."""


@dataclass(frozen=True)
class Target:
    """Where a request goes and its head, up to the value of Content-Length."""

    https: bool
    host: str
    port: int
    head: bytes

    @property
    def key(self) -> tuple[bool, str, int]:
        return (self.https, self.host, self.port)


@dataclass(frozen=True)
class Answer:
    """What a request's answer holds for the caller."""

    status: int
    retry_after: str | None
    body: bytes  # empty for a 2xx; up to ERROR_KEEP_BYTES otherwise


@functools.lru_cache(maxsize=256)
def request_target(method: str, url: str, headers: tuple[tuple[str, str], ...]) -> Target | None:
    """The target and request head for these, or None when this client does
    not send such a request (aiohttp does)."""
    if method not in _METHODS:
        return None
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host or parsed.port is None:
        return None
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return None
    raw_host = parsed.raw_host
    shown_host = f"[{raw_host}]" if ":" in raw_host else raw_host
    if not parsed.is_default_port():
        shown_host = f"{shown_host}:{parsed.port}"
    lines = [f"{method} {parsed.raw_path_qs or '/'} HTTP/1.1", f"Host: {shown_host}"]
    for name, value in headers:
        if not name or ":" in name or name.lower() in _FRAMING_HEADERS:
            return None
        if _LINE_BREAK.search(name) or _LINE_BREAK.search(value):
            return None
        lines.append(f"{name}: {value}")
    lines.append("Content-Length: ")
    head = "\r\n".join(lines).encode("utf-8")
    return Target(parsed.scheme == "https", raw_host, parsed.port, head)


class _Connection(asyncio.Protocol):
    """One connection and the answer it is reading; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.answers = 0  # answers read so far: a reused connection has some
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._received = False
        self._start_answer()

    def _start_answer(self) -> None:
        self._status = 0
        self._retry_after: str | None = None
        self._body: list[bytes] = []
        self._kept = 0
        self._keep = 0
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: not "read until close"

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # An answer nobody asked for: the connection is out of step.
            self.abort()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadAnswer("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"malformed HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:
            self._complete()  # the answer's body ran until the connection closed
            return
        reason = "in the middle of its answer" if self._received else "without answering"
        waiter.set_exception(ServerDisconnected(f"the server closed the connection {reason}"))

    # -- httptools callbacks -----------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"retry-after":
            self._retry_after = value.decode("latin-1")
        elif lowered in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True
        self._keep = 0 if 200 <= self._status <= 299 else ERROR_KEEP_BYTES

    def on_body(self, body: bytes) -> None:
        room = self._keep - self._kept
        if room > 0:
            piece = body[:room]
            self._body.append(piece)
            self._kept += len(piece)

    def on_message_complete(self) -> None:
        if 100 <= self._status <= 199:
            self._start_answer()  # an interim answer: the final one follows
            return
        if not self._parser.should_keep_alive():
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        self._complete()

    # -- requests ----------------------------------------------------------------

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.answers += 1
            waiter.set_result(Answer(self._status, self._retry_after, b"".join(self._body)))

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        waiter: asyncio.Future[Answer] = loop.create_future()
        self._waiter = waiter
        self._received = False
        self._start_answer()
        assert self.transport is not None
        self.transport.write(data)
        return waiter

    @property
    def received_nothing(self) -> bool:
        return not self._received

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _time_out(waiter: asyncio.Future[Answer], timeout_s: float) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError(f"no answer within {timeout_s:g} s"))


class _Stale(Exception):
    """A reused connection the server had closed before it saw the request."""


class Http1Pool:
    """Keep-alive connections per (scheme, host, port), with one TLS setting.

    ``ssl_context`` None means the system's trusted CAs, as aiohttp's default.
    There is no limit on connections: each integration's own concurrency
    bounds its requests in flight, as with aiohttp's ``limit=0``.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[tuple[bool, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._closed = False

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def request(self, target: Target, body: bytes, timeout_s: float) -> Answer:
        """Send ``body`` to ``target`` and return the answer; raises OSError
        (ServerDisconnected, BadAnswer, a socket or TLS error) or
        asyncio.TimeoutError when there is no whole answer within ``timeout_s``."""
        if self._closed:
            raise ServerDisconnected("the HTTP client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        data = b"%b%d\r\n\r\n%b" % (target.head, len(body), body)
        connection = self._reusable(target.key, loop.time())
        if connection is not None:
            try:
                return await self._exchange(connection, target, data, deadline, timeout_s)
            except _Stale:
                pass  # sent again once, on a new connection
        connection = await self._connect(target, deadline, timeout_s)
        return await self._exchange(connection, target, data, deadline, timeout_s)

    def _reusable(self, key: tuple[bool, str, int], now: float) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_S:
                return connection
            self._discard(connection)
        return None

    async def _connect(self, target: Target, deadline: float, timeout_s: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls() if target.https else None
        left = deadline - loop.time()
        if left <= 0:
            raise asyncio.TimeoutError(f"no answer within {timeout_s:g} s")
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                ),
                timeout=left,
            )
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"no connection within {timeout_s:g} s") from None
        self._open.add(connection)
        return connection

    async def _exchange(
        self,
        connection: _Connection,
        target: Target,
        data: bytes,
        deadline: float,
        timeout_s: float,
    ) -> Answer:
        loop = asyncio.get_running_loop()
        reused = connection.answers > 0
        waiter = connection.send(data, loop)
        timer = loop.call_at(deadline, _time_out, waiter, timeout_s)
        try:
            answer = await waiter
        except ServerDisconnected:
            self._discard(connection)
            if reused and connection.received_nothing:
                raise _Stale() from None
            raise
        except BaseException:
            # Timed out, cancelled or unreadable: the connection's state is unknown.
            connection.abort()
            self._discard(connection)
            raise
        finally:
            timer.cancel()
        if connection.closed or self._closed:
            self._discard(connection)
        else:
            connection.idle_since = loop.time()
            self._idle.setdefault(target.key, []).append(connection)
        return answer

    def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        # Even when the server closed it: Python 3.10's TLS transport is not
        # marked closed by a TLS error after the handshake, and warns when collected.
        connection.abort()

    async def close(self) -> None:
        """Close every connection (in flight included) and refuse new requests."""
        self._closed = True
        for connection in self._open:
            connection.abort()
        self._open.clear()
        self._idle.clear()
        # Let the transports' connection_lost run before the loop may close.
        for _ in range(2):
            await asyncio.sleep(0)


class Requester(Protocol):
    """What sends a webhook's request: an :class:`Http1Pool`, or its stand-in
    for a pool in an HTTP transport process (:class:`~.transport.RemotePool`)."""

    def request(self, target: Target, body: bytes, timeout_s: float) -> Awaitable[Answer]: ...


# The pool that goes with each session HttpSessions made; other sessions
# (a test's, a plugin's own) have none and send through aiohttp.
_POOLS: weakref.WeakKeyDictionary[aiohttp.ClientSession, Requester] = weakref.WeakKeyDictionary()


def attach_pool(session: aiohttp.ClientSession, pool: Requester) -> None:
    _POOLS[session] = pool


def pool_for(session: aiohttp.ClientSession) -> Requester | None:
    return _POOLS.get(session)
