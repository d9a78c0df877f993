"""One integration's delivery, put together from its stages.

Data flows one way, each stage in a module of its own:

```
submit ─▶ intake ─▶ live workers ─▶ sender ─▶ integration.send
          (queue,    (quick retries,  (rate limit,
           overflow,  park, dead      send slots,
           spill)     letter)         safety time-out)
                        │                ▲
                        ▼                │
                     outcomes ─▶ store ─▶ parked retries (loop; probes
                     (delivered,          while the circuit is open)
                      parked, dead
                      letter; circuit)
```

- :mod:`~wazuh_integrator.delivery.intake`: the bounded queue, the overflow
  of raw lines, the spill to the store;
- :mod:`~wazuh_integrator.delivery.live`: the workers and what they do with
  a failure;
- :mod:`~wazuh_integrator.delivery.sender`: one attempt under the rate
  limits and the ``concurrency`` bound;
- :mod:`~wazuh_integrator.delivery.parked`: the parked-retry loop;
- :mod:`~wazuh_integrator.delivery.circuit`: when to stop trying every alert;
- :mod:`~wazuh_integrator.delivery.outcomes`: recording each end, counts,
  logs, and ``on_settled``.

:class:`Deliverer` wires them for one enabled block and owns their tasks:
start, stop (with a grace period) and the counts ``/health`` shows.
See ``docs/delivery.md`` for what an administrator sees.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Final

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.delivery.circuit import PROBE_CAP_S, Circuit
from wazuh_integrator.delivery.intake import OVERFLOW_BYTES, Intake, IntakeGroup
from wazuh_integrator.delivery.live import LiveDeliveries
from wazuh_integrator.delivery.model import Delivery
from wazuh_integrator.delivery.outcomes import Outcomes
from wazuh_integrator.delivery.parked import ParkedRetries
from wazuh_integrator.delivery.parked_rows import ParkedRows, StoreParkedRows
from wazuh_integrator.delivery.schedule import RetrySchedule
from wazuh_integrator.delivery.sender import Sender
from wazuh_integrator.integrations.base import Integration
from wazuh_integrator.metrics import Metrics
from wazuh_integrator.ratelimit import Clock, RateLimiter, SharedLimitsFactory, SharedPauseFactory
from wazuh_integrator.store import StateStore

__all__ = ["CIRCUIT_THRESHOLD", "SAFETY_MARGIN_S", "Deliverer"]

# Added to the block's <timeout> for the whole attempt: integrations enforce
# their own time-out, this only catches one that hangs anyway.
SAFETY_MARGIN_S: Final = 5.0
# Transient failures in a row that open the circuit.
CIRCUIT_THRESHOLD: Final = 5


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
        retry_parked: bool = True,
        shared_limits: SharedLimitsFactory | None = None,
        parked_rows: ParkedRows | None = None,
        shared_pause: SharedPauseFactory | None = None,
        intake_group: IntakeGroup | None = None,
    ) -> None:
        block = integration.block
        self.integration = integration
        self.key = key
        self.settings = settings
        self._store = store
        rng = rng if rng is not None else random.Random()
        retry = settings.retry if settings.retry is not None else integration.retry_by_default
        self._concurrency = settings.concurrency or integration.default_concurrency
        attempt_timeout_s = integration.attempt_timeout_s + safety_margin_s
        limits = (
            settings.rate_limits
            if settings.rate_limits is not None
            else integration.default_rate_limits
        )
        self._stopping = asyncio.Event()
        rows = parked_rows if parked_rows is not None else StoreParkedRows(store)
        self._rows = rows
        self._circuit = Circuit(
            circuit_threshold,
            initial_s=settings.initial_backoff_s,
            max_s=settings.max_backoff_s,
            rng=rng,
            probe_cap_s=probe_cap_s,
        )
        self._outcomes = Outcomes(
            key=key,
            name=block.name,
            secrets=block.secrets,
            store=store,
            parked_rows=rows,
            metrics=metrics,
            circuit=self._circuit,
            give_up=integration.on_give_up,
            give_up_timeout_s=attempt_timeout_s,
            clock=clock,
            monotonic=monotonic,
        )
        self._intake = Intake(
            key=key,
            queue_size=settings.queue_size,
            overflow_bytes=overflow_bytes,
            outcomes=self._outcomes,
            metrics=metrics,
            stopping=self._stopping,
            clock=clock,
            group=intake_group,
        )
        shared = shared_limits(key, limits) if shared_limits is not None and limits else None
        sender = Sender(
            integration,
            key=key,
            limiter=RateLimiter(() if shared else limits, clock=monotonic),
            shared=shared,
            pause=shared_pause(key) if shared_pause is not None else None,
            concurrency=self._concurrency,
            attempt_timeout_s=attempt_timeout_s,
            outcomes=self._outcomes,
            metrics=metrics,
            stopping=self._stopping,
            monotonic=monotonic,
        )
        schedule = RetrySchedule(settings, rng)
        self._live = LiveDeliveries(
            key=key,
            intake=self._intake,
            sender=sender,
            outcomes=self._outcomes,
            circuit=self._circuit,
            schedule=schedule,
            quick_retries=block.retries,
            retry=retry,
            stopping=self._stopping,
            clock=clock,
        )
        self._parked = ParkedRetries(
            key=key,
            rows=rows,
            sender=sender,
            outcomes=self._outcomes,
            circuit=self._circuit,
            schedule=schedule,
            settings=settings,
            retry=retry,
            concurrency=self._concurrency,
            stopping=self._stopping,
            clock=clock,
        )
        # False for a ``replay`` beside the daemon: what it parks is left for
        # the daemon's own deliverer, which alone retries the parked table.
        self._retries_parked = retry_parked
        self._sender = sender
        self._workers: list[asyncio.Task[None]] = []
        self._parked_task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        """Spawn the workers and the parked-retry loop."""
        if self._workers or self._stopped:
            raise RuntimeError(f"deliverer {self.key} was already started")
        await self._outcomes.refresh_gauges()
        self._workers = [
            asyncio.create_task(self._live.work(), name=f"deliver {self.key} #{n}")
            for n in range(self._concurrency)
        ]
        if self._retries_parked:
            self._parked_task = asyncio.create_task(
                self._parked.loop(), name=f"parked retries {self.key}"
            )

    def offer(self, delivery: Delivery) -> bool:
        """Hand a delivery over if that needs no waiting; False: nothing was
        done, :meth:`submit` it (see :meth:`Intake.offer`)."""
        return self._intake.offer(delivery)

    async def submit(self, delivery: Delivery) -> None:
        """Hand a delivery over (see :mod:`~wazuh_integrator.delivery.intake`).
        After :meth:`stop` it is parked at once, untried: nothing handed over is lost."""
        await self._intake.submit(delivery)

    async def join(self) -> None:
        """Return when every submitted delivery is delivered, parked or dead-lettered."""
        await self._outcomes.all_settled.wait()

    async def stop(self, grace_s: float) -> None:
        """Take no more work; give in-flight deliveries ``grace_s`` to finish,
        then park what is left, queued or in flight, and cancel the tasks."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._intake.leave_group()
        self._outcomes.parked_changed.set()
        self._intake.park_all_waiting()
        waiters: set[asyncio.Future[Any]] = {
            asyncio.ensure_future(self._live.none_in_flight.wait())
        }
        if self._parked_task is not None:
            waiters.add(self._parked_task)
        await asyncio.wait(waiters, timeout=grace_s)
        tasks = [*self._workers, *([self._parked_task] if self._parked_task else [])]
        for task in [*tasks, *waiters]:
            task.cancel()
        await asyncio.gather(*tasks, *waiters, return_exceptions=True)
        self._live.park_in_flight()
        self._intake.park_all_waiting()
        self._store.flush()

    def stats(self) -> dict[str, Any]:
        """Counts for the health report: now (``queued``, ``in_flight``,
        ``parked``, ``circuit_open``), since start (``<outcome>_total``,
        ``attempts_total``, ``rate_limited_total``) and the last failure
        (``last_error``, secret-free, and ``last_error_at``, Unix time)."""
        last_error = self._outcomes.last_error
        return {
            "queued": self._intake.waiting(),
            "in_flight": len(self._live.in_flight),
            "parked": self._outcomes.parked_now,
            "circuit_open": int(self._circuit.is_open),
            **{f"{outcome}_total": count for outcome, count in self._outcomes.counts.items()},
            "attempts_total": self._sender.attempts_total(),
            "rate_limited_total": self._sender.rate_limited_total(),
            "last_error": last_error[1] if last_error else None,
            "last_error_at": last_error[0] if last_error else None,
        }
