"""The parked-retry loop: parked deliveries are tried again when due, with
longer and longer waits, until delivered or older than ``max_retry_age``.

The rows live behind :class:`~wazuh_integrator.delivery.parked_rows.ParkedRows`
(the state store, or Redis for cluster workers): this loop claims the due
ones, so that it never tries a row another loop is trying, and gives each
back removed, rescheduled or released.

While the circuit is open, one due delivery at a time is tried, as the
*probe*, when the circuit says a probe is due; the others wait, and those
older than ``max_retry_age`` are dead-lettered without a last attempt. Rows
that another process parks (``dead-letter replay``, another cluster worker)
are found by polling every ``PARKED_POLL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from wazuh_integrator import compat
from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.delivery.circuit import Circuit
from wazuh_integrator.delivery.model import decode_raw
from wazuh_integrator.delivery.outcomes import Outcomes
from wazuh_integrator.delivery.parked_rows import ParkedRows
from wazuh_integrator.delivery.schedule import RetrySchedule
from wazuh_integrator.delivery.sender import Sender, Slot
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Transient
from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.ratelimit import Clock
from wazuh_integrator.store import ParkedDelivery

__all__ = ["PARKED_BATCH_PER_WORKER", "PARKED_POLL_S", "ParkedRetries"]

log = logging.getLogger(__name__)

# How often the loop looks at the rows even when nothing here changed them:
# `dead-letter replay` and the other cluster workers park rows too.
PARKED_POLL_S: Final = 2.0
PARKED_BATCH_PER_WORKER: Final = 4


class ParkedRetries:
    def __init__(
        self,
        *,
        key: str,
        rows: ParkedRows,
        sender: Sender,
        outcomes: Outcomes,
        circuit: Circuit,
        schedule: RetrySchedule,
        settings: IntegrationSettings,
        retry: bool,
        concurrency: int,
        stopping: asyncio.Event,
        clock: Clock,
    ) -> None:
        self.key = key
        self._rows = rows
        self._sender = sender
        self._outcomes = outcomes
        self._circuit = circuit
        self._schedule = schedule
        self._max_retry_age_s = settings.max_retry_age_s
        self._retry_enabled = retry
        self._batch = concurrency * PARKED_BATCH_PER_WORKER
        self._stopping = stopping
        self._clock = clock

    async def loop(self) -> None:
        """Until a stop: wait for the next due row (or the next probe), try it."""
        while not self._stopping.is_set():
            try:
                await self._outcomes.bring_parked_forward()
                now = self._clock()
                due_at = await self._rows.next_due_at(self.key)
                if due_at is not None and self._circuit.is_open:
                    due_at = max(due_at, self._circuit.next_probe_at)
                if due_at is None or due_at > now:
                    wait_s = PARKED_POLL_S if due_at is None else min(due_at - now, PARKED_POLL_S)
                    await self._wait_for_change(wait_s)
                    await self._outcomes.maybe_refresh_gauges()
                    continue
                await self._retry_due(now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = self._outcomes.scrubbed(f"{type(exc).__name__}: {exc}")
                self._outcomes.failures.gave_up(
                    "parked loop",
                    text,
                    "Integration '%s': cannot retry parked deliveries: %s",
                    self.key,
                    text,
                )
                await self._wait_for_change(PARKED_POLL_S)

    async def _wait_for_change(self, timeout_s: float) -> None:
        changed = self._outcomes.parked_changed
        with contextlib.suppress(*compat.TIMEOUT_ERRORS):
            await asyncio.wait_for(changed.wait(), timeout=max(0.0, timeout_s))
        changed.clear()

    async def _retry_due(self, now: float) -> None:
        batch = await self._rows.claim_due(self.key, now, self._batch)
        try:
            await self._try_claimed(batch, now)
        except Exception:
            # Whatever was not given back (Redis went away mid-batch) is no
            # longer this loop's: left held, its claim would be renewed for
            # ever and the row never retried. Abandoned, its claim lapses.
            for parked in batch:
                self._rows.abandon(parked)
            raise

    async def _try_claimed(self, batch: list[ParkedDelivery], now: float) -> None:
        probing = self._circuit.is_open
        to_try: list[ParkedDelivery] = []
        for parked in batch:
            if probing and now - parked.first_failed_at >= self._max_retry_age_s:
                # The receiver is down: no last attempt for each expired one.
                await self._expire_untried(parked)
            else:
                to_try.append(parked)
        if probing:
            for parked in to_try[1:]:
                await self._rows.release(parked)
            to_try = to_try[:1]
        results = await asyncio.gather(
            *(self._retry(parked, probe=probing) for parked in to_try),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _retry(self, parked: ParkedDelivery, *, probe: bool) -> None:
        outcomes = self._outcomes
        if self._stopping.is_set() or (self._circuit.is_open and not probe):
            await self._rows.release(parked)  # tried after restart or by the next probe
            return
        alert = decode_raw(parked.alert)
        if alert is None:
            await self._dead_letter(
                parked, {}, Permanent("the parked alert is not a JSON object"), call_back=False
            )
            return
        if await self._sender.take_slot(alert, horizon_s=float("inf")) is not Slot.GRANTED:
            await self._rows.release(parked)
            return
        attempts = parked.attempts + 1
        error = await self._sender.attempt(alert, attempts)
        now = self._clock()
        if error is None:
            await self._rows.remove(parked)
            outcomes.parked_count_changed(-1)
            outcomes.delivered()
            return
        if isinstance(error, Permanent):
            outcomes.receiver_answered()
        too_old = now - parked.first_failed_at >= self._max_retry_age_s
        if isinstance(error, Permanent) or not self._retry_enabled or too_old:
            await self._dead_letter(parked, alert, error, attempts=attempts, call_back=True)
            return
        wait_s = self._schedule.parked_s(attempts)
        if isinstance(error, RateLimited):
            wait_s = self._sender.pause_for_rate_limit(error, wait_s)
        if not isinstance(error, RateLimited) or error.retry_after_s is None:
            outcomes.transient_failure(now, probe=probe)
        text = outcomes.text(error)
        await self._rows.reschedule(
            parked, attempts=attempts, next_attempt_at=now + wait_s, last_error=text
        )
        outcomes.failures.failed(
            "parked retry",
            text,
            "Integration '%s': parked delivery failed again, next attempt in %.1f s: %s",
            self.key,
            wait_s,
            text,
        )

    async def _expire_untried(self, parked: ParkedDelivery) -> None:
        alert = decode_raw(parked.alert)
        error = Transient(f"gave up after max_retry_age; last error: {parked.last_error}")
        await self._dead_letter(
            parked, alert or {}, error, attempts=parked.attempts, call_back=alert is not None
        )

    async def _dead_letter(
        self,
        parked: ParkedDelivery,
        alert: Alert,
        error: DeliveryError,
        *,
        attempts: int | None = None,
        call_back: bool,
    ) -> None:
        self._outcomes.dead_letter(
            parked.alert,
            attempts=parked.attempts if attempts is None else attempts,
            first_failed_at=parked.first_failed_at,
            error=error,
        )
        await self._rows.remove(parked)
        self._outcomes.parked_count_changed(-1)
        if call_back:
            await self._outcomes.call_on_give_up(alert, error)
