"""Real local stand-ins for the outputs that do not speak HTTP: syslog
listeners (UDP, TCP with octet counting, TLS) and an SMTP server (aiosmtpd,
with STARTTLS, implicit TLS and AUTH), plus a local CA for their TLS.
Shared by the unit tests and the end-to-end tests; loopback only."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from tests.integrations.rfc5424 import split_octet_counted


@dataclass
class LocalCA:
    """A CA of our own and a certificate for 127.0.0.1 and localhost."""

    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost")

    def write_ca(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context


async def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# -- syslog -------------------------------------------------------------------


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.messages.append(data)


@dataclass
class SyslogListener:
    """A syslog receiver on 127.0.0.1: every message received, the number of
    connections accepted, and a switch to hang up after each message."""

    transport: str  # udp, tcp or tls
    tls: ssl.SSLContext | None = None
    messages: list[bytes] = field(default_factory=list)
    connections: int = 0
    hang_up_after_each: bool = False
    port: int = 0
    _server: asyncio.base_events.Server | None = None
    _udp: asyncio.DatagramTransport | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.transport}://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> SyslogListener:
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self.messages), local_addr=("127.0.0.1", port)
            )
            self.port = self._udp.get_extra_info("sockname")[1]
        else:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", port, ssl=self.tls if self.transport == "tls" else None
            )
            self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        pending = b""
        try:
            while chunk := await reader.read(65536):
                frames, pending = split_octet_counted(pending + chunk)
                self.messages.extend(frames)
                if frames and self.hang_up_after_each:
                    break
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()

    async def wait_for(self, count: int) -> list[bytes]:
        await wait_until(lambda: len(self.messages) >= count, f"{count} syslog messages")
        return self.messages


# -- SMTP ---------------------------------------------------------------------


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str | None
    tls: bool


class _CountedSMTP(SMTP):
    """aiosmtpd's server, telling the stand-in when a client connects and leaves."""

    def __init__(self, stand_in: SmtpStandIn, **options: Any) -> None:
        super().__init__(stand_in, **options)
        self._stand_in = stand_in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # STARTTLS swaps self.transport; the socket's own one is what to close.
        self._socket_transport = transport
        self._stand_in.connections += 1
        self._stand_in.open_transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._stand_in.open_transports.discard(self._socket_transport)
        super().connection_lost(error)


@dataclass
class SmtpStandIn:
    """aiosmtpd on 127.0.0.1. ``data_replies`` are the answers to DATA, one
    per message, the last repeating ("250 OK" by default); ``rcpt_reply``
    refuses every recipient when set. ``tls`` offers STARTTLS, or with
    ``implicit_tls`` wraps the whole connection; ``password`` requires AUTH.
    ``connections`` counts the connections clients made, ``open_transports``
    holds those still open."""

    tls: ssl.SSLContext | None = None
    implicit_tls: bool = False
    require_starttls: bool = False
    password: str | None = None
    data_replies: list[str] = field(default_factory=lambda: ["250 OK"])
    rcpt_reply: str | None = None
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    attempts: int = 0
    connections: int = 0
    open_transports: set[Any] = field(default_factory=set)
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> SmtpStandIn:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            "127.0.0.1",
            port,
            ssl=self.tls if self.implicit_tls else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _protocol(self) -> SMTP:
        return _CountedSMTP(
            self,
            hostname="stand-in.local",
            tls_context=None if self.implicit_tls else self.tls,
            require_starttls=self.require_starttls,
            # aiosmtpd knows TLS only from STARTTLS: with implicit TLS the
            # connection is encrypted already, so AUTH is offered as it is.
            auth_required=self.password is not None and not self.implicit_tls,
            auth_require_tls=not self.implicit_tls,
            authenticator=self._authenticate if self.password is not None else None,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        # handled=False: aiosmtpd answers 235 or 535 itself.
        return AuthResult(success=password == self.password, handled=False, auth_data=login)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.data_replies[min(self.attempts, len(self.data_replies) - 1)]
        self.attempts += 1
        if reply.startswith("250"):
            assert isinstance(envelope.content, bytes)
            # SMTP's CRLF line ends, read back as Python's.
            content = envelope.content.replace(b"\r\n", b"\n")
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    message,
                    session.auth_data if isinstance(session.auth_data, str) else None,
                    self.implicit_tls or session.ssl is not None,
                )
            )
        return reply

    def drop_connections(self) -> None:
        """Close every client's connection from the server's side, as a
        server does with clients idle for longer than it allows."""
        for transport in list(self.open_transports):
            transport.close()

    async def stop(self) -> None:
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, count: int) -> list[Received]:
        await wait_until(lambda: len(self.received) >= count, f"{count} emails")
        return self.received
