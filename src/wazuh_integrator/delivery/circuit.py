"""A circuit breaker: when a receiver keeps failing, stop sending it every alert.

After ``threshold`` transient failures in a row the circuit opens. While it
is open, new deliveries are parked without being tried, and one parked
delivery at a time *probes* the receiver. The first success closes the
circuit and everything flows again. A receiver down for hours then costs one
request per probe interval, and the alerts wait in the state store instead of
memory.

Only a probe's failure moves the next probe. Sends that were already in
flight when the circuit opened fail too, one after another, as their answers
arrive; counting those as failed probes pushed the first probe minutes out
and stalled delivery long after the receiver was back. The probe interval
grows from ``initial_s`` but never past ``probe_cap_s`` (default
:data:`PROBE_CAP_S`), however large the parked deliveries' own backoff: a
receiver that comes back is noticed within seconds.
"""

from __future__ import annotations

import random
from typing import Final

__all__ = ["PROBE_CAP_S", "Circuit"]

# The longest wait between two probes. Vector caps a retry wait at 30 s; a
# probe is one request, so it can afford to come far more often than that,
# and a short cap is what bounds the time to the first delivery after an
# outage.
PROBE_CAP_S: Final = 5.0
_MAX_EXPONENT: Final = 64


class Circuit:
    """Counts consecutive transient failures; times are wall-clock seconds."""

    def __init__(
        self,
        threshold: int,
        *,
        initial_s: float,
        max_s: float,
        rng: random.Random,
        probe_cap_s: float = PROBE_CAP_S,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be 1 or more, not {threshold}")
        if probe_cap_s <= 0:
            raise ValueError(f"probe_cap_s must be positive, not {probe_cap_s}")
        self.threshold = threshold
        self._initial_s = initial_s
        self._cap_s = min(max_s, probe_cap_s) if max_s > 0 else probe_cap_s
        self._rng = rng
        self.consecutive_failures = 0
        self.failed_probes = 0
        self.next_probe_at = float("-inf")

    @property
    def is_open(self) -> bool:
        return self.consecutive_failures >= self.threshold

    def record_failure(self, now: float, *, probe: bool = False) -> bool:
        """Count a transient failure; True when this one opened the circuit.

        Once the circuit is open, only a ``probe``'s failure counts: it
        schedules the next probe a little later. Any other failure is a send
        that started before the circuit opened, and changes nothing.
        """
        if self.is_open:
            if probe:
                self.failed_probes += 1
                self._schedule_probe(now)
            return False
        self.consecutive_failures += 1
        if self.is_open:
            self._schedule_probe(now)
            return True
        return False

    def record_success(self) -> bool:
        """Reset after a success; True when this one closed the circuit."""
        was_open = self.is_open
        self.consecutive_failures = 0
        self.failed_probes = 0
        self.next_probe_at = float("-inf")
        return was_open

    def _schedule_probe(self, now: float) -> None:
        # Doubling from initial_s up to the cap, with "equal jitter" (between
        # half the ceiling and the ceiling): never a busy loop at zero delay,
        # never later than the cap.
        ceiling = min(self._cap_s, self._initial_s * 2.0 ** min(self.failed_probes, _MAX_EXPONENT))
        self.next_probe_at = now + ceiling / 2 + self._rng.uniform(0.0, ceiling / 2)
