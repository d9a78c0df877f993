"""SMTP connections kept open between messages sent close together.

Connecting costs a TCP handshake, the greeting, EHLO, often STARTTLS and
AUTH: several round trips per message where one would do. A connection that
delivered a message waits here for the next one; it is closed with QUIT once
it has been idle for ``idle_close_s``, or at :meth:`SmtpConnections.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage

import aiosmtplib

from wazuh_integrator.compat import TIMEOUT_ERRORS

__all__ = ["IDLE_CLOSE_S", "SmtpConnections"]

# Long enough to carry a burst of alerts, well under the five minutes after
# which RFC 5321 lets a server drop a silent client.
IDLE_CLOSE_S = 10.0
# How long QUIT may take before the socket is simply closed.
_QUIT_TIMEOUT_S = 5.0
_QUIT_FAILURES: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPException,
    OSError,
    *TIMEOUT_ERRORS,
)


def _went_stale(error: BaseException) -> bool:
    """Whether a kept connection failed because the server let it go (closed
    it, or answered 421 "closing"), so that a new connection may succeed."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code == 421
    return isinstance(error, aiosmtplib.SMTPServerDisconnected | ConnectionError)


class SmtpConnections:
    """Sends messages over connected clients made by ``new_client``, keeping
    each one that delivered for the next message. A client whose message
    failed is closed, never reused."""

    def __init__(
        self, new_client: Callable[[], aiosmtplib.SMTP], *, idle_close_s: float = IDLE_CLOSE_S
    ) -> None:
        self._new_client = new_client
        self._idle_close_s = idle_close_s
        # Idle clients with the time each came back, oldest first.
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._closer: asyncio.Task[None] | None = None
        self.opened = 0

    async def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> None:
        """Send ``message`` over a kept connection, or a new one when there
        is none or the kept one turns out to have been closed by the server."""
        while self._idle:
            client, _ = self._idle.pop()  # the newest: the others may age out
            if not client.is_connected:
                client.close()
                continue
            try:
                await client.send_message(message, sender=sender, recipients=recipients)
            except asyncio.CancelledError:
                client.close()
                raise
            except Exception as error:
                await self._quit(client)
                if not _went_stale(error):
                    raise
                continue
            self._keep(client)
            return
        client = await self._connect()
        try:
            await client.send_message(message, sender=sender, recipients=recipients)
        except asyncio.CancelledError:
            client.close()
            raise
        except Exception:
            await self._quit(client)
            raise
        self._keep(client)

    async def close(self) -> None:
        """Quit every idle connection; the next send connects again."""
        if self._closer is not None:
            self._closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._closer
            self._closer = None
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await self._quit(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = self._new_client()
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        self.opened += 1
        return client

    def _keep(self, client: aiosmtplib.SMTP) -> None:
        self._idle.append((client, time.monotonic()))
        if self._closer is None or self._closer.done():
            self._closer = asyncio.get_running_loop().create_task(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        while self._idle:
            oldest_since = self._idle[0][1]
            await asyncio.sleep(max(0.0, oldest_since + self._idle_close_s - time.monotonic()))
            deadline = time.monotonic() - self._idle_close_s
            expired = [client for client, since in self._idle if since <= deadline]
            self._idle = [(client, since) for client, since in self._idle if since > deadline]
            for client in expired:
                await self._quit(client)

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), _QUIT_TIMEOUT_S)
        except _QUIT_FAILURES:
            pass  # the connection is being dropped either way
        finally:
            client.close()
