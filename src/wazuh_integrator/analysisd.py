"""Enrichment events to Wazuh's analysisd, over its Unix datagram queue socket.

Each event is one datagram, ``1:<location>:<json>``, located like the alert it
enriches so that analysisd attributes it to the same agent. The JSON is written
byte for byte as stock's scripts write it (Python's ``json.dumps`` defaults:
``", "`` and ``": "`` separators, non-ASCII escaped as ``\\uXXXX``), so that a
datagram of ours and one of stock's for the same alert are identical.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from wazuh_integrator.errors import Permanent, Transient

__all__ = [
    "MAX_DATAGRAM_BYTES",
    "AnalysisdSocket",
    "AnalysisdUnavailable",
    "EventTooLarge",
    "format_event_message",
]

logger = logging.getLogger(__name__)

#: analysisd reads at most this many bytes per message; a longer one is refused, never cut.
MAX_DATAGRAM_BYTES = 64 * 1024

_MANAGER_AGENT_ID = "000"

# Errors that mean "analysisd is not there right now": it is starting, restarting
# (the socket file is recreated, so our connection points at a dead inode) or
# its queue is full. All of them heal by themselves.
_UNAVAILABLE_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ECONNREFUSED,
        errno.ENOTCONN,
        errno.EAGAIN,
        errno.EWOULDBLOCK,
        errno.ENOBUFS,
        errno.EPIPE,
        errno.ECONNRESET,
        errno.EDESTADDRREQ,
    }
)
# After one of these on an open connection, a fresh connect may succeed at once.
_STALE_CONNECTION_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ENOTCONN, errno.EPIPE, errno.ECONNRESET, errno.EDESTADDRREQ}
)


class AnalysisdUnavailable(Transient):
    """The queue socket is missing, refusing, or full; worth trying again."""


class EventTooLarge(Permanent):
    """The event does not fit in one datagram; sending it again cannot help."""


def _escape_location(text: str) -> str:
    # analysisd splits the message on ':'; '|' is its escape character, so it is
    # doubled first, before ':' gains one.
    return text.replace("|", "||").replace(":", "|:")


def _location(alert: dict[str, Any], integration: str) -> str:
    agent = alert.get("agent")
    if not isinstance(agent, dict):
        return integration
    agent_id = agent.get("id")
    if agent_id is None or str(agent_id) == _MANAGER_AGENT_ID:
        return integration
    name = agent.get("name", "")
    # Stock writes the ip whenever the key is there, an empty one included;
    # only a missing (or null) ip stands as ``any``.
    ip = agent["ip"] if agent.get("ip") is not None else "any"
    return f"{_escape_location(f'[{agent_id}] ({name}) {ip}')}->{integration}"


def format_event_message(event: dict[str, Any], alert: dict[str, Any], integration: str) -> bytes:
    """The exact datagram analysisd expects for ``event``, enriching ``alert``."""
    return f"1:{_location(alert, integration)}:{json.dumps(event)}".encode()


class AnalysisdSocket:
    """An :class:`~wazuh_integrator.integrations.base.EventSink` writing to
    analysisd's queue socket.

    The socket is connected lazily and dropped on failure, so that the next
    event reconnects to whatever analysisd is listening by then. Sending never
    blocks: a full queue is reported as :class:`AnalysisdUnavailable`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None

    async def send_event(
        self, event: dict[str, Any], alert: dict[str, Any], integration: str
    ) -> None:
        message = format_event_message(event, alert, integration)
        if len(message) > MAX_DATAGRAM_BYTES:
            logger.warning(
                "%s event for alert %s is %s bytes, more than analysisd's %s: not sent",
                integration,
                alert.get("id"),
                len(message),
                MAX_DATAGRAM_BYTES,
            )
            raise EventTooLarge(
                f"{integration} event of {len(message)} bytes exceeds the"
                f" {MAX_DATAGRAM_BYTES}-byte analysisd limit"
            )
        self._send(message)

    def _send(self, message: bytes) -> None:
        was_connected = self._sock is not None
        try:
            self._connected().send(message)
            return
        except OSError as exc:
            self._drop()
            if not (was_connected and exc.errno in _STALE_CONNECTION_ERRNOS):
                raise self._unavailable(exc) from None
            logger.debug("analysisd socket %s went away (%s); reconnecting", self.path, exc)
        try:
            self._connected().send(message)
        except OSError as exc:
            self._drop()
            raise self._unavailable(exc) from None

    def _connected(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                # The kernel's default send buffer may be below 64 KiB on some
                # hosts; analysisd's own clients raise theirs the same way.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * MAX_DATAGRAM_BYTES)
                sock.connect(str(self.path))
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def _unavailable(self, exc: OSError) -> Transient | Permanent:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in _UNAVAILABLE_ERRNOS:
            return AnalysisdUnavailable(f"analysisd socket {self.path}: {reason}")
        if exc.errno == errno.EMSGSIZE:
            return EventTooLarge(f"analysisd socket {self.path}: {reason}")
        # Anything else (permissions, not a socket) needs a person, but may be
        # fixed without restarting us: keep the event and try again later.
        return AnalysisdUnavailable(f"analysisd socket {self.path}: {reason}")

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Close the connection; a later ``send_event`` opens a new one."""
        self._drop()

    async def __aenter__(self) -> AnalysisdSocket:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
