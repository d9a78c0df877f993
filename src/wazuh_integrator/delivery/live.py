"""The workers: each takes a delivery from the intake, sends it, and on a
failure retries it a few times in memory before it is parked.

1. While the circuit is open, a delivery is parked untried.
2. A rate-limit slot further away than ``MAX_IN_MEMORY_WAIT_S`` parks it
   until then.
3. On a transient failure it is retried in memory up to the block's
   ``<retries>`` times, with short backoffs; a 429 with ``Retry-After`` is
   waited out without using up a retry, up to ``MAX_RATE_LIMIT_WAITS`` times.
4. Still failing: parked, with its next attempt after the parked backoff.
5. A permanent failure, or any failure with retries off: a dead letter.
"""

from __future__ import annotations

import asyncio
from typing import Final

from wazuh_integrator.delivery.circuit import Circuit
from wazuh_integrator.delivery.intake import Intake
from wazuh_integrator.delivery.model import Job
from wazuh_integrator.delivery.outcomes import Outcomes
from wazuh_integrator.delivery.schedule import RetrySchedule
from wazuh_integrator.delivery.sender import Sender, Slot, sleep_unless
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited
from wazuh_integrator.ratelimit import Clock

__all__ = ["MAX_IN_MEMORY_WAIT_S", "MAX_RATE_LIMIT_WAITS", "LiveDeliveries"]

# The longest a live delivery waits in memory for a rate-limit slot or a
# receiver's Retry-After; 60 s covers a "4/minute" quota. Longer: parked.
MAX_IN_MEMORY_WAIT_S: Final = 60.0
# 429s a live delivery waits out in memory before it is parked. They do not
# use up the block's <retries>: the receiver is alive and said when to return.
MAX_RATE_LIMIT_WAITS: Final = 3


class LiveDeliveries:
    """The worker loop and what it does with each failure."""

    def __init__(
        self,
        *,
        key: str,
        intake: Intake,
        sender: Sender,
        outcomes: Outcomes,
        circuit: Circuit,
        schedule: RetrySchedule,
        quick_retries: int,
        retry: bool,
        stopping: asyncio.Event,
        clock: Clock,
    ) -> None:
        self.key = key
        self._intake = intake
        self._sender = sender
        self._outcomes = outcomes
        self._circuit = circuit
        self._schedule = schedule
        self._quick_retries = quick_retries
        self._retry = retry
        self._stopping = stopping
        self._clock = clock
        self.in_flight: set[Job] = set()
        self.none_in_flight = asyncio.Event()
        self.none_in_flight.set()

    async def work(self) -> None:
        """One worker, until a stop."""
        while not self._stopping.is_set():
            job = Job(await self._intake.take())
            self.in_flight.add(job)
            self.none_in_flight.clear()
            try:
                await self._deliver(job)
            except asyncio.CancelledError:
                raise  # the stop parks what is still in flight
            except Exception as exc:
                self._outcomes.abandon(job, exc)
            self.in_flight.discard(job)
            if not self.in_flight:
                self.none_in_flight.set()

    def park_in_flight(self) -> None:
        """After the workers were cancelled: park what they held."""
        for job in list(self.in_flight):
            if job.delivery.settled:
                continue  # stored as a dead letter; only its give-up step was cut short
            self._outcomes.park(job, next_attempt_at=self._clock(), note="interrupted by shutdown")
        self.in_flight.clear()

    async def _deliver(self, job: Job) -> None:
        outcomes = self._outcomes
        if self._sender.integration.would_skip(job.delivery.alert) is not None:
            # Nothing to send (``test`` shows why): settled without a rate-limit slot.
            outcomes.count("skipped")
            outcomes.settle(job.delivery)
            return
        while True:
            if self._circuit.is_open:
                outcomes.park(job, next_attempt_at=self._clock(), note="the receiver is failing")
                return
            slot = await self._sender.take_slot(job.delivery.alert, horizon_s=MAX_IN_MEMORY_WAIT_S)
            if slot is Slot.TOO_FAR:
                wait_s = self._sender.too_far_wait_s()
                outcomes.park(
                    job,
                    next_attempt_at=self._clock() + wait_s,
                    note=f"waiting {wait_s:.0f} s for the rate limit",
                )
                return
            if slot is Slot.STOPPING:
                outcomes.park(job, next_attempt_at=self._clock(), note="shutting down")
                return
            job.attempts += 1
            error = await self._sender.attempt(job.delivery.alert, job.attempts)
            if error is None:
                outcomes.delivered(job.delivery)
                return
            if not await self._after_failure(job, error):
                return

    async def _after_failure(self, job: Job, error: DeliveryError) -> bool:
        """Handle a live failure: True to try again now, False when it was
        parked or dead-lettered."""
        outcomes = self._outcomes
        now = self._clock()
        if job.first_failed_at is None:
            job.first_failed_at = now
        job.last_error = error
        text = outcomes.text(error)
        if isinstance(error, Permanent):
            outcomes.receiver_answered()
        if isinstance(error, Permanent) or not self._retry:
            outcomes.dead_letter(
                job.delivery.raw,
                attempts=job.attempts,
                first_failed_at=job.first_failed_at,
                error=error,
            )
            # Settled as soon as it is stored: the give-up step is best effort.
            outcomes.settle(job.delivery)
            await outcomes.call_on_give_up(job.delivery.alert, error)
            return False
        if isinstance(error, RateLimited) and error.retry_after_s is not None:
            # The receiver is alive and said when to come back: wait it out
            # without using up a retry, a few times, then park.
            backoff = self._schedule.quick_s(job.rate_limit_waits + 1)
            wait_s = self._sender.pause_for_rate_limit(error, backoff)
            if wait_s <= MAX_IN_MEMORY_WAIT_S and job.rate_limit_waits < MAX_RATE_LIMIT_WAITS:
                job.rate_limit_waits += 1
                outcomes.count("retried")
                outcomes.failures.failed(
                    "rate limit",
                    text,
                    "Integration '%s': receiver asked to slow down; waiting %.1f s: %s",
                    self.key,
                    wait_s,
                    text,
                )
                return True  # the next slot waits out the pause
            outcomes.park(job, next_attempt_at=now + wait_s)
            return False
        outcomes.transient_failure(now)
        if job.quick_retries < self._quick_retries and not self._circuit.is_open:
            job.quick_retries += 1
            wait_s = self._schedule.quick_s(job.quick_retries)
            if isinstance(error, RateLimited):
                # "Slow down" without saying how long (VirusTotal's 204, a bare
                # 429 or 503): the whole integration backs off, not only this one.
                self._sender.pause_for_rate_limit(error, wait_s)
            outcomes.count("retried")
            outcomes.failures.failed(
                "retry",
                text,
                "Integration '%s': delivery failed, retrying: %s",
                self.key,
                text,
            )
            if await sleep_unless(self._stopping, wait_s):
                return True
        outcomes.park(job, next_attempt_at=now + self._schedule.parked_s(job.attempts))
        return False
