"""The floods stage of one block, between route and deliver: narrow, throttle,
hold for a digest. The daemon and ``test`` run the same :meth:`Shaper.shape`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import orjson

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.floods.digest import DigestCollector, DigestStore, ReadyDigest
from wazuh_integrator.floods.marks import Mark
from wazuh_integrator.floods.narrowing import Narrowing
from wazuh_integrator.floods.throttle import Throttle, ThrottleStore
from wazuh_integrator.integrations.flood_marks import SUPPRESSED

__all__ = ["DigestSubmit", "FloodCounters", "FloodStore", "Shaped", "Shaper"]

log = logging.getLogger(__name__)


class FloodStore(ThrottleStore, DigestStore, Protocol):
    """What the stage keeps in the state store."""


class _Count(Protocol):
    def inc(self, amount: float = 1.0) -> None: ...


@dataclass(frozen=True)
class FloodCounters:
    """One block's series of the floods metrics."""

    excluded: _Count
    suppressed: _Count
    digested: _Count
    digests: _Count


class Shaped(msgspec.Struct, frozen=True):
    """The stage's decision on one alert for one block.

    ``alert``/``raw`` are what to deliver now (None: nothing now); ``reason``
    says why not, as ``test`` shows it; ``digest`` is the group it joined.
    A msgspec struct: one is made per alert and block, and it is built in C
    (80 ns here, against 300 for a named tuple and 600 for a frozen dataclass).
    """

    alert: dict[str, Any] | None
    raw: bytes | None
    reason: str | None = None
    digest: str | None = None


# Sends a digest: the document, its raw bytes, and what to call once settled.
DigestSubmit = Callable[[dict[str, Any], bytes, Callable[[], None]], Awaitable[None]]


class Shaper:
    """Narrowing, throttle and digest of one block, each optional."""

    def __init__(
        self,
        integration_key: str,
        settings: IntegrationSettings,
        *,
        store: FloodStore | None = None,
        counters: FloodCounters | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.integration_key = integration_key
        self._narrowing = Narrowing(settings.filter) if settings.filter is not None else None
        self._throttle = (
            Throttle(settings.throttle, integration_key=integration_key, store=store)
            if settings.throttle is not None
            else None
        )
        self.digests = (
            DigestCollector(settings.digest, integration_key=integration_key, store=store)
            if settings.digest is not None
            else None
        )
        self._counters = counters
        self._clock = clock
        self._changed = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    @property
    def counters(self) -> FloodCounters | None:
        return self._counters

    def shape(
        self,
        alert: dict[str, Any],
        raw: bytes,
        mark: Mark | None = None,
        now: float | None = None,
    ) -> Shaped:
        """Decide for one alert that passed the block's stock filters."""
        counters = self._counters
        if self._narrowing is not None:
            reason = self._narrowing.reason(alert)
            if reason is not None:
                if counters is not None:
                    counters.excluded.inc()
                return Shaped(None, None, reason)
        if now is None:
            now = self._clock()
        if self._throttle is not None:
            verdict = self._throttle.decide(alert, now, mark)
            if not verdict.send:
                if counters is not None:
                    counters.suppressed.inc()
                return Shaped(None, None, verdict.reason)
            if verdict.note is not None:
                alert = {**alert, SUPPRESSED: verdict.note.as_json()}
                raw = orjson.dumps(alert)
        if self.digests is not None:
            opened = self.digests.batches_opened
            group = self.digests.collect(alert, raw, now, mark)
            if counters is not None:
                counters.digested.inc()
            if self.digests.batches_opened != opened:
                self._changed.set()  # the sender may have to wake sooner
            return Shaped(None, None, f"digest: held for group {group}", group)
        return Shaped(alert, raw)

    def persist(self, *, force: bool = False) -> bool:
        """Save what is kept only in memory; called before each checkpoint
        save. False: put off (:meth:`Throttle.persist`), and the checkpoint
        must stay where it was when this last returned True."""
        if self._throttle is not None:
            return self._throttle.persist(self._clock(), force=force)
        return True

    # -- sending digests (daemon only) ---------------------------------------

    def start(self, submit: DigestSubmit) -> None:
        """Send each digest when due, through ``submit``."""
        if self.digests is not None and self._sender is None:
            self._sender = asyncio.create_task(
                self._send_when_due(submit), name=f"digests {self.integration_key}"
            )

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None

    async def send_all(self, submit: DigestSubmit) -> None:
        """Send every pending digest now (``run --once`` at the end of the file)."""
        if self.digests is not None:
            for ready in self.digests.take_all(self._clock()):
                await self._submit(submit, ready)

    async def _send_when_due(self, submit: DigestSubmit) -> None:
        assert self.digests is not None
        while True:
            due_at = self.digests.next_due_at()
            wait_s = None if due_at is None else max(0.0, due_at - self._clock())
            # asyncio.TimeoutError: on Python 3.10 wait_for does not raise the builtin.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait_s)
            self._changed.clear()
            for ready in self.digests.take_due(self._clock()):
                try:
                    await self._submit(submit, ready)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the batch stays in the store: sent after a restart
                    log.exception("Integration '%s': sending a digest failed", self.integration_key)

    async def _submit(self, submit: DigestSubmit, ready: ReadyDigest) -> None:
        digests = self.digests
        assert digests is not None
        if self._counters is not None:
            self._counters.digests.inc()
        await submit(
            ready.document, orjson.dumps(ready.document), lambda: digests.settled(ready.batch_id)
        )
