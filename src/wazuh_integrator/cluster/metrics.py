"""The cluster roles' own metrics, added to the daemon's registry.

Label values are fixed words; the stream and group names, which an admin
chooses, appear in ``/health`` only.
"""

from __future__ import annotations

from wazuh_integrator.metrics import PREFIX, Counter, Gauge, Metrics

__all__ = ["ClusterMetrics"]


class ClusterMetrics:
    """Reader and worker series; each role sets the ones it owns."""

    def __init__(self, metrics: Metrics, role: str) -> None:
        add = metrics.registry.register
        self.role = add(
            Gauge(PREFIX + "cluster_role", "Always 1; the label tells the role.", ("role",))
        )
        self.role.labels(role=role).set(1)
        self.redis_up = add(
            Gauge(PREFIX + "redis_up", "1 while the last Redis command succeeded, else 0.")
        )
        self.appended_total = add(
            Counter(PREFIX + "stream_appended_total", "Alerts the reader appended to the stream.")
        )
        self.acked_total = add(
            Counter(PREFIX + "stream_acked_total", "Stream entries a worker acknowledged.")
        )
        self.claimed_total = add(
            Counter(
                PREFIX + "stream_claimed_total",
                "Entries a worker took over from a worker that stopped answering.",
            )
        )
        self.stream_length = add(
            Gauge(PREFIX + "stream_length", "Entries in the stream (sampled by workers).")
        )
        self.pending = add(
            Gauge(
                PREFIX + "stream_pending",
                "Entries handed to some worker and not yet acknowledged (sampled).",
            )
        )
        self.lag = add(
            Gauge(
                PREFIX + "stream_lag",
                "Entries in the stream no worker has read yet (sampled; Redis 7 or newer).",
            )
        )
        self.redis_up.set(1)
