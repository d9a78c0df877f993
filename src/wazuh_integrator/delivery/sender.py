"""One attempt: a rate-limit slot, a send slot, the integration's ``send``
under a safety time-out (:mod:`.watchdog`), and the answer as a
:class:`DeliveryError` or None.

Both the live workers and the parked-retry loop send through here, so the
rate limits and the ``concurrency`` bound hold across them.
"""

from __future__ import annotations

import asyncio
import enum
import time
import traceback

from wazuh_integrator import compat
from wazuh_integrator.backoff import retry_wait_s
from wazuh_integrator.delivery.outcomes import Outcomes
from wazuh_integrator.delivery.watchdog import Watchdog
from wazuh_integrator.errors import DeliveryError, RateLimited, Timeout, Transient
from wazuh_integrator.integrations.base import Alert, Integration
from wazuh_integrator.metrics import Metrics
from wazuh_integrator.ratelimit import Clock, RateLimiter, SharedLimits, SharedPause

__all__ = ["Sender", "Slot", "sleep_unless"]


class Slot(enum.Enum):
    GRANTED = "granted"
    TOO_FAR = "too far"
    STOPPING = "stopping"


async def sleep_unless(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; False (at once) when ``stopping`` is set meanwhile."""
    if stopping.is_set():
        return False
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except compat.TIMEOUT_ERRORS:
        return True
    return False


class Sender:
    def __init__(
        self,
        integration: Integration,
        *,
        key: str,
        limiter: RateLimiter,
        concurrency: int,
        attempt_timeout_s: float,
        outcomes: Outcomes,
        metrics: Metrics,
        stopping: asyncio.Event,
        monotonic: Clock = time.monotonic,
        shared: SharedLimits | None = None,
        pause: SharedPause | None = None,
    ) -> None:
        self.integration = integration
        self.key = key
        self.limiter = limiter
        # Cluster mode: limits shared by every worker replace the in-process
        # windows, and a pause a receiver asks for (429, Retry-After) is told
        # to every worker.
        self._shared = shared
        self._pause = pause
        self._shared_wait_s = 0.0
        self.attempt_timeout_s = attempt_timeout_s
        self._watchdog = Watchdog(attempt_timeout_s)
        self._outcomes = outcomes
        self._stopping = stopping
        self._monotonic = monotonic
        self._send_slots = asyncio.Semaphore(concurrency)
        self._attempts_metric = metrics.delivery_attempts_total.labels(integration=key)
        self._seconds_metric = metrics.delivery_seconds.labels(integration=key)
        self._rate_limited_metric = metrics.rate_limited_total.labels(integration=key)

    def attempts_total(self) -> int:
        return int(self._attempts_metric.value)

    def rate_limited_total(self) -> int:
        return int(self._rate_limited_metric.value)

    async def take_slot(self, alert: Alert, *, horizon_s: float) -> Slot:
        """A rate-limit slot, waiting at most ``horizon_s`` for it; none is
        needed when the integration will not call its service (a cached lookup)."""
        if not self.integration.needs_request(alert):
            return Slot.GRANTED
        waited = False
        while self._pause is not None and (paused_s := await self._pause.remaining_s()) > 0:
            if paused_s > horizon_s:
                self._shared_wait_s = paused_s
                return Slot.TOO_FAR
            if not waited:
                waited = True
                self._rate_limited_metric.inc()
            if not await sleep_unless(self._stopping, paused_s):
                return Slot.STOPPING
        while not self.limiter.try_acquire():
            delay_s = self.limiter.delay_s()
            if delay_s > horizon_s:
                return Slot.TOO_FAR
            if not waited:
                waited = True
                self._rate_limited_metric.inc()
            if not await sleep_unless(self._stopping, delay_s):
                return Slot.STOPPING
        if self._shared is not None:
            return await self._take_shared_slot(horizon_s, waited=waited)
        return Slot.GRANTED

    def too_far_wait_s(self) -> float:
        """How long until a slot after :meth:`take_slot` answered TOO_FAR."""
        return max(self.limiter.delay_s(), self._shared_wait_s)

    async def _take_shared_slot(self, horizon_s: float, *, waited: bool) -> Slot:
        assert self._shared is not None
        while (delay_s := await self._shared.try_acquire()) > 0:
            if delay_s > horizon_s:
                self._shared_wait_s = delay_s
                return Slot.TOO_FAR
            if not waited:
                waited = True
                self._rate_limited_metric.inc()
            if not await sleep_unless(self._stopping, delay_s):
                return Slot.STOPPING
        return Slot.GRANTED

    async def attempt(self, alert: Alert, attempt: int) -> DeliveryError | None:
        """Send once; the failure as a DeliveryError, or None when delivered."""
        self._attempts_metric.inc()
        counted_by_shared_limits = self._shared is not None and self.integration.needs_request(
            alert
        )
        started = self._monotonic()
        error: DeliveryError | None = None
        async with self._send_slots:
            task = self._watchdog.watch()
            try:
                await self.integration.send(alert)
            except DeliveryError as exc:
                error = exc
            except asyncio.CancelledError:
                if not self._watchdog.release(task):
                    raise
                error = Timeout(f"no answer within {self.attempt_timeout_s:g} s")
            except Exception as exc:
                error = self._unexpected(exc, alert, attempt)
            finally:
                self._watchdog.release(task)
        self._seconds_metric.observe(max(0.0, self._monotonic() - started))
        if counted_by_shared_limits and self._shared is not None:
            await self._shared.sent()
        return error

    def pause_for_rate_limit(self, error: RateLimited, backoff: float) -> float:
        """The receiver said slow down: the whole integration waits; the wait."""
        wait_s = retry_wait_s(backoff, error.retry_after_s)
        self.limiter.pause_for(wait_s)
        if self._pause is not None and error.retry_after_s is not None:
            # Only a wait the receiver named is the cluster's: a bare 429 or
            # 503 is answered by this worker's own backoff.
            self._pause.announce(retry_wait_s(0.0, error.retry_after_s))
        self._rate_limited_metric.inc()
        return wait_s

    def _unexpected(self, exc: Exception, alert: Alert, attempt: int) -> DeliveryError:
        """An exception an integration should not raise: a bug, logged with
        enough context to find it, then handled as a transient failure."""
        text = self._outcomes.scrubbed(f"{type(exc).__name__}: {exc}")
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        self._outcomes.failures.gave_up(
            "unexpected",
            text,
            "Integration '%s': unexpected error on alert %s, attempt %d, at %s: %s",
            self.key,
            alert.get("id", "?"),
            attempt,
            where,
            text,
        )
        return Transient(f"unexpected error in the integration: {text}")
