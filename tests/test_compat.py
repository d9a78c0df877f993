"""compat: the same behaviour on Python 3.10 (Wazuh's own) and on 3.11 and later."""

from __future__ import annotations

import asyncio

import pytest

from wazuh_integrator import compat


class MarkedLoop(asyncio.SelectorEventLoop):
    """A loop we can recognise from inside the coroutine it runs."""


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_run_uses_the_loop_factory() -> None:
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(MarkedLoop())
        return made[-1]

    loop = compat.run(running_loop(), factory)

    assert isinstance(loop, MarkedLoop)
    assert made == [loop]
    assert loop.is_closed()


def test_run_without_a_factory_uses_asyncios_default_loop() -> None:
    loop = compat.run(running_loop(), None)

    assert isinstance(loop, asyncio.BaseEventLoop)
    assert not isinstance(loop, MarkedLoop)
    assert loop.is_closed()


def test_run_leaves_the_default_loop_as_it_was() -> None:
    compat.run(running_loop(), MarkedLoop)

    loop = compat.run(running_loop(), None)

    assert not isinstance(loop, MarkedLoop)


def test_run_returns_the_result_and_raises_the_error() -> None:
    async def fails() -> None:
        raise ValueError("from inside")

    async def answers() -> int:
        return 42

    assert compat.run(answers(), MarkedLoop) == 42
    with pytest.raises(ValueError, match="from inside"):
        compat.run(fails(), MarkedLoop)


async def test_timeout_raises_a_timeout_error_and_says_it_expired() -> None:
    deadline = compat.timeout(0.01)
    with pytest.raises(compat.TIMEOUT_ERRORS):
        async with deadline:
            await asyncio.sleep(10)

    assert compat.timeout_expired(deadline)


async def test_a_timeout_error_from_inside_is_not_the_deadline() -> None:
    deadline = compat.timeout(10)
    with pytest.raises(TimeoutError):
        async with deadline:
            raise TimeoutError("the code inside gave up on its own")

    assert not compat.timeout_expired(deadline)


async def test_timeout_errors_catch_what_wait_for_raises() -> None:
    # On 3.10 asyncio.TimeoutError is not the builtin TimeoutError.
    with pytest.raises(compat.TIMEOUT_ERRORS):
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.01)
