"""A circuit breaker: when a receiver keeps failing, stop sending it every alert.

After ``threshold`` transient failures in a row the circuit opens. While it
is open, new deliveries are parked without being tried, and one parked
delivery at a time probes the receiver, at growing intervals. The first
success closes the circuit and everything flows again. A receiver down for
hours then costs one request per probe interval, and the alerts wait in the
state store instead of memory.
"""

from __future__ import annotations

import random

from wazuh_integrator.backoff import backoff_s

__all__ = ["Circuit"]


class Circuit:
    """Counts consecutive transient failures; times are wall-clock seconds."""

    def __init__(
        self, threshold: int, *, initial_s: float, max_s: float, rng: random.Random
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be 1 or more, not {threshold}")
        self.threshold = threshold
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng
        self.consecutive_failures = 0
        self.failed_probes = 0
        self.next_probe_at = float("-inf")

    @property
    def is_open(self) -> bool:
        return self.consecutive_failures >= self.threshold

    def record_failure(self, now: float) -> bool:
        """Count a transient failure; True when this one opened the circuit."""
        was_open = self.is_open
        self.consecutive_failures += 1
        if was_open:
            self.failed_probes += 1
        if self.is_open:
            # At least the initial backoff between probes, even with full jitter:
            # a probe at zero delay would turn the circuit into a busy loop.
            wait = self._initial_s + backoff_s(
                self.failed_probes + 1, initial_s=self._initial_s, max_s=self._max_s, rng=self._rng
            )
            self.next_probe_at = max(self.next_probe_at, now + min(wait, self._max_s))
        return self.is_open and not was_open

    def record_success(self) -> bool:
        """Reset after a success; True when this one closed the circuit."""
        was_open = self.is_open
        self.consecutive_failures = 0
        self.failed_probes = 0
        self.next_probe_at = float("-inf")
        return was_open
