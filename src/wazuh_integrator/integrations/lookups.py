"""Lookups answered once: from the persistent cache when it knows the key,
else from one request shared by every alert asking for the same key at the
same time. VirusTotal and Maltiverse both use it, so that a burst of alerts
about one file spends one request of a small daily quota, not one per alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from wazuh_integrator.integrations.base import IntegrationContext

logger = logging.getLogger(__name__)

Answer = dict[str, Any]


class CachedLookups:
    """One namespace of the lookup cache, with in-flight requests shared."""

    def __init__(self, namespace: str, context: IntegrationContext) -> None:
        self._namespace = namespace
        self._context = context
        self._in_flight: dict[str, asyncio.Task[Answer]] = {}
        self.hits = 0  # answered without a request of their own (cache or shared)
        self.misses = 0

    def cached(self, key: str) -> Answer | None:
        cache = self._context.cache
        if cache is None:
            return None
        value = cache.get(self._namespace, key)
        return value if isinstance(value, dict) else None

    def is_known(self, key: str) -> bool:
        """True when answering ``key`` costs no new request."""
        return key in self._in_flight or self.cached(key) is not None

    async def answer(self, key: str, lookup: Callable[[], Awaitable[Answer]]) -> Answer:
        cached = self.cached(key)
        if cached is not None:
            logger.debug("%s: answered from the cache", self._namespace)
            self.hits += 1
            return cached
        task = self._in_flight.get(key)
        if task is not None:
            self.hits += 1
        else:
            self.misses += 1
            task = asyncio.ensure_future(self._lookup_and_keep(key, lookup))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: one waiter's time-out or cancellation must not cancel the
        # request the others are waiting for.
        return await asyncio.shield(task)

    def counts(self) -> dict[str, int]:
        """Lookups since start, for the health report."""
        return {"cache_hits_total": self.hits, "cache_misses_total": self.misses}

    async def _lookup_and_keep(self, key: str, lookup: Callable[[], Awaitable[Answer]]) -> Answer:
        answer = await lookup()
        ttl_s = self._context.settings.cache_ttl_s
        if self._context.cache is not None and ttl_s > 0:
            self._context.cache.put(self._namespace, key, answer, ttl_s)
        return answer

    def _forget(self, key: str, done: asyncio.Task[Answer]) -> None:
        if self._in_flight.get(key) is done:
            del self._in_flight[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone
