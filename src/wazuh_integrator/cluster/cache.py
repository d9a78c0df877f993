"""The lookup cache in Redis, so that every worker shares one answer per key
(VirusTotal's 500 lookups a day are per API key, not per worker).

It keeps the :class:`~wazuh_integrator.integrations.base.LookupCache`
interface, which is synchronous because integrations ask it from their pure
``needs_request`` check: the client here is redis-py's blocking one, with a
short socket time-out. A GET on a nearby Redis costs about a tenth of a
millisecond, and lookups are the rate-limited, rare path. While Redis does not
answer, the worker's own state store answers instead (every answer is written
to both), so a lookup is never refused for want of Redis.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from wazuh_integrator.cluster.connection import Outage, shown_url
from wazuh_integrator.config.models import ClusterSettings
from wazuh_integrator.integrations.base import LookupCache

__all__ = ["RedisLookupCache"]

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 0.5
# After a failure, lookups skip Redis this long: a Redis that does not answer
# must not cost every lookup its socket time-out on the event loop.
COOL_DOWN_S = 5.0


class RedisLookupCache:
    """A ``LookupCache`` shared through Redis, falling back to a local one."""

    def __init__(
        self, client: redis.Redis, prefix: str, local: LookupCache | None, shown: str = "redis"
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._local = local
        self._outage = Outage(log, shown, "lookups use this worker's own cache")
        self._skip_until = 0.0

    @classmethod
    def for_cluster(cls, cluster: ClusterSettings, local: LookupCache | None) -> RedisLookupCache:
        client = redis.Redis.from_url(
            cluster.redis_url.reveal(),
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            # It blocks the event loop: one try, then the local store answers.
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, cluster.stream, local, shown_url(cluster))

    def _key(self, namespace: str, key: str) -> str:
        return f"{self._prefix}:cache:{namespace}:{key}"

    def _local_get(self, namespace: str, key: str) -> Any | None:
        return self._local.get(namespace, key) if self._local is not None else None

    def _failed(self, error: BaseException) -> None:
        self._outage.failed(error)
        self._skip_until = time.monotonic() + COOL_DOWN_S

    def get(self, namespace: str, key: str) -> Any | None:
        if time.monotonic() < self._skip_until:
            return self._local_get(namespace, key)
        try:
            raw = self._client.get(self._key(namespace, key))
        except (RedisError, OSError) as error:
            self._failed(error)
            return self._local_get(namespace, key)
        self._outage.succeeded()
        if raw is None:
            return None
        return orjson.loads(raw)

    def put(self, namespace: str, key: str, value: Any, ttl_s: float) -> None:
        encoded = orjson.dumps(value)  # TypeError for what is not JSON, before any write
        if self._local is not None:
            self._local.put(namespace, key, value, ttl_s)
        if time.monotonic() < self._skip_until:
            return
        try:
            self._client.set(self._key(namespace, key), encoded, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as error:
            self._failed(error)
            return
        self._outage.succeeded()

    def close(self) -> None:
        self._client.close()
