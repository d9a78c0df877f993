"""The safety time-out around each send, on one timer per sender instead of one per send.

Every integration bounds its own requests (``<timeout>``); this is the
backstop for one that does not, a plugin that hangs or a bug of ours, and it
fires a safety margin after that. An ``asyncio.timeout`` per attempt costs
about 4 µs (a timer armed and cancelled, task bookkeeping), some 8 % of a
webhook delivery's CPU. Here an attempt only records its task and deadline;
one timer per sender, ticking while attempts are in flight, cancels those
past their deadline. A time-out so fires up to one tick late, which for a
backstop seconds long does not matter.
"""

from __future__ import annotations

import asyncio
import sys

__all__ = ["Watchdog"]

# How often the in-flight attempts are checked, at most: a tenth of a second
# late on a limit of seconds. Shorter limits (tests) tick at a quarter of theirs.
TICK_S = 0.1


class Watchdog:
    """Cancels the tasks whose attempt outlives ``limit_s``.

    ``watch`` before the awaited send and ``release`` after it, in the same
    task, with nothing awaited between ``watch`` and the send: then a task the
    tick finds overdue is always suspended inside the send, which is where its
    CancelledError lands.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._tick_s = min(TICK_S, max(limit_s / 4, 0.001))
        self._deadlines: dict[asyncio.Task[object], float] = {}
        self._cancelling: dict[asyncio.Task[object], int] = {}
        self._fired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self) -> asyncio.Task[object]:
        """Start the clock on the current task's attempt; returns the task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Watchdog.watch outside a task")
        loop = asyncio.get_running_loop()
        self._deadlines[task] = loop.time() + self.limit_s
        if sys.version_info >= (3, 11):
            # Cancellations already requested are not ours to take back.
            self._cancelling[task] = task.cancelling()
        if self._timer is None:
            self._timer = loop.call_later(self._tick_s, self._tick)
        return task

    def release(self, task: asyncio.Task[object]) -> bool:
        """The attempt is over. True when this watchdog cancelled it (it
        timed out): the CancelledError it caused is then taken back, unless
        someone else asked to cancel the task as well (shutdown), in which
        case the caller must let the CancelledError go on."""
        self._deadlines.pop(task, None)
        baseline = self._cancelling.pop(task, 0)
        if task not in self._fired:
            return False
        self._fired.discard(task)
        if sys.version_info >= (3, 11):
            return task.uncancel() <= baseline
        return True

    def _tick(self) -> None:
        self._timer = None
        if not self._deadlines:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in self._deadlines.items():
            if deadline <= now and task not in self._fired:
                self._fired.add(task)
                task.cancel()
        self._timer = loop.call_later(self._tick_s, self._tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
