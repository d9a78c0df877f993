"""The way in: a bounded queue, then an overflow of raw lines, then the store.

:meth:`Intake.submit` puts a delivery in the queue when there is room, or
room is made within ``SPILL_AFTER_S``: a receiver that keeps up frees room
well within it. Past that, deliveries wait in an overflow that keeps only
their raw line (decoded again when they reach the queue), without holding the
reader, until the overflow is empty again; past ``OVERFLOW_BYTES`` the oldest
are spilled to the store, untried and due now. So a receiver slower than the
alert stream cannot slow the other integrations, and memory stays bounded.

The overflow is for the other integrations' sake. The intakes one reader
feeds share an :class:`IntakeGroup`: while every other intake of it still has
work queued (or there is no other), holding the reader starves no one, so a
full queue keeps it waiting past ``SPILL_AFTER_S``, up to ``HOLD_AT_MOST_S``.
Without that, a pause of the whole process (a loaded machine, a slow disk)
sent a fast integration's alerts through the overflow and the store, which
costs each of them a store write and a parked retry. The other way round, a
wait ends early once an intake that had work when it began has none left:
holding the reader on would starve that one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Final

from wazuh_integrator import compat
from wazuh_integrator.delivery.model import Delivery, decode_raw
from wazuh_integrator.delivery.outcomes import Outcomes
from wazuh_integrator.metrics import Metrics
from wazuh_integrator.ratelimit import Clock

__all__ = [
    "HOLD_AT_MOST_S",
    "OVERFLOW_BYTES",
    "RECHECK_S",
    "SPILLED_NOTE",
    "SPILL_AFTER_S",
    "Intake",
    "IntakeGroup",
]

log = logging.getLogger(__name__)

SPILL_AFTER_S: Final = 0.05
# How often a waiting submit looks again at the others (one that had work may
# have run dry), and how long it waits at most: a queue that makes no room for that long
# belongs to a receiver that stopped (a long 429 pause), not to a pause of
# the whole process, and the reader goes on.
RECHECK_S: Final = 0.005
HOLD_AT_MOST_S: Final = 1.0
# Another intake "has work" while at least this share of its queue is taken.
BUSY_SHARE: Final = 0.25
OVERFLOW_BYTES: Final = 16 * 1024 * 1024
# A spill takes the overflow this share of its limit below it (see _spill_oldest).
SPILL_BATCH_SHARE: Final = 16
SPILLED_NOTE: Final = "the queue was full: kept in the store, due now"
SHUTTING_DOWN: Final = "shutting down"


class IntakeGroup:
    """The intakes one reader feeds (see the module doc)."""

    def __init__(self) -> None:
        self._intakes: list[Intake] = []

    def add(self, intake: Intake) -> None:
        self._intakes.append(intake)

    def discard(self, intake: Intake) -> None:
        if intake in self._intakes:
            self._intakes.remove(intake)

    def others(self, intake: Intake) -> list[Intake]:
        return [other for other in self._intakes if other is not intake]

    def others_have_work(self, intake: Intake) -> bool:
        """Whether every other intake has a share of its queue still to do."""
        return all(other.busy() for other in self.others(intake))


class Intake:
    def __init__(
        self,
        *,
        key: str,
        queue_size: int,
        overflow_bytes: int,
        outcomes: Outcomes,
        metrics: Metrics,
        stopping: asyncio.Event,
        clock: Clock,
        group: IntakeGroup | None = None,
    ) -> None:
        self.key = key
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=queue_size)
        self._busy_at = max(1, int(queue_size * BUSY_SHARE))
        self._group = group
        if group is not None:
            group.add(self)
        self._overflow: deque[Delivery] = deque()
        self._overflow_bytes = 0
        self._overflow_limit = overflow_bytes
        self._outcomes = outcomes
        self._stopping = stopping
        self._clock = clock
        # Read at a scrape: setting it on every submit and take cost the reader.
        metrics.queue_depth.labels(integration=key).set_function(self.waiting)

    def waiting(self) -> int:
        return self._queue.qsize() + len(self._overflow)

    def busy(self) -> bool:
        return self.waiting() >= self._busy_at

    def leave_group(self) -> None:
        """Stopped: no longer one of the intakes the others wait beside."""
        if self._group is not None:
            self._group.discard(self)

    def offer(self, delivery: Delivery) -> bool:
        """Take a delivery if that needs no waiting: there is room in the
        queue, the overflow is in use, or the deliverer has stopped (it is
        then parked at once, untried, so that nothing handed over is lost).
        False: nothing was done, and :meth:`submit` is to wait for room.

        Not a coroutine, so that the reader hands most deliveries over
        without creating and running one each.
        """
        stopping = self._stopping.is_set()
        if not (stopping or self._overflow or not self._queue.full()):
            return False
        self._outcomes.accepted()
        if stopping:
            self._outcomes.park_untried([delivery], note=SHUTTING_DOWN)
        elif self._overflow:
            self._to_overflow(delivery)
        else:
            self._queue.put_nowait(delivery)
        return True

    async def submit(self, delivery: Delivery) -> None:
        """Take a delivery (see the module doc and :meth:`offer`)."""
        if self.offer(delivery):
            return
        self._outcomes.accepted()
        try:
            put = await self._put_waiting(delivery)
        except BaseException:
            self._outcomes.dropped()
            raise
        if not put:
            self._to_overflow(delivery)
        elif self._stopping.is_set():
            # The stop ran while this waited for room: no worker will take it.
            self.park_all_waiting()

    async def _put_waiting(self, delivery: Delivery) -> bool:
        """Put ``delivery`` once there is room: within ``SPILL_AFTER_S``, or
        up to ``HOLD_AT_MOST_S`` while every other intake of the group still
        has work; but no longer once another that had work when the wait
        began has none left, since waiting on would starve it. False: not
        put (a cancelled put puts nothing), it goes to the overflow."""
        group = self._group
        working = [other for other in group.others(self) if other.waiting()] if group else []
        spill_after = max(1, round(SPILL_AFTER_S / RECHECK_S))
        hold_at_most = max(1, round(HOLD_AT_MOST_S / RECHECK_S))
        waited = 0
        while True:
            try:
                async with compat.timeout(RECHECK_S):
                    await self._queue.put(delivery)
                return True
            except compat.TIMEOUT_ERRORS:
                waited += 1
                if (
                    self._stopping.is_set()
                    or waited >= hold_at_most
                    or any(not other.waiting() for other in working)
                    or (
                        waited >= spill_after
                        and (group is None or not group.others_have_work(self))
                    )
                ):
                    return False

    async def take(self) -> Delivery:
        """The next delivery for a worker, refilling the queue from the overflow."""
        delivery = await self._queue.get()
        self._refill()
        return delivery

    def park_all_waiting(self) -> None:
        """Park, untried, everything in the queue and the overflow (a stop)."""
        waiting = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        waiting.extend(self._overflow)
        self._overflow.clear()
        self._overflow_bytes = 0
        self._outcomes.park_untried(waiting, note=SHUTTING_DOWN)

    def _to_overflow(self, delivery: Delivery) -> None:
        if not self._overflow:
            log.info(
                "Integration '%s' is slower than the alerts: holding them in memory"
                " (then in the state store) until it catches up.",
                self.key,
            )
        delivery.alert = {}  # decoded again when it reaches the queue
        self._overflow.append(delivery)
        self._overflow_bytes += len(delivery.raw)
        if self._overflow_bytes > self._overflow_limit:
            self._spill_oldest()

    def _spill_oldest(self) -> None:
        """Spill the oldest of the overflow to the store, untried and due now,
        down to a sixteenth below the limit: one write for a batch of rows
        instead of one per alert, each write short enough not to hold the
        loop (a MiB of alerts with the default limit)."""
        keep = self._overflow_limit - self._overflow_limit // SPILL_BATCH_SHARE
        overflow = self._overflow
        spilled = []
        while overflow and (
            self._overflow_bytes > self._overflow_limit
            or self._overflow_bytes - len(overflow[0].raw) >= keep
        ):
            spilled.append(self._take_overflow())
        # Not a failure: logged once per overflow episode, not per alert.
        self._outcomes.park_untried(spilled, note=SPILLED_NOTE, quiet=True)

    def _take_overflow(self) -> Delivery:
        delivery = self._overflow.popleft()
        self._overflow_bytes -= len(delivery.raw)
        return delivery

    def _refill(self) -> None:
        """Move overflow deliveries into the room the workers made."""
        while self._overflow and not self._queue.full():
            delivery = self._take_overflow()
            alert = decode_raw(delivery.raw)
            if alert is None:  # it decoded when read: only a bug gets here
                self._outcomes.park_untried([delivery], note=SPILLED_NOTE, quiet=True)
                continue
            delivery.alert = alert
            self._queue.put_nowait(delivery)
            if not self._overflow:
                log.info("Integration '%s' has caught up with the alerts.", self.key)
