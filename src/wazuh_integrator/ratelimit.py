"""Client-side rate limits: several windows enforced together, plus pauses a
receiver asks for.

Each :class:`~wazuh_integrator.config.models.RateLimit` is a sliding window
("at most 4 in any 60 seconds"), kept as the times of the last ``count``
acquisitions, so a limit is never exceeded over any stretch of time, not only
over aligned minutes. A limiter holds several (4/minute *and* 500/day, like
VirusTotal's free tier) and grants a slot only when every window has room.

``pause_until`` is for a receiver that answered 429 or Retry-After: the whole
integration waits, not only the delivery that was told, because every other
request sent before then would be refused too.

Time comes from an injectable clock and sleep, so tests can drive a day of
quota in microseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from wazuh_integrator.config.models import RateLimit

__all__ = [
    "Clock",
    "RateLimiter",
    "SharedLimits",
    "SharedLimitsFactory",
    "SharedPause",
    "SharedPauseFactory",
    "Sleep",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class SharedLimits(Protocol):
    """Rate limits kept outside this process (cluster mode: in Redis), so that
    every worker delivering for one integration draws from the same windows."""

    async def try_acquire(self) -> float:
        """Take a slot: 0.0 when taken, else the seconds to wait before asking again."""
        ...

    async def sent(self) -> None:
        """A request on a slot taken here has been answered: count the slot from
        now, so that its window covers the moment the receiver saw it."""
        ...


# Given an integration key and its limits, the shared limiter to use instead
# of the in-process windows (None: keep them in process).
SharedLimitsFactory = Callable[[str, Sequence[RateLimit]], SharedLimits | None]


class SharedPause(Protocol):
    """A pause a receiver asked for (429, ``Retry-After``), told to every
    process that sends to it (cluster mode: through Redis)."""

    def announce(self, seconds: float) -> None:
        """This process was told to wait ``seconds``: tell the others (in the
        background; a failure to tell them is logged, never raised)."""
        ...

    async def remaining_s(self) -> float:
        """How long the pause announced by any process still lasts (0.0: none)."""
        ...


# Given an integration key, the pause shared with the other senders.
SharedPauseFactory = Callable[[str], SharedPause]


class _SlidingWindow:
    """The last ``count`` acquisition times of one limit."""

    __slots__ = ("limit", "times")

    def __init__(self, limit: RateLimit) -> None:
        if limit.count < 1:
            raise ValueError(f"rate limit {limit}: count must be 1 or more")
        if not limit.period_s > 0:
            raise ValueError(f"rate limit {limit}: period must be positive")
        self.limit = limit
        self.times: deque[float] = deque(maxlen=limit.count)

    def free_at(self) -> float:
        """When this window has room for one more; minus infinity when it has now."""
        if len(self.times) < self.limit.count:
            return float("-inf")
        return self.times[0] + self.limit.period_s

    def record(self, now: float) -> None:
        self.times.append(now)


class RateLimiter:
    """Grants delivery slots under every configured limit at once.

    With no limits and no pause, :meth:`acquire` returns at once. The limiter
    is meant for one event loop; it needs no lock because nothing awaits
    between checking the windows and recording a slot.
    """

    def __init__(
        self,
        limits: Sequence[RateLimit] = (),
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._windows = [_SlidingWindow(limit) for limit in limits]
        self._clock = clock
        self._sleep = sleep
        self._paused_until = float("-inf")

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        return tuple(window.limit for window in self._windows)

    @property
    def paused_until(self) -> float:
        """The end of the current pause on this limiter's clock (minus infinity: none)."""
        return self._paused_until

    def now(self) -> float:
        return self._clock()

    def available_at(self) -> float:
        """The earliest time, on this limiter's clock, at which a slot is free."""
        return max([self._paused_until, *(window.free_at() for window in self._windows)])

    def delay_s(self) -> float:
        """Seconds until a slot is free (0 when one is free now)."""
        return max(0.0, self.available_at() - self._clock())

    def try_acquire(self) -> bool:
        """Take a slot if one is free now; never waits."""
        now = self._clock()
        if self.available_at() > now:
            return False
        for window in self._windows:
            window.record(now)
        return True

    async def acquire(self) -> None:
        """Wait until every window has room and no pause holds, then take a slot."""
        while not self.try_acquire():
            # Several waiters may wake for the same slot; the losers loop and
            # wait for the next one.
            await self._sleep(self.delay_s())

    def pause_until(self, until: float) -> None:
        """Grant no slot before ``until`` (this limiter's clock). A pause is
        only ever extended: an earlier end than the current one is ignored."""
        self._paused_until = max(self._paused_until, until)

    def pause_for(self, seconds: float) -> None:
        """Grant no slot for the next ``seconds``."""
        self.pause_until(self._clock() + seconds)
