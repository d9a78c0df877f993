"""Where a delivery ends: delivered, parked, dead-lettered, or abandoned.

Every other part of the delivery layer decides; this one records. It writes
the state store, counts each outcome in the metrics and in the totals that
``/health`` shows, logs a repeating failure once, keeps the circuit told of
what the receiver answered, and calls ``on_settled`` exactly once per
delivery, which is what lets the checkpoint move past its alert.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from wazuh_integrator import compat
from wazuh_integrator.delivery.circuit import Circuit
from wazuh_integrator.delivery.failure_log import FailureLog
from wazuh_integrator.delivery.model import Delivery, Job
from wazuh_integrator.delivery.parked_rows import ParkedRows
from wazuh_integrator.errors import DeliveryError
from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.metrics import DELIVERY_OUTCOMES, Metrics
from wazuh_integrator.ratelimit import Clock
from wazuh_integrator.secret import redact_urls_in, scrub
from wazuh_integrator.store import ParkState, StateStore

__all__ = ["ERROR_TEXT_BYTES", "GAUGE_REFRESH_S", "Outcomes"]

log = logging.getLogger(__name__)

# How often the parked and dead-letter gauges are recounted from where the
# rows are: another process (the dead-letter commands, the other cluster
# workers) changes them too.
GAUGE_REFRESH_S: Final = 30.0
ERROR_TEXT_BYTES: Final = 1024

GiveUp = Callable[[Alert, DeliveryError], Awaitable[None]]


class Outcomes:
    """Records the outcomes of one integration block's deliveries."""

    def __init__(
        self,
        *,
        key: str,
        name: str,
        secrets: list[str],
        store: StateStore,
        parked_rows: ParkedRows,
        metrics: Metrics,
        circuit: Circuit,
        give_up: GiveUp,
        give_up_timeout_s: float,
        clock: Clock,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.key = key
        self._name = name
        self._secrets = secrets
        self._store = store
        self.parked_rows = parked_rows
        self.circuit = circuit
        self._give_up = give_up
        self._give_up_timeout_s = give_up_timeout_s
        self._clock = clock
        self._monotonic = monotonic
        self.failures = FailureLog(log)
        # Set when the parked table gained due rows or the circuit closed: the
        # parked-retry loop looks again at once instead of at its next poll.
        self.parked_changed = asyncio.Event()
        # Set when the circuit closed: the parked-retry loop brings the rows
        # that failed during the outage forward before it looks again.
        self.receiver_back = False
        self.all_settled = asyncio.Event()
        self.all_settled.set()
        self._unsettled = 0
        self.parked_now = 0
        self._last_gauge_refresh = float("-inf")
        self.counts = dict.fromkeys(DELIVERY_OUTCOMES, 0)
        # (when, text) of the latest failure, for ``status``.
        self.last_error: tuple[float, str] | None = None
        self._outcomes = {
            outcome: metrics.deliveries_total.labels(integration=key, outcome=outcome)
            for outcome in DELIVERY_OUTCOMES
        }
        self._parked_gauge = metrics.parked.labels(integration=key)
        self._dead_letters_gauge = metrics.dead_letters.labels(integration=key)

    # -- the life of a delivery ---------------------------------------------

    def accepted(self) -> None:
        """A delivery was handed over: it is unsettled until recorded here."""
        self._unsettled += 1
        self.all_settled.clear()

    def dropped(self) -> None:
        """A delivery handed over was not taken after all (its submit was cancelled)."""
        self._unsettled -= 1
        if self._unsettled == 0:
            self.all_settled.set()

    def settle(self, delivery: Delivery) -> None:
        if delivery.settled:
            return
        delivery.settled = True
        self.dropped()
        if delivery.on_settled is not None:
            try:
                delivery.on_settled()
            except Exception:
                log.exception("Integration '%s': settling a delivery failed", self.key)

    def delivered(self, delivery: Delivery | None = None) -> None:
        self.count("delivered")
        self.receiver_answered()
        if self.failures.recovered():
            log.info("Integration '%s': delivering again.", self.key)
        if delivery is not None:
            self.settle(delivery)

    def park(
        self, job: Job, *, next_attempt_at: float, note: str = "", quiet: bool = False
    ) -> None:
        now = self._clock()
        if job.last_error is not None:
            text = self.text(job.last_error)
        else:
            text = f"not attempted: {note}" if job.attempts == 0 else note
        self.parked_rows.park(
            self.key,
            job.delivery.raw,
            attempts=job.attempts,
            first_failed_at=job.first_failed_at if job.first_failed_at is not None else now,
            next_attempt_at=next_attempt_at,
            last_error=text,
        )
        self._parked((job.delivery,), text, quiet)

    def park_untried(
        self, deliveries: Sequence[Delivery], *, note: str, quiet: bool = False
    ) -> None:
        """Park deliveries never attempted, due now, in one write (a spill, a
        stop). If the store cannot take them they are abandoned: each stays
        behind the checkpoint and is read again after a restart."""
        if not deliveries:
            return
        now = self._clock()
        text = f"not attempted: {note}"
        try:
            self.parked_rows.park_many(
                self.key, [delivery.raw for delivery in deliveries], ParkState(0, now, now, text)
            )
        except Exception as exc:
            for delivery in deliveries:
                self.abandon(Job(delivery), exc)
            return
        self._parked(deliveries, text, quiet)

    def _parked(self, deliveries: Sequence[Delivery], text: str, quiet: bool) -> None:
        """Record deliveries the store now holds, and let them go."""
        count = len(deliveries)
        self.parked_count_changed(+count)
        self.count("parked", count)
        if not quiet:
            self.failures.failed(
                "park",
                text,
                "Integration '%s': %s parked for a later retry: %s",
                self.key,
                "delivery" if count == 1 else f"{count} deliveries",
                text,
            )
        self.parked_changed.set()
        for delivery in deliveries:
            self.settle(delivery)

    def dead_letter(
        self, raw: bytes, *, attempts: int, first_failed_at: float, error: DeliveryError
    ) -> None:
        text = self.text(error)
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
        self.count("dead_lettered")
        self.failures.gave_up(
            "dead letter",
            text,
            "Integration '%s': delivery given up after %d attempt(s), kept as a dead letter: %s",
            self.key,
            attempts,
            text,
        )

    async def call_on_give_up(self, alert: Alert, error: DeliveryError) -> None:
        """The integration's give-up step (best effort: its failure is logged)."""
        try:
            async with compat.timeout(self._give_up_timeout_s):
                await self._give_up(alert, error)
        except Exception as exc:
            text = self.scrubbed(f"{type(exc).__name__}: {exc}")
            self.failures.gave_up(
                "on_give_up",
                text,
                "Integration '%s': its give-up step failed: %s",
                self.key,
                text,
            )

    def abandon(self, job: Job, exc: Exception) -> None:
        """Neither delivered nor stored (the store failed): the alert stays
        behind the checkpoint, so the next start reads and delivers it again."""
        text = self.scrubbed(f"{type(exc).__name__}: {exc}")
        self.count("failed")
        self.failures.gave_up(
            "abandoned",
            text,
            "Integration '%s': could not deliver or store alert %s; it will be read again"
            " after a restart: %s",
            self.key,
            job.alert_id,
            text,
        )
        if not job.delivery.settled:
            job.delivery.settled = True  # but on_settled is not called: not safe yet
            self.dropped()

    # -- what the receiver said: the circuit ----------------------------------

    def receiver_answered(self) -> None:
        """A success, or a refusal of this one alert (a 4xx): either way the
        receiver is up, so the circuit closes."""
        if self.circuit.record_success():
            # What failed during the outage waits on its own backoff, up to
            # max_backoff: the receiver is back, so all of it is due now.
            self.receiver_back = True
            self.parked_changed.set()

    async def bring_parked_forward(self) -> None:
        """After the circuit closed: every parked row that failed is due now."""
        if not self.receiver_back:
            return
        self.receiver_back = False
        try:
            brought = await self.parked_rows.bring_forward(self.key, self._clock())
        except BaseException:
            self.receiver_back = True  # tried again on the loop's next turn
            raise
        log.info(
            "Integration '%s': the receiver answers again; circuit closed,"
            " %d parked deliveries due now.",
            self.key,
            brought,
        )

    def transient_failure(self, now: float, *, probe: bool = False) -> None:
        if self.circuit.record_failure(now, probe=probe):
            log.warning(
                "Integration '%s': %d failures in a row; new alerts are parked untried"
                " while one parked delivery at a time probes the receiver.",
                self.key,
                self.circuit.consecutive_failures,
            )

    # -- counts and gauges ---------------------------------------------------

    def count(self, outcome: str, times: int = 1) -> None:
        self.counts[outcome] += times
        self._outcomes[outcome].inc(times)

    def parked_count_changed(self, delta: int) -> None:
        self.parked_now = max(0, self.parked_now + delta)
        self._parked_gauge.set(self.parked_now)
        self._store.maybe_commit()

    async def refresh_gauges(self) -> None:
        try:
            self.parked_now = await self.parked_rows.count(self.key)
        except Exception as exc:  # Redis away: the gauge keeps its figure until the next count
            text = self.scrubbed(f"{type(exc).__name__}: {exc}")
            self.failures.failed(
                "count parked",
                text,
                "Integration '%s': cannot count parked deliveries: %s",
                self.key,
                text,
            )
        self._parked_gauge.set(self.parked_now)
        self._dead_letters_gauge.set(self._store.count_dead_letters(self.key))
        self._last_gauge_refresh = self._monotonic()

    async def maybe_refresh_gauges(self) -> None:
        if self._monotonic() - self._last_gauge_refresh >= GAUGE_REFRESH_S:
            await self.refresh_gauges()

    # -- error texts -----------------------------------------------------------

    def scrubbed(self, text: str) -> str:
        return redact_urls_in(scrub(text, self._secrets))

    def text(self, error: DeliveryError) -> str:
        """The error as stored and logged: secret-free, at most 1 KiB."""
        text = self.scrubbed(str(error)) or type(error).__name__
        encoded = text.encode()
        if len(encoded) > ERROR_TEXT_BYTES:
            text = encoded[:ERROR_TEXT_BYTES].decode(errors="ignore")
        # Every failure is written through here: `status` shows the latest.
        self.last_error = (self._clock(), text)
        return text
