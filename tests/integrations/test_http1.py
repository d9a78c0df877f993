"""The lean HTTP/1.1 path (integrations/http1.py) against real local servers:
what a hand-written client must get right that aiohttp got right for us.

Each server here is a plain asyncio TCP server on 127.0.0.1 that reads whole
requests and answers with bytes written out by the test, so that it can
misbehave exactly: close between requests, stop in the middle of an answer,
answer in chunks, never answer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import trustme
from tests.integrations.transport_support import ready_session

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import Permanent, RateLimited, Timeout, Transient
from wazuh_integrator.integrations.http import send_body
from wazuh_integrator.integrations.http1 import pool_for, request_target
from wazuh_integrator.integrations.sessions import HttpSessions

HEADERS = {"Content-Type": "application/json", "User-Agent": "wazuh-integrator/test"}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# Given one request's (head, body) and the connection's writer, answer it; return
# False to close the connection afterwards.
Answerer = Callable[[bytes, bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """An HTTP/1.1 server whose answers are bytes chosen by the test."""

    def __init__(self, answer: Answerer, ssl_context: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str = "/services/T0/B0/secret-token") -> str:
        scheme = "https" if self.ssl_context else "http"
        host = "localhost" if self.ssl_context else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append(body)
                if not await self.answer(head, body, writer):
                    return
        finally:
            writer.close()
            self._handlers.discard(task)


async def answer_ok(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    await writer.drain()
    return True


# Every test runs with the pools in the daemon (http_processes = 0) and in an
# HTTP transport process (1): the answers and errors must be the same.
TRANSPORTS = pytest.mark.parametrize("processes", [0, 1], ids=["in-process", "transport"])


@pytest.fixture(params=[0, 1], ids=["in-process", "transport"])
async def daemon_session(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    async with HttpSessions(request.param, in_process_below=0) as sessions:
        yield await ready_session(sessions)


async def send(session: aiohttp.ClientSession, url: str, data: bytes = b"{}", **kw: object) -> None:
    await send_body(session, url, data, timeout_s=kw.pop("timeout_s", 5.0), headers=HEADERS, **kw)  # type: ignore[arg-type]


async def test_requests_share_one_keep_alive_connection(
    daemon_session: aiohttp.ClientSession,
) -> None:
    async with RawServer(answer_ok) as server:
        for n in range(5):
            await send(daemon_session, server.url(), b'{"n": %d}' % n)
        assert server.requests == [b'{"n": %d}' % n for n in range(5)]
        assert server.connections == 1


async def test_the_request_head_is_what_aiohttp_would_send(
    daemon_session: aiohttp.ClientSession,
) -> None:
    heads: list[bytes] = []

    async def keep_head(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        heads.append(head)
        return await answer_ok(head, body, writer)

    async with RawServer(keep_head) as server:
        await send(daemon_session, server.url("/hook?a=1&b=%C3%A9"), b"[1]")
    lines = heads[0].decode().split("\r\n")
    assert lines[0] == "POST /hook?a=1&b=%C3%A9 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Content-Type: application/json" in lines
    assert "Content-Length: 3" in lines
    # Sent by the lean path: aiohttp would have added Accept and Accept-Encoding.
    assert not any(line.startswith("Accept") for line in lines)


async def test_a_server_closing_after_each_answer_costs_no_request(
    daemon_session: aiohttp.ClientSession,
) -> None:
    async def close_after(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return False

    async with RawServer(close_after) as server:
        for _ in range(4):
            await send(daemon_session, server.url())
        assert len(server.requests) == 4
        assert server.connections == 4


async def test_a_keep_alive_connection_closed_silently_while_idle_is_replaced(
    daemon_session: aiohttp.ClientSession,
) -> None:
    # The server keeps the connection open after its answer (no Connection:
    # close), then drops it: the next request goes on a new connection.
    async def drop_after(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        await answer_ok(head, body, writer)
        return False

    async with RawServer(drop_after) as server:
        for _ in range(3):
            await send(daemon_session, server.url())
            await asyncio.sleep(0.05)  # the close reaches the client, or not: both must work
        assert len(server.requests) == 3


async def test_an_answer_cut_in_the_middle_is_transient(
    daemon_session: aiohttp.ClientSession,
) -> None:
    async def half(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()
        return False

    async with RawServer(half) as server:
        with pytest.raises(Transient, match="middle of its answer") as caught:
            await send(daemon_session, server.url())
    assert not isinstance(caught.value, Timeout)
    assert "secret-token" not in str(caught.value)


async def test_a_server_closing_without_answering_is_transient(
    daemon_session: aiohttp.ClientSession,
) -> None:
    async def hang_up(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    async with RawServer(hang_up) as server:
        with pytest.raises(Transient, match="without answering"):
            await send(daemon_session, server.url())


async def test_chunked_answers_are_read_and_quoted(
    daemon_session: aiohttp.ClientSession,
) -> None:
    async def chunked(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        status = b"200 OK" if body == b"good" else b"400 Bad Request"
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\ninvalid_\r\n7\r\npayload\r\n0\r\n\r\n"
        )
        await writer.drain()
        return True

    async with RawServer(chunked) as server:
        await send(daemon_session, server.url(), b"good")
        with pytest.raises(Permanent, match="HTTP 400: invalid_payload"):
            await send(daemon_session, server.url(), b"bad")
        await send(daemon_session, server.url(), b"good")
        assert server.connections == 1


async def test_an_answer_running_until_the_close_is_read_whole(
    daemon_session: aiohttp.ClientSession,
) -> None:
    async def unframed(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nbroken backend")
        await writer.drain()
        return False

    async with RawServer(unframed) as server:
        with pytest.raises(Transient, match="HTTP 500: broken backend"):
            await send(daemon_session, server.url())


async def test_interim_answers_are_skipped(daemon_session: aiohttp.ClientSession) -> None:
    async def interim(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
        await writer.drain()
        return True

    async with RawServer(interim) as server:
        await send(daemon_session, server.url())
        await send(daemon_session, server.url())
        assert server.connections == 1


async def test_a_server_that_never_answers_times_out(
    daemon_session: aiohttp.ClientSession,
) -> None:
    async def never(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(60)
        return False

    async with RawServer(never) as server:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Timeout, match="timed out"):
            await send(daemon_session, server.url(), timeout_s=0.3)
        assert loop.time() - started < 10
        # The connection that timed out is not reused for the next request.
        with pytest.raises(Timeout):
            await send(daemon_session, server.url(), timeout_s=0.3)
        assert server.connections == 2


async def test_rate_limit_keeps_retry_after(daemon_session: aiohttp.ClientSession) -> None:
    async def slow_down(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nslow")
        await writer.drain()
        return True

    async with RawServer(slow_down) as server:
        with pytest.raises(RateLimited) as caught:
            await send(daemon_session, server.url())
    assert caught.value.retry_after_s == 7.0
    assert caught.value.status == 429


async def test_a_1_mb_echoed_body_is_scrubbed(daemon_session: aiohttp.ClientSession) -> None:
    secret = "xoxb-very-secret-api-key"

    async def echo(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if body == b"{}":
            return await answer_ok(head, body, writer)
        writer.write(b"HTTP/1.1 400 Bad\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        await writer.drain()
        return True

    data = (f'{{"key": "{secret}", "pad": "' + "x" * 1_000_000 + f'{secret}"}}').encode()
    async with RawServer(echo) as server:
        with pytest.raises(Permanent) as caught:
            await send(daemon_session, server.url(), data, secrets=[secret])
        message = str(caught.value)
        assert message.startswith("HTTP 400:")
        assert secret not in message
        assert "secret-token" not in message
        assert len(message) < 2048
        # The whole answer was read past what was kept: the connection is reused.
        await send(daemon_session, server.url())
        assert server.connections == 1


async def test_refused_connection_is_transient(
    daemon_session: aiohttp.ClientSession, refused_base_url: str
) -> None:
    with pytest.raises(Transient, match="connection failed") as caught:
        await send(daemon_session, f"{refused_base_url}/services/T0/B0/secret-token")
    assert not isinstance(caught.value, Timeout)
    assert "secret-token" not in str(caught.value)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


@TRANSPORTS
async def test_tls_with_a_local_ca(ca: trustme.CA, tmp_path: Path, processes: int) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with (
        RawServer(answer_ok, server_tls(ca)) as server,
        HttpSessions(processes, in_process_below=0) as sessions,
    ):
        trusted = await ready_session(sessions, IntegrationSettings(ca_file=ca_file))
        assert pool_for(trusted) is not None
        for _ in range(3):
            await send(trusted, server.url())
        assert server.connections == 1
        # The system's CAs do not know this one.
        with pytest.raises(Transient, match=r"connection failed.*(?i:certificate)"):
            await send(sessions.for_settings(IntegrationSettings()), server.url())


@TRANSPORTS
async def test_mutual_tls_presents_the_client_certificate(
    ca: trustme.CA, tmp_path: Path, processes: int
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = ca.issue_cert("integrator.example")
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert_file))
    client.private_key_pem.write_to_path(str(key_file))
    tls = server_tls(ca, require_client_cert=True)
    async with (
        RawServer(answer_ok, tls) as server,
        HttpSessions(processes, in_process_below=0) as sessions,
    ):
        with_cert = IntegrationSettings(ca_file=ca_file, client_cert=cert_file, client_key=key_file)
        await send(await ready_session(sessions, with_cert), server.url())
        assert len(server.requests) == 1
        with pytest.raises(Transient):
            await send(sessions.for_settings(IntegrationSettings(ca_file=ca_file)), server.url())


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("ftp://example.com/x", ()),
        ("HEAD http://example.com/x", ()),
        ("http://user:pass@example.com/x", ()),
        ("http://example.com/x", (("Connection", "close"),)),
        ("http://example.com/x", (("X-Token", "a\r\nInjected: 1"),)),
    ],
)
def test_what_the_lean_path_leaves_to_aiohttp(
    url: str, headers: tuple[tuple[str, str], ...]
) -> None:
    method, _, url = url.rpartition(" ")
    assert request_target(method or "POST", url, headers) is None


def test_the_host_header_of_ipv6_and_default_ports() -> None:
    v6 = request_target("POST", "http://[::1]:8080/x", ())
    assert v6 is not None and b"Host: [::1]:8080\r\n" in v6.head and v6.host == "::1"
    default = request_target("PUT", "https://hooks.example.com/x", ())
    assert default is not None and default.port == 443 and default.https
    assert default.head.startswith(b"PUT /x HTTP/1.1\r\nHost: hooks.example.com\r\n")
