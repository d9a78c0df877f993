"""The checkpoint as a low-watermark over the alert lines read so far.

A line is *settled* once every delivery it caused has been delivered, parked
or dead-lettered. The checkpoint is the end of the longest settled prefix of
lines, so a restart replays from the first line that might not have reached
every receiver: at-least-once, never lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

P = TypeVar("P")


class _PendingLine(Generic[P]):
    __slots__ = ("end", "remaining")

    def __init__(self, end: P, remaining: int) -> None:
        self.end = end
        self.remaining = remaining


class Watermark(Generic[P]):
    """Tracks unsettled lines in read order; memory grows with the number of
    lines that still have deliveries in flight, not with the lines read."""

    def __init__(self, start: P | None) -> None:
        self._position = start
        self._pending: deque[_PendingLine[P]] = deque()
        self.advanced = False

    @property
    def position(self) -> P | None:
        return self._position

    @property
    def in_flight_lines(self) -> int:
        return sum(1 for line in self._pending if line.remaining)

    def line_without_work(self, end: P) -> None:
        """A line that caused no delivery (no match, invalid, skipped)."""
        if not self._pending:
            self._position = end
            self.advanced = True
            return
        tail = self._pending[-1]
        if tail.remaining == 0:
            tail.end = end  # fold runs of idle lines into one entry
        else:
            self._pending.append(_PendingLine(end, 0))

    def line_with_work(self, end: P, deliveries: int) -> Callable[[], None]:
        """A line that caused ``deliveries`` deliveries; returns the callback
        each of them calls exactly once when it settles."""
        entry = _PendingLine(end, deliveries)
        self._pending.append(entry)

        def settle() -> None:
            entry.remaining -= 1
            if entry.remaining == 0 and self._pending and self._pending[0] is entry:
                self._advance()

        return settle

    def _advance(self) -> None:
        while self._pending and self._pending[0].remaining == 0:
            self._position = self._pending.popleft().end
            self.advanced = True
