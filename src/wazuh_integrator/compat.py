"""The few Python 3.11 asyncio features we use, on Python 3.10 as well.

Every Wazuh 4.x manager carries its own CPython 3.10 (``/var/ossec/framework/python``),
so the package runs there. On 3.11 and later these names are asyncio's own; on 3.10
they come from aio-libs' ``async_timeout`` or from asyncio's documented older forms.

- :func:`timeout` and :data:`Timeout`: ``asyncio.timeout``, or ``async_timeout`` on 3.10.
- :func:`timeout_expired`: whether a deadline fired (a method on one, a property on the other).
- :data:`TIMEOUT_ERRORS`: catch this, not ``TimeoutError``, around asyncio time-outs: on
  3.10 ``asyncio.TimeoutError`` (raised by ``wait_for``, ``timeout`` and aiohttp) is not
  the builtin ``TimeoutError``; 3.11 made them one class.
- :func:`run`: ``asyncio.Runner`` with a loop factory (uvloop); on 3.10, where
  ``asyncio.run`` takes no factory, an event loop policy that uses it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    from asyncio import Timeout, timeout
else:
    from async_timeout import Timeout, timeout

__all__ = ["TIMEOUT_ERRORS", "Timeout", "run", "timeout", "timeout_expired"]

T = TypeVar("T")

TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)


def timeout_expired(deadline: Timeout) -> bool:
    """Whether *deadline* fired, as opposed to a time-out raised by the code inside it."""
    if sys.version_info >= (3, 11):
        return deadline.expired()
    return deadline.expired


def run(
    main: Coroutine[Any, Any, T],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> T:
    """Run *main* to completion in a new event loop made by *loop_factory*
    (None: asyncio's default loop), as ``asyncio.run`` does."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)
    if loop_factory is None:
        return asyncio.run(main)
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(_FactoryPolicy(loop_factory))
    try:
        return asyncio.run(main)
    finally:
        asyncio.set_event_loop_policy(previous)


if sys.version_info < (3, 11):
    # Defined only where used: event loop policies are deprecated from 3.14 on.
    class _FactoryPolicy(asyncio.DefaultEventLoopPolicy):
        """The policy ``asyncio.run`` asks for its loop (as ``uvloop.install`` does)."""

        def __init__(self, loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
            super().__init__()
            self._loop_factory = loop_factory

        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            return self._loop_factory()
