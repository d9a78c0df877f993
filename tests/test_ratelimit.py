from __future__ import annotations

import asyncio
import time

import pytest

from wazuh_integrator.config.models import RateLimit
from wazuh_integrator.ratelimit import RateLimiter


class FakeClock:
    """Time that moves only when someone sleeps: a day of quota runs in microseconds."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def limiter(*limits: RateLimit, clock: FakeClock) -> RateLimiter:
    return RateLimiter(limits, clock=clock, sleep=clock.sleep)


async def acquisition_times(rl: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await rl.acquire()
        times.append(clock.now)
    return times


async def test_no_limits_never_waits() -> None:
    clock = FakeClock()
    rl = limiter(clock=clock)
    assert await acquisition_times(rl, clock, 100) == [0.0] * 100
    assert clock.sleeps == []


async def test_one_window_is_sliding_not_aligned() -> None:
    clock = FakeClock()
    rl = limiter(RateLimit(count=2, period_s=10.0), clock=clock)
    times = [0.0, 3.0]
    for t in times:
        clock.now = t
        await rl.acquire()
    # The third slot opens when the first leaves the window, the fourth when the second does.
    assert await acquisition_times(rl, clock, 2) == [10.0, 13.0]


async def test_several_windows_hold_together() -> None:
    """4 a minute and 10 an hour: VirusTotal-style quotas."""
    clock = FakeClock()
    rl = limiter(RateLimit(4, 60.0), RateLimit(10, 3600.0), clock=clock)
    times = await acquisition_times(rl, clock, 12)
    assert times == [0, 0, 0, 0, 60, 60, 60, 60, 120, 120, 3600, 3600]


@pytest.mark.parametrize(
    "limits",
    [
        (RateLimit(4, 60.0), RateLimit(10, 3600.0)),
        (RateLimit(10, 3600.0), RateLimit(4, 60.0)),
        (RateLimit(3, 1.0), RateLimit(5, 10.0), RateLimit(8, 100.0)),
    ],
)
async def test_no_window_is_ever_exceeded(limits: tuple[RateLimit, ...]) -> None:
    clock = FakeClock()
    rl = limiter(*limits, clock=clock)
    times = await acquisition_times(rl, clock, 40)
    for limit in limits:
        for i, start in enumerate(times):
            in_window = [t for t in times[i:] if t < start + limit.period_s]
            assert len(in_window) <= limit.count, (limit, start, in_window)


async def test_pause_holds_every_slot_until_its_end() -> None:
    clock = FakeClock()
    rl = limiter(RateLimit(100, 1.0), clock=clock)
    await rl.acquire()
    rl.pause_until(5.0)
    assert rl.delay_s() == 5.0
    assert not rl.try_acquire()
    assert await acquisition_times(rl, clock, 2) == [5.0, 5.0]


async def test_a_pause_is_extended_never_shortened() -> None:
    clock = FakeClock()
    rl = limiter(clock=clock)
    rl.pause_until(30.0)
    rl.pause_until(10.0)
    assert rl.paused_until == 30.0
    rl.pause_for(45.0)
    assert rl.paused_until == 45.0
    assert await acquisition_times(rl, clock, 1) == [45.0]


async def test_try_acquire_takes_a_free_slot_and_refuses_a_full_window() -> None:
    clock = FakeClock()
    rl = limiter(RateLimit(2, 10.0), clock=clock)
    assert rl.try_acquire()
    assert rl.try_acquire()
    assert not rl.try_acquire()
    assert rl.available_at() == 10.0
    clock.now = 10.0
    assert rl.try_acquire()


@pytest.mark.parametrize("bad", [RateLimit(0, 60.0), RateLimit(-1, 60.0), RateLimit(5, 0.0)])
def test_nonsense_limits_are_refused(bad: RateLimit) -> None:
    with pytest.raises(ValueError, match=str(bad)):
        RateLimiter([bad])


async def test_concurrent_acquirers_share_the_window_on_a_real_clock() -> None:
    """Slowness can only spread the acquisitions further apart, so this cannot flake."""
    limit = RateLimit(2, 0.1)
    rl = RateLimiter([limit])
    times: list[float] = []

    async def take() -> None:
        await rl.acquire()
        times.append(time.monotonic())

    await asyncio.gather(*(take() for _ in range(6)))
    times.sort()
    assert len(times) == 6
    for i in range(len(times) - limit.count):
        assert times[i + limit.count] - times[i] >= limit.period_s * 0.9
