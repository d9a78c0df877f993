"""A receiver's "slow down" (429 with ``Retry-After``) told to every worker.

The worker that was told writes ``<stream>:pause:<key>`` with the end of the
pause (Unix ms, on Redis's clock) and a ``PX`` expiry, keeping the later end
when another worker already wrote one. Every worker asks before it sends,
at most once every ``CHECK_INTERVAL_S`` per integration (the answer is kept
that long): a busy worker costs Redis a few reads a second, and a pause is
seen by the others within that interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

import redis.asyncio as redis
from redis.exceptions import RedisError

from wazuh_integrator.cluster.connection import Outage

__all__ = ["CHECK_INTERVAL_S", "RedisPause"]

log = logging.getLogger(__name__)

CHECK_INTERVAL_S: Final = 0.05

# KEYS: the pause key. ARGV: pause ms. Keeps the later of two ends.
_ANNOUNCE = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = now_ms + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= ends then return 0 end
redis.call('SET', KEYS[1], ends, 'PX', ARGV[1])
return 1
"""

# KEYS: the pause key. Returns the ms the pause still lasts (0: none).
_REMAINING = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = tonumber(redis.call('GET', KEYS[1]) or '0')
if ends > now_ms then return ends - now_ms end
return 0
"""


class RedisPause:
    """One integration's shared pause (a ``SharedPause``)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        integration_key: str,
        outage: Outage,
    ) -> None:
        self._key = f"{prefix}:pause:{integration_key}"
        self._integration_key = integration_key
        self._announce = client.register_script(_ANNOUNCE)
        self._remaining = client.register_script(_REMAINING)
        self._outage = outage
        self._paused_until = 0.0  # local monotonic time the last answer holds until
        self._checked_at = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    def announce(self, seconds: float) -> None:
        now = time.monotonic()
        self._paused_until = max(self._paused_until, now + seconds)
        self._checked_at = now
        task = asyncio.get_running_loop().create_task(self._tell(seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell(self, seconds: float) -> None:
        try:
            await self._announce(keys=[self._key], args=[max(1, int(seconds * 1000))])
        except (RedisError, OSError) as error:
            self._outage.failed(error)  # this worker still waits; the others may not
            return
        self._outage.succeeded()
        log.info(
            "Integration '%s': the receiver asked for a pause of %.1f s; every worker waits.",
            self._integration_key,
            seconds,
        )

    async def remaining_s(self) -> float:
        now = time.monotonic()
        if now - self._checked_at >= CHECK_INTERVAL_S:
            self._checked_at = now
            try:
                remaining_ms = int(await self._remaining(keys=[self._key]))
            except (RedisError, OSError) as error:
                # A pause missed while Redis is away costs a 429 more, no alert.
                self._outage.failed(error)
                remaining_ms = 0
            else:
                self._outage.succeeded()
            now = time.monotonic()
            self._paused_until = max(self._paused_until, now + remaining_ms / 1000)
        return max(0.0, self._paused_until - now)
