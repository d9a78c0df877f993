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
costs each of them a store write and a parked retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Final

from wazuh_integrator import compat
from wazuh_integrator.delivery.model import Delivery, Job, decode_raw
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
# Past SPILL_AFTER_S, how often a waiting submit looks again at the others,
# and how long it waits at most: a queue that makes no room for that long
# belongs to a receiver that stopped (a long 429 pause), not to a pause of
# the whole process, and the reader goes on.
RECHECK_S: Final = 0.005
HOLD_AT_MOST_S: Final = 1.0
# Another intake "has work" while at least this share of its queue is taken.
BUSY_SHARE: Final = 0.25
OVERFLOW_BYTES: Final = 16 * 1024 * 1024
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

    def others_have_work(self, intake: Intake) -> bool:
        """Whether every other intake has a share of its queue still to do."""
        return all(other.busy() for other in self._intakes if other is not intake)


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
        self._queue_gauge = metrics.queue_depth.labels(integration=key)

    def waiting(self) -> int:
        return self._queue.qsize() + len(self._overflow)

    def busy(self) -> bool:
        return self.waiting() >= self._busy_at

    def leave_group(self) -> None:
        """Stopped: no longer one of the intakes the others wait beside."""
        if self._group is not None:
            self._group.discard(self)

    async def submit(self, delivery: Delivery) -> None:
        """Take a delivery (see the module doc). After a stop it is parked at
        once, untried, so that nothing handed over is lost."""
        self._outcomes.accepted()
        if self._stopping.is_set():
            self._park_untried(delivery, SHUTTING_DOWN)
            return
        if not self._overflow:
            if not self._queue.full():
                self._queue.put_nowait(delivery)  # the common case, without a timer
                self._queue_gauge.set(self.waiting())
                return
            try:
                put = await self._put_waiting(delivery)
            except BaseException:
                self._outcomes.dropped()
                raise
            if put:
                if self._stopping.is_set():
                    # The stop ran while this waited for room: no worker will take it.
                    self.park_all_waiting()
                self._queue_gauge.set(self.waiting())
                return
        self._to_overflow(delivery)
        self._queue_gauge.set(self.waiting())

    async def _put_waiting(self, delivery: Delivery) -> bool:
        """Put ``delivery`` once there is room: within ``SPILL_AFTER_S``, or
        up to ``HOLD_AT_MOST_S`` while every other intake of the group still
        has work. False: not put (a cancelled put puts nothing), it goes to
        the overflow."""
        timeout_s = SPILL_AFTER_S
        waited_s = 0.0
        while True:
            try:
                async with compat.timeout(timeout_s):
                    await self._queue.put(delivery)
                return True
            except compat.TIMEOUT_ERRORS:
                waited_s += timeout_s
                group = self._group
                if (
                    group is None
                    or waited_s >= HOLD_AT_MOST_S
                    or self._stopping.is_set()
                    or not group.others_have_work(self)
                ):
                    return False
            timeout_s = RECHECK_S

    async def take(self) -> Delivery:
        """The next delivery for a worker, refilling the queue from the overflow."""
        delivery = await self._queue.get()
        self._refill()
        self._queue_gauge.set(self.waiting())
        return delivery

    def park_all_waiting(self) -> None:
        """Park, untried, everything in the queue and the overflow (a stop)."""
        while not self._queue.empty():
            self._park_untried(self._queue.get_nowait(), SHUTTING_DOWN)
        while self._overflow:
            self._park_untried(self._take_overflow(), SHUTTING_DOWN)
        self._queue_gauge.set(0)

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
        while self._overflow_bytes > self._overflow_limit:
            self._spill(self._take_overflow())

    def _spill(self, delivery: Delivery) -> None:
        # Not a failure: logged once per overflow episode, not per alert.
        self._outcomes.park(
            Job(delivery), next_attempt_at=self._clock(), note=SPILLED_NOTE, quiet=True
        )

    def _park_untried(self, delivery: Delivery, note: str) -> None:
        self._outcomes.park(Job(delivery), next_attempt_at=self._clock(), note=note)

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
                self._spill(delivery)
                continue
            delivery.alert = alert
            self._queue.put_nowait(delivery)
            if not self._overflow:
                log.info("Integration '%s' has caught up with the alerts.", self.key)
