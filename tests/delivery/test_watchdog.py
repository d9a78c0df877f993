"""The safety time-out's watchdog: what it cancels, and what it leaves alone."""

from __future__ import annotations

import asyncio
import sys

import pytest

from wazuh_integrator.delivery.watchdog import Watchdog


async def watched(watchdog: Watchdog, wait: asyncio.Future[None]) -> str:
    """One attempt as Sender.attempt runs it: 'timed out', 'done', or the
    CancelledError when the cancellation was not the watchdog's."""
    task = watchdog.watch()
    try:
        await wait
    except asyncio.CancelledError:
        if not watchdog.release(task):
            raise
        return "timed out"
    finally:
        watchdog.release(task)
    return "done"


async def test_an_attempt_past_its_limit_is_cancelled_and_reported_as_timed_out() -> None:
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(0.2)
    started = loop.time()
    assert await watched(watchdog, loop.create_future()) == "timed out"
    took = loop.time() - started
    assert 0.2 <= took < 2.0


async def test_attempts_that_finish_in_time_are_not_touched() -> None:
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(0.2)
    results = []
    for _ in range(5):
        answer: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.1, answer.set_result, None)
        results.append(await watched(watchdog, answer))
    assert results == ["done"] * 5  # 0.5 s in all: the limit is per attempt


async def test_a_shutdown_cancel_is_not_turned_into_a_time_out() -> None:
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(30.0)
    task = asyncio.ensure_future(watched(watchdog, loop.create_future()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 does not count cancellations")
async def test_a_shutdown_cancel_at_the_time_out_still_stops_the_task() -> None:
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(0.1)
    never: asyncio.Future[None] = loop.create_future()
    task: asyncio.Task[str] | None = None

    def shut_down_too(_: asyncio.Future[None]) -> None:
        # Runs when the watchdog cancels the send, before the task wakes up:
        # shutdown asks for the same task's cancellation at the same moment.
        assert task is not None
        task.cancel()

    never.add_done_callback(shut_down_too)
    task = asyncio.ensure_future(watched(watchdog, never))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5.0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 does not count cancellations")
async def test_a_timed_out_task_can_still_use_time_outs_of_its_own() -> None:
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(0.1)
    assert await watched(watchdog, loop.create_future()) == "timed out"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    # A wait_for that ends in time returns its value, not a stale cancellation.
    assert await asyncio.wait_for(asyncio.sleep(0.01, result="slept"), timeout=1.0) == "slept"


async def test_many_attempts_in_flight_each_get_their_own_deadline() -> None:
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(0.3)
    quick: list[asyncio.Future[None]] = [loop.create_future() for _ in range(16)]
    hung: list[asyncio.Future[None]] = [loop.create_future() for _ in range(16)]
    for answer in quick:
        loop.call_later(0.05, answer.set_result, None)
    outcomes = await asyncio.gather(*(watched(watchdog, f) for f in quick + hung))
    assert outcomes == ["done"] * 16 + ["timed out"] * 16
