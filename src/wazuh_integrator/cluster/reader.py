"""``run --role reader``: tail this manager's alerts.json and append every
alert some enabled block's filter matches to the Redis stream.

The reader is the single-process pipeline with its delivery hop replaced:
the same tailer, filters and low-watermark checkpoint, but a matched line is
settled when Redis has answered its ``XADD``, not when a receiver has. While
Redis is unreachable the reader holds its batch and retries it, so the
checkpoint stays before the first alert Redis has not taken: after a crash or
a restart those alerts are read and appended again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from wazuh_integrator.cluster.connection import Outage, connect, node_name, shown_url
from wazuh_integrator.cluster.metrics import ClusterMetrics
from wazuh_integrator.cluster.stream import FIELD_ALERT, FIELD_NODE
from wazuh_integrator.config.models import ClusterSettings, WazuhPaths
from wazuh_integrator.decode import AlertDecodeError
from wazuh_integrator.pipeline import Pipeline, RunOptions
from wazuh_integrator.routes import LoadedConfiguration
from wazuh_integrator.source import AlertTailer, Line

log = logging.getLogger(__name__)

__all__ = ["StreamReader"]

APPEND_CHUNK = 500  # XADDs per round trip: large enough to amortise it, small enough to retry
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


class StreamReader(Pipeline):
    """Reads alerts.json and appends matched alerts to the stream."""

    def __init__(
        self,
        paths: WazuhPaths,
        configuration: LoadedConfiguration,
        options: RunOptions,
        cluster: ClusterSettings,
    ) -> None:
        super().__init__(paths, configuration, options)
        self.cluster = cluster
        self.node = node_name(cluster)
        self.cluster_metrics = ClusterMetrics(self.metrics, "reader")
        self._outage = Outage(log, shown_url(cluster), "the checkpoint stays where it is")
        self._client: redis.Redis | None = None
        self._appended = 0

    async def run(self) -> int:
        self._client = connect(self.cluster)
        log.info(
            "Reader on node '%s': appending matched alerts to stream '%s' at %s.",
            self.node,
            self.cluster.stream,
            shown_url(self.cluster),
        )
        try:
            return await super().run()
        finally:
            await self._client.aclose()

    # The reader delivers nothing: its routes are used for their filters only.
    async def _start_route(self, route: Any) -> None:
        route.shaper = None  # floods are the workers' business

    async def _shutdown(self, grace_s: float) -> None:
        for route in self.routes:
            await route.integration.close()
        self._save_checkpoint(force=True)
        position = self._watermark.position
        if position is not None:
            log.info("Checkpoint saved at %s offset %d.", position.path, position.offset)

    async def _read(self, tailer: AlertTailer) -> None:
        async for batch in tailer.batches():
            if self._stop.is_set():
                return  # not read: the checkpoint stays before this batch
            matched: list[tuple[bytes, Callable[[], None]]] = []
            for line in batch:
                if self._matches(line):
                    matched.append((line.data, self._watermark.line_with_work(line.end, 1)))
                else:
                    self._watermark.line_without_work(line.end)
            for start in range(0, len(matched), APPEND_CHUNK):
                await self._append(matched[start : start + APPEND_CHUNK])
            self._save_checkpoint()

    def _matches(self, line: Line) -> bool:
        """True when some enabled block's filter takes the line; counts the rest."""
        metrics = self.metrics
        if line.oversize:
            log.warning(
                "Skipping a line longer than %d bytes at %s offset %d.",
                self.configuration.settings.max_line_bytes,
                line.start.path,
                line.start.offset,
            )
            metrics.alerts_invalid_total.labels(reason="oversize").inc()
            return False
        metrics.alerts_read_total.inc()
        try:
            routes = self._router.routes_for(line.data)
        except AlertDecodeError as exc:
            log.warning(
                "Skipping a line that is not a JSON object at %s offset %d: %s",
                line.start.path,
                line.start.offset,
                exc,
            )
            metrics.alerts_invalid_total.labels(reason="not_json").inc()
            return False
        if routes is None:
            metrics.alerts_invalid_total.labels(reason="no_rule").inc()
            return False
        for route in routes:
            route.matched_total.inc()
        return bool(routes)

    async def _append(self, entries: list[tuple[bytes, Callable[[], None]]]) -> None:
        """XADD every entry, retrying until Redis has taken them all; then settle them."""
        assert self._client is not None
        wait_s = RETRY_FIRST_S
        while True:
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for raw, _ in entries:
                        pipe.xadd(
                            self.cluster.stream,
                            {FIELD_ALERT: raw, FIELD_NODE: self.node},
                            maxlen=self.cluster.max_length,
                            approximate=True,
                        )
                    await pipe.execute()
            except (RedisError, OSError) as error:
                self._outage.failed(error)
                self.cluster_metrics.redis_up.set(0)
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, RETRY_MAX_S)
                continue
            break
        self._outage.succeeded()
        self.cluster_metrics.redis_up.set(1)
        self.cluster_metrics.appended_total.inc(len(entries))
        self._appended += len(entries)
        for _, settle in entries:
            settle()

    def health(self) -> dict[str, Any]:
        report = super().health()
        report["status"] = "degraded" if self._outage.ongoing else report["status"]
        report["role"] = "reader"
        report["cluster"] = {
            "node": self.node,
            "stream": self.cluster.stream,
            "redis": shown_url(self.cluster),
            "redis_reachable": not self._outage.ongoing,
            "appended_total": self._appended,
        }
        return report
