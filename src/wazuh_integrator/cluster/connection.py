"""The Redis connection of the cluster roles: opening it, showing it without
its password, creating the consumer group, and telling an outage apart.

redis-py's asyncio client (``redis.asyncio``) is imported here and in the
role modules only, so that ``run`` without ``--role`` never needs it.
"""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from wazuh_integrator.config.models import ClusterSettings

__all__ = [
    "UNREACHABLE",
    "Outage",
    "connect",
    "ensure_group",
    "node_name",
    "shown_url",
]

# What "Redis is not answering" looks like: the roles wait these out; any other
# Redis error is a bug or a misconfiguration and is raised.
UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)

SOCKET_TIMEOUT_S = 10.0


def shown_url(settings: ClusterSettings) -> str:
    """The Redis URL as log lines may show it: scheme, host, port and database,
    never the user name or password."""
    raw = settings.redis_url.reveal()
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable redis url>"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    where = f"[{host}]" if ":" in host else host
    if port:
        where = f"{where}:{port}"
    return f"{parts.scheme}://{where}{parts.path}"


def node_name(settings: ClusterSettings) -> str:
    """The node this process speaks for: ``node`` from [cluster], else the host name."""
    return settings.node or socket.gethostname()


def connect(settings: ClusterSettings) -> redis.Redis:
    """A client for ``redis_url`` (no I/O until the first command).

    One quick reconnection inside redis-py (a connection Redis closed while
    idle), no more: the roles' own loops wait out an outage, and say so in
    the log at once rather than after redis-py's several seconds of retries.
    """
    return redis.Redis.from_url(
        settings.redis_url.reveal(),
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 1),
    )


async def ensure_group(client: redis.Redis, settings: ClusterSettings) -> bool:
    """Create the stream and its consumer group when missing; True when created.

    A new group starts at the stream's first entry ("0"), so that alerts a
    reader appended before any worker ever started are delivered too.
    """
    try:
        await client.xgroup_create(settings.stream, settings.group, id="0", mkstream=True)
    except OutOfMemoryError:
        # Refused before Redis looks for the group: one that exists is all a
        # worker needs to deliver (and acknowledge) what the stream holds.
        if await _group_exists(client, settings):
            return False
        raise
    except ResponseError as error:
        if "BUSYGROUP" in str(error):
            return False
        raise
    return True


async def _group_exists(client: redis.Redis, settings: ClusterSettings) -> bool:
    try:
        groups = await client.xinfo_groups(settings.stream)
    except ResponseError:  # no such stream
        return False
    wanted = {settings.group, settings.group.encode()}
    return any(group.get("name") in wanted for group in groups)


class Outage:
    """Logs an outage once when it starts and once when it ends, whatever the
    number of failed attempts between; says how long it lasted."""

    def __init__(self, log: logging.Logger, url: str, waiting: str) -> None:
        self._log = log
        self._url = url
        self._waiting = waiting
        self._since: float | None = None
        self._last_text = ""

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        text = str(error) or type(error).__name__
        if self._since is None:
            self._since = time.monotonic()
            self._log.error("Redis at %s is unreachable (%s): %s.", self._url, text, self._waiting)
        elif text != self._last_text:
            self._log.warning("Redis at %s still unreachable: %s.", self._url, text)
        self._last_text = text

    def succeeded(self) -> None:
        if self._since is not None:
            self._log.warning(
                "Redis at %s is reachable again after %.1f s.",
                self._url,
                time.monotonic() - self._since,
            )
            self._since = None
            self._last_text = ""
