"""Rate limits shared by every worker: sliding windows kept in Redis.

One sorted set per window holds the grant times of the last period; a Lua
script checks every window of an integration and records a grant in all of
them, atomically, on Redis's own clock (so that the workers' clocks need not
agree). It is the in-process limiter's algorithm
(:mod:`wazuh_integrator.ratelimit`), moved where all workers see it.

A grant is counted from when it is taken, and again from when its request
is answered (:meth:`RedisLimits.sent`): a request reaches the receiver some
time between the two, and a loaded worker may take a while to send, so
counting from the answer keeps the receiver's own count of any period within
the limit. Each window is also held 1 % longer than its period (at most 1 s)
against the receiver rounding its clock.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Sequence
from itertools import count

import redis.asyncio as redis
from redis.exceptions import RedisError

from wazuh_integrator.cluster.connection import Outage
from wazuh_integrator.config.models import RateLimit

__all__ = ["RedisLimits", "window_ms"]

log = logging.getLogger(__name__)

UNREACHABLE_WAIT_S = 1.0  # while Redis does not answer, ask again this often; never send

# KEYS: one sorted set per window. ARGV[1]: a member unique to this call;
# then per window its count and its period in milliseconds.
# Returns 0 when a slot was taken, else the milliseconds until one may be free.
_SLIDING_WINDOWS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local free = tonumber(oldest[2]) + period - now
    if free > wait then wait = free end
  end
end
if wait > 0 then return math.max(wait, 1) end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""


# KEYS and ARGV as above: move the grant ARGV[1] to now, in every window that holds it.
_RESTAMP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, ARGV[1]) then
    redis.call('ZADD', key, 'XX', now, ARGV[1])
    redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
  end
end
return 0
"""


def window_ms(limit: RateLimit) -> int:
    """How long a grant counts against ``limit``, margin included."""
    period_ms = limit.period_s * 1000.0
    return int(period_ms + min(1000.0, period_ms / 100.0))


class RedisLimits:
    """One integration's limits, shared through Redis (a ``SharedLimits``)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        integration_key: str,
        limits: Sequence[RateLimit],
        outage: Outage,
    ) -> None:
        self._script = client.register_script(_SLIDING_WINDOWS)
        self._restamp = client.register_script(_RESTAMP)
        self._keys = [
            f"{prefix}:ratelimit:{integration_key}:{limit.count}/{limit.period_s:g}s"
            for limit in limits
        ]
        self._args: list[int] = []
        for limit in limits:
            self._args += [limit.count, window_ms(limit)]
        self._member = f"{os.getpid()}:{id(self)}:"
        self._serial = count()
        self._outage = outage
        # Grants taken and not yet answered, oldest first. Which one a
        # completion restamps does not matter: all count alike, and the times
        # they end with are exactly the completion times.
        self._outstanding: deque[str] = deque()

    async def try_acquire(self) -> float:
        member = f"{self._member}{next(self._serial)}"
        try:
            wait_ms = await self._script(keys=self._keys, args=[member, *self._args])
        except (RedisError, OSError) as error:
            # Unsure whether the slot was taken: waiting is the side that keeps the limit.
            self._outage.failed(error)
            return UNREACHABLE_WAIT_S
        self._outage.succeeded()
        if wait_ms == 0:
            self._outstanding.append(member)
        return int(wait_ms) / 1000.0

    async def sent(self) -> None:
        if not self._outstanding:
            return
        member = self._outstanding.popleft()
        try:
            await self._restamp(keys=self._keys, args=[member, *self._args])
        except (RedisError, OSError) as error:
            self._outage.failed(error)  # the grant keeps its earlier time
