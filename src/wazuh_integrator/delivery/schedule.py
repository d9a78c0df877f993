"""The waits between attempts of one integration, from its settings.

Quick retries in memory hold a worker and a queue slot, so their waits are
capped at ``QUICK_BACKOFF_CAP_S``; a parked delivery's waits go up to the
block's ``max_backoff``. Both are :func:`~wazuh_integrator.backoff.backoff_s`
with full jitter.
"""

from __future__ import annotations

import random
from typing import Final

from wazuh_integrator.backoff import backoff_s
from wazuh_integrator.config.models import IntegrationSettings

__all__ = ["QUICK_BACKOFF_CAP_S", "RetrySchedule"]

QUICK_BACKOFF_CAP_S: Final = 30.0


class RetrySchedule:
    def __init__(self, settings: IntegrationSettings, rng: random.Random) -> None:
        self._initial_s = settings.initial_backoff_s
        self._max_s = settings.max_backoff_s
        self._rng = rng

    def quick_s(self, retry: int) -> float:
        """The wait before in-memory retry number ``retry`` (1 for the first)."""
        return backoff_s(
            retry,
            initial_s=self._initial_s,
            max_s=min(self._max_s, QUICK_BACKOFF_CAP_S),
            rng=self._rng,
        )

    def parked_s(self, attempts: int) -> float:
        """The wait before a parked delivery's next attempt, after ``attempts``."""
        return backoff_s(
            max(1, attempts), initial_s=self._initial_s, max_s=self._max_s, rng=self._rng
        )
