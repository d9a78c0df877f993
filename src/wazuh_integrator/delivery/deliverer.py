"""One integration's delivery: a bounded queue, workers, rate limits, quick
retries, parking in the state store, and dead letters.

The life of a delivery:

1. :meth:`Deliverer.submit` queues it, holding the reader a moment at most:
   past the bounded queue it waits in a bounded overflow of raw lines, and
   past that it is spilled to the state store, so a slow receiver neither
   fills memory nor slows the other integrations.
2. A worker takes a rate-limit slot and calls ``integration.send`` inside a
   safety time-out.
3. On a transient failure it retries in memory a few times (``<retries>`` of
   the block) with short backoffs; a 429 pauses the whole integration for the
   time the receiver asked.
4. Still failing: the delivery is *parked* in the state store with its next
   attempt time, and settled, so the checkpoint moves on. The parked-retry
   loop tries it again when due, with longer backoffs, until it is delivered
   or older than ``max_retry_age``.
5. A permanent failure, a failure with retries disabled, or a parked delivery
   too old is *dead-lettered*: kept in the store for inspection and replay,
   and ``integration.on_give_up`` is called once.

A circuit breaker keeps a receiver that is down from being hit by every new
alert: while it is open, new deliveries are parked untried and one parked
delivery at a time probes the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
import traceback
from collections import deque
from typing import Any, Final

import orjson

from wazuh_integrator.backoff import backoff_s, retry_wait_s
from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.delivery.circuit import PROBE_CAP_S, Circuit
from wazuh_integrator.delivery.failure_log import FailureLog
from wazuh_integrator.delivery.model import Delivery, Job
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Timeout, Transient
from wazuh_integrator.integrations.base import Alert, Integration
from wazuh_integrator.metrics import DELIVERY_OUTCOMES, Metrics
from wazuh_integrator.ratelimit import Clock, RateLimiter
from wazuh_integrator.secret import redact_urls_in, scrub
from wazuh_integrator.store import ParkedDelivery, StateStore

__all__ = [
    "CIRCUIT_THRESHOLD",
    "MAX_IN_MEMORY_WAIT_S",
    "MAX_RATE_LIMIT_WAITS",
    "QUICK_BACKOFF_CAP_S",
    "SAFETY_MARGIN_S",
    "Deliverer",
]

log = logging.getLogger(__name__)

# In-memory retries hold a worker and a queue slot: keep their waits short and
# leave long ones to the store.
QUICK_BACKOFF_CAP_S: Final = 30.0
# The longest a live delivery waits in memory for a rate-limit slot or a
# receiver's Retry-After; 60 s covers a "4/minute" quota. Longer: parked.
MAX_IN_MEMORY_WAIT_S: Final = 60.0
# 429s a live delivery waits out in memory before it is parked. They do not
# use up the block's <retries>: the receiver is alive and said when to return.
MAX_RATE_LIMIT_WAITS: Final = 3
# Added to the block's <timeout> for the whole attempt: integrations enforce
# their own time-out, this only catches one that hangs anyway.
SAFETY_MARGIN_S: Final = 5.0
# Transient failures in a row that open the circuit.
CIRCUIT_THRESHOLD: Final = 5
# How often the parked-retry loop looks at the store even when nothing here
# changed it: `dead-letter replay` parks rows from another process.
PARKED_POLL_S: Final = 2.0
# How often the parked and dead-letter gauges are recounted from the store.
GAUGE_REFRESH_S: Final = 30.0
PARKED_BATCH_PER_WORKER: Final = 4
# A full queue holds the reader for at most SPILL_AFTER_S: a receiver that
# keeps up frees room well within it. Past that, deliveries wait in an
# overflow that keeps only their raw line (decoded again when they reach the
# queue), without holding the reader, until the overflow is empty again; past
# OVERFLOW_BYTES the oldest are spilled to the store, untried and due now. So
# a receiver slower than the alert stream cannot slow the other integrations,
# and memory stays bounded.
SPILL_AFTER_S: Final = 0.05
OVERFLOW_BYTES: Final = 16 * 1024 * 1024
SPILLED_NOTE: Final = "the queue was full: kept in the store, due now"
ERROR_TEXT_BYTES: Final = 1024


class _Slot(enum.Enum):
    GRANTED = "granted"
    TOO_FAR = "too far"
    STOPPING = "stopping"


class Deliverer:
    """Delivers one enabled integration block's alerts; see the module doc."""

    def __init__(
        self,
        integration: Integration,
        *,
        key: str,
        settings: IntegrationSettings,
        store: StateStore,
        metrics: Metrics,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        rng: random.Random | None = None,
        safety_margin_s: float = SAFETY_MARGIN_S,
        circuit_threshold: int = CIRCUIT_THRESHOLD,
        probe_cap_s: float = PROBE_CAP_S,
        overflow_bytes: int = OVERFLOW_BYTES,
    ) -> None:
        block = integration.block
        self.integration = integration
        self.key = key
        self.settings = settings
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng if rng is not None else random.Random()
        self._name = block.name
        self._secrets = block.secrets
        self._retry = settings.retry if settings.retry is not None else integration.retry_by_default
        self._quick_retries = block.retries
        self._concurrency = settings.concurrency or integration.default_concurrency
        self._attempt_timeout_s = integration.attempt_timeout_s + safety_margin_s
        limits = (
            settings.rate_limits
            if settings.rate_limits is not None
            else integration.default_rate_limits
        )
        self._limiter = RateLimiter(limits, clock=monotonic)
        self._circuit = Circuit(
            circuit_threshold,
            initial_s=settings.initial_backoff_s,
            max_s=settings.max_backoff_s,
            rng=self._rng,
            probe_cap_s=probe_cap_s,
        )
        self._failures = FailureLog(log)

        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=settings.queue_size)
        self._send_slots = asyncio.Semaphore(self._concurrency)
        self._in_flight: set[Job] = set()
        self._no_in_flight = asyncio.Event()
        self._no_in_flight.set()
        self._unsettled = 0
        self._overflow: deque[Delivery] = deque()
        self._overflow_bytes = 0
        self._overflow_limit = overflow_bytes
        self._all_settled = asyncio.Event()
        self._all_settled.set()
        self._parked_changed = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._parked_task: asyncio.Task[None] | None = None
        self._stopped = False
        self._parked_now = 0
        self._last_gauge_refresh = float("-inf")
        self._counts = dict.fromkeys(DELIVERY_OUTCOMES, 0)

        self._outcomes = {
            outcome: metrics.deliveries_total.labels(integration=key, outcome=outcome)
            for outcome in DELIVERY_OUTCOMES
        }
        self._attempts_metric = metrics.delivery_attempts_total.labels(integration=key)
        self._seconds_metric = metrics.delivery_seconds.labels(integration=key)
        self._queue_gauge = metrics.queue_depth.labels(integration=key)
        self._parked_gauge = metrics.parked.labels(integration=key)
        self._dead_letters_gauge = metrics.dead_letters.labels(integration=key)
        self._rate_limited_metric = metrics.rate_limited_total.labels(integration=key)

    # -- public surface ----------------------------------------------------

    async def start(self) -> None:
        """Spawn the workers and the parked-retry loop."""
        if self._workers or self._stopped:
            raise RuntimeError(f"deliverer {self.key} was already started")
        self._refresh_gauges()
        self._workers = [
            asyncio.create_task(self._work(), name=f"deliver {self.key} #{n}")
            for n in range(self._concurrency)
        ]
        self._parked_task = asyncio.create_task(
            self._parked_loop(), name=f"parked retries {self.key}"
        )

    async def submit(self, delivery: Delivery) -> None:
        """Hand a delivery over (see ``SPILL_AFTER_S`` and ``OVERFLOW_BYTES``).

        It goes to the queue when there is room or room is made soon, else to
        the overflow, whose oldest deliveries are spilled to the store past
        its size. After :meth:`stop` it is parked at once, untried, so that
        nothing handed over is lost.
        """
        self._unsettled += 1
        self._all_settled.clear()
        if self._stop_requested.is_set():
            self._park(Job(delivery), next_attempt_at=self._clock(), note="shutting down")
            return
        if not self._overflow:
            if not self._queue.full():
                self._queue.put_nowait(delivery)  # the common case, without a timer
                self._queue_gauge.set(self._waiting())
                return
            try:
                async with asyncio.timeout(SPILL_AFTER_S):
                    await self._queue.put(delivery)
            except TimeoutError:
                pass
            except BaseException:
                self._unsettled -= 1
                if self._unsettled == 0:
                    self._all_settled.set()
                raise
            else:
                if self._stop_requested.is_set():
                    # stop() ran while this waited for room: no worker will take it.
                    self._park_queued()
                self._queue_gauge.set(self._waiting())
                return
        self._to_overflow(delivery)
        self._queue_gauge.set(self._waiting())

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

    async def join(self) -> None:
        """Return when every submitted delivery is delivered, parked or dead-lettered."""
        await self._all_settled.wait()

    async def stop(self, grace_s: float) -> None:
        """Take no more work; give in-flight deliveries ``grace_s`` to finish,
        then park what is left, queued or in flight, and cancel the tasks."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_requested.set()
        self._parked_changed.set()
        self._park_queued()
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._no_in_flight.wait())}
        if self._parked_task is not None:
            waiters.add(self._parked_task)
        await asyncio.wait(waiters, timeout=grace_s)
        tasks = [*self._workers, *([self._parked_task] if self._parked_task else [])]
        for task in [*tasks, *waiters]:
            task.cancel()
        await asyncio.gather(*tasks, *waiters, return_exceptions=True)
        for job in list(self._in_flight):
            if job.delivery.settled:
                continue  # stored as a dead letter; only its give-up step was cut short
            self._park(job, next_attempt_at=self._clock(), note="interrupted by shutdown")
        self._in_flight.clear()
        self._park_queued()
        self._store.flush()

    def stats(self) -> dict[str, int]:
        """Counts for the health report: now (``queued``, ``in_flight``,
        ``parked``, ``circuit_open``) and since start (``<outcome>_total``)."""
        return {
            "queued": self._waiting(),
            "in_flight": len(self._in_flight),
            "parked": self._parked_now,
            "circuit_open": int(self._circuit.is_open),
            **{f"{outcome}_total": count for outcome, count in self._counts.items()},
        }

    # -- live deliveries ---------------------------------------------------

    async def _work(self) -> None:
        while not self._stop_requested.is_set():
            delivery = await self._queue.get()
            self._refill()
            self._queue_gauge.set(self._waiting())
            job = Job(delivery)
            self._in_flight.add(job)
            self._no_in_flight.clear()
            try:
                await self._deliver(job)
            except asyncio.CancelledError:
                raise  # stop() parks what is still in flight
            except Exception as exc:
                self._abandon(job, exc)
            self._in_flight.discard(job)
            if not self._in_flight:
                self._no_in_flight.set()

    async def _deliver(self, job: Job) -> None:
        while True:
            if self._circuit.is_open:
                self._park(job, next_attempt_at=self._clock(), note="the receiver is failing")
                return
            slot = await self._take_slot(job.delivery.alert, horizon_s=MAX_IN_MEMORY_WAIT_S)
            if slot is _Slot.TOO_FAR:
                wait_s = self._limiter.delay_s()
                self._park(
                    job,
                    next_attempt_at=self._clock() + wait_s,
                    note=f"waiting {wait_s:.0f} s for the rate limit",
                )
                return
            if slot is _Slot.STOPPING:
                self._park(job, next_attempt_at=self._clock(), note="shutting down")
                return
            job.attempts += 1
            error = await self._attempt(job.delivery.alert, job.attempts)
            if error is None:
                self._delivered()
                self._settle(job.delivery)
                return
            if not await self._retry_in_memory(job, error):
                return

    async def _retry_in_memory(self, job: Job, error: DeliveryError) -> bool:
        """Handle a live failure: True to try again now, False when it was
        parked or dead-lettered."""
        now = self._clock()
        if job.first_failed_at is None:
            job.first_failed_at = now
        job.last_error = error
        text = self._text(error)
        if isinstance(error, Permanent):
            self._receiver_answered()
        if isinstance(error, Permanent) or not self._retry:
            self._store_dead_letter(
                job.delivery.raw,
                attempts=job.attempts,
                first_failed_at=job.first_failed_at,
                error=error,
            )
            # Settled as soon as it is stored: the give-up step is best effort.
            self._settle(job.delivery)
            await self._call_on_give_up(job.delivery.alert, error)
            return False
        if isinstance(error, RateLimited) and error.retry_after_s is not None:
            # The receiver is alive and said when to come back: wait it out
            # without using up a retry, a few times, then park.
            backoff = backoff_s(
                job.rate_limit_waits + 1,
                initial_s=self.settings.initial_backoff_s,
                max_s=self._quick_cap_s(),
                rng=self._rng,
            )
            wait_s = self._pause_for_rate_limit(error, backoff)
            if wait_s <= MAX_IN_MEMORY_WAIT_S and job.rate_limit_waits < MAX_RATE_LIMIT_WAITS:
                job.rate_limit_waits += 1
                self._count("retried")
                self._failures.failed(
                    "rate limit",
                    text,
                    "Integration '%s': receiver asked to slow down; waiting %.1f s: %s",
                    self.key,
                    wait_s,
                    text,
                )
                return True  # the next slot waits out the pause
            self._park(job, next_attempt_at=now + wait_s)
            return False
        self._record_transient_failure(now)
        if job.quick_retries < self._quick_retries and not self._circuit.is_open:
            job.quick_retries += 1
            wait_s = backoff_s(
                job.quick_retries,
                initial_s=self.settings.initial_backoff_s,
                max_s=self._quick_cap_s(),
                rng=self._rng,
            )
            if isinstance(error, RateLimited):
                # "Slow down" without saying how long (VirusTotal's 204, a bare
                # 429 or 503): the whole integration backs off, not only this one.
                self._pause_for_rate_limit(error, wait_s)
            self._count("retried")
            self._failures.failed(
                "retry",
                text,
                "Integration '%s': delivery failed, retrying: %s",
                self.key,
                text,
            )
            if await self._sleep_unless_stopping(wait_s):
                return True
        self._park(job, next_attempt_at=now + self._parked_backoff_s(job.attempts))
        return False

    def _spill(self, delivery: Delivery) -> None:
        # Not a failure: logged once per overflow episode, not per alert.
        self._park(Job(delivery), next_attempt_at=self._clock(), note=SPILLED_NOTE, quiet=True)

    def _take_overflow(self) -> Delivery:
        delivery = self._overflow.popleft()
        self._overflow_bytes -= len(delivery.raw)
        return delivery

    def _refill(self) -> None:
        """Move overflow deliveries into the room the workers made."""
        while self._overflow and not self._queue.full():
            delivery = self._take_overflow()
            alert = _decode(delivery.raw)
            if alert is None:  # it decoded when read: only a bug gets here
                self._spill(delivery)
                continue
            delivery.alert = alert
            self._queue.put_nowait(delivery)
            if not self._overflow:
                log.info("Integration '%s' has caught up with the alerts.", self.key)

    def _waiting(self) -> int:
        return self._queue.qsize() + len(self._overflow)

    def _park_queued(self) -> None:
        while not self._queue.empty():
            delivery = self._queue.get_nowait()
            self._park(Job(delivery), next_attempt_at=self._clock(), note="shutting down")
        while self._overflow:
            self._park(
                Job(self._take_overflow()), next_attempt_at=self._clock(), note="shutting down"
            )
        self._queue_gauge.set(0)

    # -- parked deliveries -------------------------------------------------

    async def _parked_loop(self) -> None:
        while not self._stop_requested.is_set():
            try:
                now = self._clock()
                due_at = self._store.next_parked_due_at(self.key)
                if due_at is not None and self._circuit.is_open:
                    due_at = max(due_at, self._circuit.next_probe_at)
                if due_at is None or due_at > now:
                    wait_s = PARKED_POLL_S if due_at is None else min(due_at - now, PARKED_POLL_S)
                    await self._wait_for_parked_change(wait_s)
                    self._maybe_refresh_gauges()
                    continue
                await self._retry_due(now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = self._scrubbed(f"{type(exc).__name__}: {exc}")
                self._failures.gave_up(
                    "parked loop",
                    text,
                    "Integration '%s': cannot retry parked deliveries: %s",
                    self.key,
                    text,
                )
                await self._wait_for_parked_change(PARKED_POLL_S)

    async def _wait_for_parked_change(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._parked_changed.wait(), timeout=max(0.0, timeout_s))
        self._parked_changed.clear()

    async def _retry_due(self, now: float) -> None:
        probing = self._circuit.is_open
        batch = self._store.due_parked(self.key, now, self._concurrency * PARKED_BATCH_PER_WORKER)
        to_try: list[ParkedDelivery] = []
        for parked in batch:
            if probing and now - parked.first_failed_at >= self.settings.max_retry_age_s:
                # The receiver is down: no last attempt for each expired one.
                await self._expire_untried(parked)
            else:
                to_try.append(parked)
        if probing:
            to_try = to_try[:1]
        results = await asyncio.gather(
            *(self._retry_parked(parked, probe=probing) for parked in to_try),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _retry_parked(self, parked: ParkedDelivery, *, probe: bool) -> None:
        if self._stop_requested.is_set() or (self._circuit.is_open and not probe):
            return  # left due in the store: tried after restart or by the next probe
        alert = _decode(parked.alert)
        if alert is None:
            await self._dead_letter_parked(
                parked, {}, Permanent("the parked alert is not a JSON object"), call_back=False
            )
            return
        if await self._take_slot(alert, horizon_s=float("inf")) is not _Slot.GRANTED:
            return
        attempts = parked.attempts + 1
        error = await self._attempt(alert, attempts)
        now = self._clock()
        if error is None:
            self._store.remove_parked(parked.id)
            self._parked_count_changed(-1)
            self._delivered()
            return
        if isinstance(error, Permanent):
            self._receiver_answered()
        too_old = now - parked.first_failed_at >= self.settings.max_retry_age_s
        if isinstance(error, Permanent) or not self._retry or too_old:
            await self._dead_letter_parked(parked, alert, error, attempts=attempts, call_back=True)
            return
        wait_s = self._parked_backoff_s(attempts)
        if isinstance(error, RateLimited):
            wait_s = self._pause_for_rate_limit(error, wait_s)
        if not isinstance(error, RateLimited) or error.retry_after_s is None:
            self._record_transient_failure(now, probe=probe)
        text = self._text(error)
        self._store.reschedule_parked(
            parked.id, attempts=attempts, next_attempt_at=now + wait_s, last_error=text
        )
        self._failures.failed(
            "parked retry",
            text,
            "Integration '%s': parked delivery failed again, next attempt in %.1f s: %s",
            self.key,
            wait_s,
            text,
        )

    async def _expire_untried(self, parked: ParkedDelivery) -> None:
        alert = _decode(parked.alert)
        error = Transient(f"gave up after max_retry_age; last error: {parked.last_error}")
        await self._dead_letter_parked(
            parked, alert or {}, error, attempts=parked.attempts, call_back=alert is not None
        )

    async def _dead_letter_parked(
        self,
        parked: ParkedDelivery,
        alert: Alert,
        error: DeliveryError,
        *,
        attempts: int | None = None,
        call_back: bool,
    ) -> None:
        self._store_dead_letter(
            parked.alert,
            attempts=parked.attempts if attempts is None else attempts,
            first_failed_at=parked.first_failed_at,
            error=error,
        )
        self._store.remove_parked(parked.id)
        self._parked_count_changed(-1)
        if call_back:
            await self._call_on_give_up(alert, error)

    # -- one attempt -------------------------------------------------------

    async def _take_slot(self, alert: Alert, *, horizon_s: float) -> _Slot:
        """A rate-limit slot, waiting at most ``horizon_s`` for it; none is
        needed when the integration will not call its service (a cached lookup)."""
        if not self.integration.needs_request(alert):
            return _Slot.GRANTED
        waited = False
        while not self._limiter.try_acquire():
            delay_s = self._limiter.delay_s()
            if delay_s > horizon_s:
                return _Slot.TOO_FAR
            if not waited:
                waited = True
                self._rate_limited_metric.inc()
            if not await self._sleep_unless_stopping(delay_s):
                return _Slot.STOPPING
        return _Slot.GRANTED

    async def _attempt(self, alert: Alert, attempt: int) -> DeliveryError | None:
        """Send once; the failure as a DeliveryError, or None when delivered."""
        self._attempts_metric.inc()
        started = self._monotonic()
        deadline = asyncio.timeout(self._attempt_timeout_s)
        error: DeliveryError | None = None
        async with self._send_slots:
            try:
                async with deadline:
                    await self.integration.send(alert)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:
                if isinstance(exc, TimeoutError) and deadline.expired():
                    error = Timeout(f"no answer within {self._attempt_timeout_s:g} s")
                else:
                    error = self._unexpected(exc, alert, attempt)
        self._seconds_metric.observe(max(0.0, self._monotonic() - started))
        return error

    def _unexpected(self, exc: Exception, alert: Alert, attempt: int) -> DeliveryError:
        """An exception an integration should not raise: a bug, logged with
        enough context to find it, then handled as a transient failure."""
        text = self._scrubbed(f"{type(exc).__name__}: {exc}")
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        self._failures.gave_up(
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

    # -- outcomes ----------------------------------------------------------

    def _delivered(self) -> None:
        self._count("delivered")
        self._receiver_answered()
        if self._failures.recovered():
            log.info("Integration '%s': delivering again.", self.key)

    def _receiver_answered(self) -> None:
        """A success, or a refusal of this one alert (a 4xx): either way the
        receiver is up, so the circuit closes."""
        if self._circuit.record_success():
            # What failed during the outage waits on its own backoff, up to
            # max_backoff: the receiver is back, so all of it is due now.
            brought = self._store.bring_forward_parked(self.key, self._clock())
            log.info(
                "Integration '%s': the receiver answers again; circuit closed,"
                " %d parked deliveries due now.",
                self.key,
                brought,
            )
            self._parked_changed.set()

    def _record_transient_failure(self, now: float, *, probe: bool = False) -> None:
        if self._circuit.record_failure(now, probe=probe):
            log.warning(
                "Integration '%s': %d failures in a row; new alerts are parked untried"
                " while one parked delivery at a time probes the receiver.",
                self.key,
                self._circuit.consecutive_failures,
            )

    def _pause_for_rate_limit(self, error: RateLimited, backoff: float) -> float:
        wait_s = retry_wait_s(backoff, error.retry_after_s)
        self._limiter.pause_for(wait_s)
        self._rate_limited_metric.inc()
        return wait_s

    def _park(
        self, job: Job, *, next_attempt_at: float, note: str = "", quiet: bool = False
    ) -> None:
        now = self._clock()
        if job.last_error is not None:
            text = self._text(job.last_error)
        else:
            text = f"not attempted: {note}" if job.attempts == 0 else note
        self._store.park(
            self.key,
            job.delivery.raw,
            attempts=job.attempts,
            first_failed_at=job.first_failed_at if job.first_failed_at is not None else now,
            next_attempt_at=next_attempt_at,
            last_error=text,
        )
        self._parked_count_changed(+1)
        self._count("parked")
        if not quiet:
            self._failures.failed(
                "park",
                text,
                "Integration '%s': delivery parked for a later retry: %s",
                self.key,
                text,
            )
        self._parked_changed.set()
        self._settle(job.delivery)

    def _store_dead_letter(
        self, raw: bytes, *, attempts: int, first_failed_at: float, error: DeliveryError
    ) -> None:
        text = self._text(error)
        self._store.add_dead_letter(
            self.key,
            self._name,
            raw,
            attempts=attempts,
            first_failed_at=first_failed_at,
            last_error=text,
            status=error.status,
        )
        self._dead_letters_gauge.inc()
        self._count("dead_lettered")
        self._failures.gave_up(
            "dead letter",
            text,
            "Integration '%s': delivery given up after %d attempt(s), kept as a dead letter: %s",
            self.key,
            attempts,
            text,
        )

    async def _call_on_give_up(self, alert: Alert, error: DeliveryError) -> None:
        try:
            async with asyncio.timeout(self._attempt_timeout_s):
                await self.integration.on_give_up(alert, error)
        except Exception as exc:
            text = self._scrubbed(f"{type(exc).__name__}: {exc}")
            self._failures.gave_up(
                "on_give_up",
                text,
                "Integration '%s': its give-up step failed: %s",
                self.key,
                text,
            )

    def _settle(self, delivery: Delivery) -> None:
        if delivery.settled:
            return
        delivery.settled = True
        self._unsettled -= 1
        if self._unsettled == 0:
            self._all_settled.set()
        if delivery.on_settled is not None:
            try:
                delivery.on_settled()
            except Exception:
                log.exception("Integration '%s': settling a delivery failed", self.key)

    def _abandon(self, job: Job, exc: Exception) -> None:
        """Neither delivered nor stored (the store failed): the alert stays
        behind the checkpoint, so the next start reads and delivers it again."""
        text = self._scrubbed(f"{type(exc).__name__}: {exc}")
        self._count("failed")
        self._failures.gave_up(
            "abandoned",
            text,
            "Integration '%s': could not deliver or store alert %s; it will be read again"
            " after a restart: %s",
            self.key,
            job.alert_id,
            text,
        )
        if not job.delivery.settled:
            job.delivery.settled = True
            self._unsettled -= 1
            if self._unsettled == 0:
                self._all_settled.set()

    # -- small helpers -----------------------------------------------------

    def _count(self, outcome: str) -> None:
        self._counts[outcome] += 1
        self._outcomes[outcome].inc()

    def _parked_count_changed(self, delta: int) -> None:
        self._parked_now = max(0, self._parked_now + delta)
        self._parked_gauge.set(self._parked_now)
        self._store.maybe_commit()

    def _refresh_gauges(self) -> None:
        self._parked_now = self._store.count_parked(self.key)
        self._parked_gauge.set(self._parked_now)
        self._dead_letters_gauge.set(self._store.count_dead_letters(self.key))
        self._last_gauge_refresh = self._monotonic()

    def _maybe_refresh_gauges(self) -> None:
        # Another process (the dead-letter commands) may change both tables.
        if self._monotonic() - self._last_gauge_refresh >= GAUGE_REFRESH_S:
            self._refresh_gauges()

    def _quick_cap_s(self) -> float:
        return min(self.settings.max_backoff_s, QUICK_BACKOFF_CAP_S)

    def _parked_backoff_s(self, attempts: int) -> float:
        return backoff_s(
            max(1, attempts),
            initial_s=self.settings.initial_backoff_s,
            max_s=self.settings.max_backoff_s,
            rng=self._rng,
        )

    async def _sleep_unless_stopping(self, seconds: float) -> bool:
        """Sleep; False (at once) when a stop is requested meanwhile."""
        if self._stop_requested.is_set():
            return False
        try:
            await asyncio.wait_for(self._stop_requested.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    def _scrubbed(self, text: str) -> str:
        return redact_urls_in(scrub(text, self._secrets))

    def _text(self, error: DeliveryError) -> str:
        """The error as stored and logged: secret-free, at most 1 KiB."""
        text = self._scrubbed(str(error)) or type(error).__name__
        encoded = text.encode()
        if len(encoded) > ERROR_TEXT_BYTES:
            text = encoded[:ERROR_TEXT_BYTES].decode(errors="ignore")
        return text


def _decode(raw: bytes) -> Alert | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
