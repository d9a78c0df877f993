"""``run --role worker``: deliver the stream's alerts, sharing them with every
other worker of the consumer group.

A worker reads entries with ``XREADGROUP``, routes each through the same
filters and delivery layer as the single-process daemon, and acknowledges it
(``XACK``) once every delivery it caused is delivered, parked or
dead-lettered, after the state store has committed the parked ones. An
entry read but not acknowledged stays pending in Redis: when the worker that
holds it stops answering for ``claim_idle``, another worker claims it
(``XAUTOCLAIM``) and delivers it. A living worker keeps its own slow entries
from being claimed by touching them (``XCLAIM`` by itself) more often than
that. Delivery is at least once: an entry whose worker died after sending it
and before acknowledging it is sent again by the claimer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError, ResponseError

from wazuh_integrator.cluster.cache import RedisLookupCache
from wazuh_integrator.cluster.connection import (
    Outage,
    connect,
    ensure_group,
    node_name,
    shown_url,
)
from wazuh_integrator.cluster.deadletters import DeadLetterShipper, RedisDeadLetters
from wazuh_integrator.cluster.floods import ClusterShaper, Decisions, shared_stage
from wazuh_integrator.cluster.metrics import ClusterMetrics
from wazuh_integrator.cluster.parked import RedisParkedRows
from wazuh_integrator.cluster.pause import RedisPause
from wazuh_integrator.cluster.ratelimit import RedisLimits
from wazuh_integrator.cluster.stream import FIELD_ALERT, FIELD_NODE, FIELD_ONLY
from wazuh_integrator.config.models import ClusterSettings, IntegrationBlock, RateLimit, WazuhPaths
from wazuh_integrator.decode import AlertDecodeError, decode_alert
from wazuh_integrator.delivery import Delivery
from wazuh_integrator.floods import Shaped, Shaper
from wazuh_integrator.pipeline import Pipeline, RunOptions
from wazuh_integrator.ratelimit import SharedLimits, SharedPause
from wazuh_integrator.routes import LoadedConfiguration, Route
from wazuh_integrator.store import StateStore

log = logging.getLogger(__name__)

__all__ = ["StreamWorker"]

READ_COUNT = 200
READ_BLOCK_MS = 1000
MAX_ENTRIES_IN_FLIGHT = 2000  # read no further ahead: what is not read, another worker may take
ACK_GATHER_S = 0.02
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
SAMPLE_INTERVAL_S = 2.0
TOUCH_CHUNK = 500
RELOAD_POLL_S = 0.2
LOOP_STOP_S = 2.0

EntryId = bytes
Fields = dict[bytes, bytes]


@dataclass
class _Routed:
    """An entry decoded and filtered, on its way to delivery."""

    entry_id: EntryId
    alert: dict[str, Any]
    raw: bytes
    routes: list[Route]
    replay: bool  # a replayed dead letter: sent as it is, no floods stage
    shaped: dict[int, Shaped] = field(default_factory=dict)  # id(route) -> the stage's


class StreamWorker(Pipeline):
    """Consumes the stream in the group and delivers through the usual routes."""

    def __init__(
        self,
        paths: WazuhPaths,
        configuration: LoadedConfiguration,
        options: RunOptions,
        cluster: ClusterSettings,
    ) -> None:
        super().__init__(paths, configuration, options)
        self.cluster = cluster
        self.consumer = f"{node_name(cluster)}:{os.getpid()}"
        self.cluster_metrics = ClusterMetrics(self.metrics, "worker")
        self._outage = Outage(log, shown_url(cluster), "workers wait and retry")
        self._client: redis.Redis | None = None
        self._shared_limits = self._limits_in_redis
        self._shared_pause = self._pause_in_redis
        self._parked_in_redis: RedisParkedRows | None = None
        self._entries: dict[EntryId, int] = {}  # entry id -> deliveries not yet settled
        self._to_ack: list[EntryId] = []
        self._ack_wanted = asyncio.Event()
        self._room = asyncio.Event()
        self._counts = {"read": 0, "claimed": 0, "acked": 0, "invalid": 0}
        self._sampled: dict[str, int | None] = {}
        self._acker: asyncio.Task[None] | None = None
        self._dead_letters: DeadLetterShipper | None = None
        self._decisions: Decisions | None = None  # the floods stage's, per entry
        self._replies: Any = []  # the last XREADGROUP answer: [(stream, [(id, fields)])]
        self._failed = False

    def _limits_in_redis(self, key: str, limits: Sequence[RateLimit]) -> SharedLimits:
        assert self._client is not None
        return RedisLimits(self._client, self.cluster.stream, key, limits, self._outage)

    def _pause_in_redis(self, key: str) -> SharedPause:
        assert self._client is not None
        return RedisPause(self._client, self.cluster.stream, key, self._outage)

    async def run(self) -> int:
        self._client = connect(self.cluster)
        self._parked_in_redis = RedisParkedRows(
            self._client, self.cluster.stream, self.cluster.claim_idle_s
        )
        self._parked_rows = self._parked_in_redis
        try:
            status = await super().run()
            return 1 if self._failed else status
        finally:
            await self._client.aclose()
            if isinstance(self._lookup_cache, RedisLookupCache):
                self._lookup_cache.close()

    def _build_routes(self, configuration: LoadedConfiguration) -> list[Route]:
        if self._lookup_cache is None:
            self._lookup_cache = RedisLookupCache.for_cluster(self.cluster, self._store)
        return super()._build_routes(configuration)

    def _build_route(
        self, block: IntegrationBlock, configuration: LoadedConfiguration
    ) -> Route | None:
        route = super()._build_route(block, configuration)
        if route is not None and route.shaper is not None:
            assert self._client is not None
            if self._decisions is None:
                self._decisions = Decisions(self._client, self.cluster.stream)
            route.shaper = shared_stage(
                route.shaper,
                configuration.settings.for_block(block),
                client=self._client,
                prefix=self.cluster.stream,
                decisions=self._decisions,
                lease_s=self.cluster.claim_idle_s,
                outage=self._outage,
            )
        return route

    # -- the loops ---------------------------------------------------------

    async def _read_until_stopped(self, store: StateStore) -> None:
        loops = [
            asyncio.create_task(self._consume(), name="stream consumer"),
            asyncio.create_task(self._claim_loop(), name="stream claims"),
            asyncio.create_task(self._sample_loop(), name="stream sampler"),
            asyncio.create_task(self._reload_when_asked(), name="reloads"),
            asyncio.create_task(self._shipper(store).run(self._stop), name="dead letters to Redis"),
            asyncio.create_task(self._parked_to_redis(store), name="parked rows to Redis"),
        ]
        self._acker = asyncio.create_task(self._ack_loop(), name="stream acks")
        for task in [*loops, self._acker]:
            task.add_done_callback(self._loop_ended)
        try:
            await self._stop.wait()
        finally:
            # The consumer ends by itself within one blocking read. Cancelling a
            # redis-py command can be swallowed on Python 3.10 (its async_timeout),
            # so every loop also checks the stop flag, and nothing here waits on
            # a cancellation for ever.
            await asyncio.wait(loops[:1], timeout=READ_BLOCK_MS / 1000 + 1.0)
            for task in loops:
                task.cancel()
            await asyncio.wait(loops, timeout=LOOP_STOP_S)

    async def _parked_to_redis(self, store: StateStore) -> None:
        """Move rows an earlier single process parked here to Redis, then keep
        the parked rows this worker is retrying claimed."""
        parked = self._parked_in_redis
        assert parked is not None
        keys = [route.block.key for route in self.routes]
        moved = 0

        async def take_over() -> None:
            nonlocal moved
            moved = await parked.take_over(store, keys)

        await self._retrying(take_over)
        if moved:
            log.info("Moved %d parked deliveries from the state store to Redis.", moved)
        await parked.keep_claims(self._stop)

    def _seed_state_gauges(self, store: StateStore) -> None:
        """Each deliverer counted its parked rows (in Redis) when it started."""

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """A loop that ends by itself met an error Redis will not outgrow (a key
        of another type, a script refused): stop, and exit non-zero, rather
        than run on without consuming."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error(
            "Worker stopping: %s failed: %s: %s", task.get_name(), type(error).__name__, error
        )
        self._failed = True
        self.request_stop()

    async def _shutdown(self, grace_s: float) -> None:
        # Deliverers stop first: what they still hold is parked, so settled.
        await super()._shutdown(grace_s)
        if self._parked_in_redis is not None:
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                # Left claimed, they would wait claim_idle for another worker.
                await asyncio.wait_for(self._parked_in_redis.release_held(), grace_s)
        if self._acker is not None:
            self._acker.cancel()
            await asyncio.wait([self._acker], timeout=LOOP_STOP_S)
        try:
            await asyncio.wait_for(self._retrying(self._send_acks), grace_s)
        except asyncio.TimeoutError:  # Python 3.10: wait_for raises this, not TimeoutError
            log.warning(
                "%d stream entries were delivered or parked but not acknowledged (Redis"
                " unreachable); another worker will deliver them again.",
                len(self._to_ack),
            )
        for route in self.routes:  # digests parked above leave Redis's sending hash
            if isinstance(route.shaper, ClusterShaper):
                with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                    await asyncio.wait_for(route.shaper.flush_settled(), grace_s)
        if self._dead_letters is not None:
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(self._dead_letters.ship(), grace_s)
        log.info(
            "Worker '%s' stopped: %d entries read, %d claimed, %d acknowledged.",
            self.consumer,
            self._counts["read"],
            self._counts["claimed"],
            self._counts["acked"],
        )

    def _shipper(self, store: StateStore) -> DeadLetterShipper:
        assert self._client is not None
        self._dead_letters = DeadLetterShipper(
            store, RedisDeadLetters(self._client, self.cluster), self._outage
        )
        return self._dead_letters

    async def _reload_when_asked(self) -> None:
        """SIGHUP, as in the single process: new filters apply to entries read after it."""
        while not self._stop.is_set():
            await asyncio.sleep(RELOAD_POLL_S)
            if self._reload_requested:
                await self._reload()

    async def _retrying(self, step: Callable[[], Any]) -> None:
        """Run ``step`` until Redis answers it, logging the outage once."""
        wait_s = RETRY_FIRST_S
        while True:
            try:
                await step()
            except (RedisError, OSError) as error:
                if isinstance(error, ResponseError) and "NOGROUP" not in str(error):
                    raise
                self._outage.failed(error)
                self.cluster_metrics.redis_up.set(0)
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, RETRY_MAX_S)
                if isinstance(error, ResponseError):  # the stream was lost: start it again
                    with contextlib.suppress(RedisError, OSError):
                        await self._create_group()
                continue
            self._outage.succeeded()
            self.cluster_metrics.redis_up.set(1)
            return

    async def _create_group(self) -> None:
        assert self._client is not None
        if await ensure_group(self._client, self.cluster):
            log.info(
                "Created consumer group '%s' on stream '%s'.",
                self.cluster.group,
                self.cluster.stream,
            )

    async def _consume(self) -> None:
        await self._retrying(self._create_group)
        # Logged once the group is there and signals are handled: from here a
        # SIGTERM hands everything over.
        log.info(
            "Worker '%s': delivering from stream '%s' (group '%s') at %s.",
            self.consumer,
            self.cluster.stream,
            self.cluster.group,
            shown_url(self.cluster),
        )
        while not self._stop.is_set():
            while len(self._entries) >= MAX_ENTRIES_IN_FLIGHT:
                self._room.clear()
                await self._room.wait()
            self._replies = []
            await self._retrying(self._read_new)
            if self._stop.is_set():
                return  # read after the stop: left pending, another worker claims them
            for _stream, entries in self._replies:
                self._counts["read"] += len(entries)
                await self._take_batch(entries)

    async def _read_new(self) -> None:
        assert self._client is not None
        self._replies = await self._client.xreadgroup(
            self.cluster.group,
            self.consumer,
            {self.cluster.stream: ">"},
            count=min(READ_COUNT, MAX_ENTRIES_IN_FLIGHT - len(self._entries)),
            block=READ_BLOCK_MS,
        )

    async def _claim_loop(self) -> None:
        """Keep this worker's own entries fresh, and take over the stale ones of others."""
        interval_s = max(0.2, self.cluster.claim_idle_s / 4)
        while not self._stop.is_set():
            await asyncio.sleep(interval_s)
            await self._retrying(self._touch_own)
            await self._retrying(self._claim_stale)

    async def _touch_own(self) -> None:
        assert self._client is not None
        ids: list[Any] = list(self._entries)
        for start in range(0, len(ids), TOUCH_CHUNK):
            await self._client.xclaim(
                self.cluster.stream,
                self.cluster.group,
                self.consumer,
                min_idle_time=0,
                message_ids=ids[start : start + TOUCH_CHUNK],
                justid=True,
            )

    async def _claim_stale(self) -> None:
        assert self._client is not None
        idle_ms = int(self.cluster.claim_idle_s * 1000)
        start: bytes | str = "0-0"
        while len(self._entries) < MAX_ENTRIES_IN_FLIGHT:
            reply = await self._client.xautoclaim(
                self.cluster.stream,
                self.cluster.group,
                self.consumer,
                min_idle_time=idle_ms,
                start_id=start,
                count=READ_COUNT,
            )
            start, entries = reply[0], reply[1]
            claimed = [
                (entry_id, fields)
                for entry_id, fields in entries
                if entry_id not in self._entries and fields is not None
            ]
            self._counts["claimed"] += len(claimed)
            self.cluster_metrics.claimed_total.inc(len(claimed))
            await self._take_batch(claimed)
            if entries:
                log.warning(
                    "Claimed %d stream entries idle for %.0f s or more (a worker stopped"
                    " answering); delivering them here.",
                    len(entries),
                    self.cluster.claim_idle_s,
                )
            if start in (b"0-0", "0-0"):
                return

    # -- entries -----------------------------------------------------------

    async def _take_batch(self, entries: Sequence[tuple[EntryId, Fields]]) -> None:
        """Route entries to their deliveries; acknowledge each when they all
        settle. The floods stage's decisions on the whole batch go to Redis
        in one pipeline per block."""
        routed = [entry for entry in (self._route(*pair) for pair in entries) if entry]
        for route in self.routes:
            if route.shaper is not None:
                await self._shape_batch(route, route.shaper, routed)
        for entry in routed:
            await self._dispatch(entry)

    def _route(self, entry_id: EntryId, fields: Fields) -> _Routed | None:
        """Decode and filter one entry; None when it is already dealt with."""
        raw = fields.get(FIELD_ALERT)
        node = fields.get(FIELD_NODE, b"").decode("utf-8", "replace")
        if raw is None:
            self._skip(entry_id, "an entry without an alert")
            return None
        only = fields.get(FIELD_ONLY)
        try:
            if only is not None:  # a replayed dead letter: its block only, filters skipped
                matched = [route for route in self.routes if route.block.key == only.decode()]
                if not matched:
                    self._keep_for_later(entry_id, raw, only.decode())
                    return None
            else:
                matched = list(self._router.routes_for(raw) or ())
            alert = decode_alert(raw) if matched else None
        except AlertDecodeError as exc:
            self._skip(entry_id, f"an entry whose alert is not a JSON object ({exc})")
            return None
        if alert is None:
            self._done(entry_id)
            return None
        if node:
            raw = _tagged(alert, raw, node)
        for route in matched:
            route.matched_total.inc()
        return _Routed(entry_id, alert, raw, matched, replay=only is not None)

    async def _shape_batch(self, route: Route, shaper: Shaper, routed: list[_Routed]) -> None:
        """The floods stage of ``route`` for every entry it matched (a replay
        sends what it is given). A shared stage waits out a Redis outage: its
        decisions are kept under the entries' ids, so asking again decides the same."""
        taking = [
            entry
            for entry in routed
            if not entry.replay and any(matched is route for matched in entry.routes)
        ]
        if not taking:
            return
        if not isinstance(shaper, ClusterShaper):
            for entry in taking:
                entry.shaped[id(route)] = shaper.shape(entry.alert, entry.raw)
            return
        items = [(entry.alert, entry.raw, entry.entry_id) for entry in taking]
        decided: list[list[Shaped]] = []

        async def decide() -> None:
            decided.append(await shaper.shape_many(items))

        await self._retrying(decide)
        for entry, shaped in zip(taking, decided[-1], strict=True):
            entry.shaped[id(route)] = shaped

    async def _dispatch(self, entry: _Routed) -> None:
        entry_id = entry.entry_id
        deliveries: list[tuple[Route, dict[str, Any], bytes]] = []
        for route in entry.routes:
            shaped = entry.shaped.get(id(route))
            if shaped is None:
                deliveries.append((route, entry.alert, entry.raw))
            elif shaped.alert is not None and shaped.raw is not None:
                deliveries.append((route, shaped.alert, shaped.raw))
        if not deliveries:
            self._done(entry_id)
            return
        self._entries[entry_id] = len(deliveries)

        def settle() -> None:
            remaining = self._entries.get(entry_id, 0) - 1
            if remaining > 0:
                self._entries[entry_id] = remaining
            else:
                self._entries.pop(entry_id, None)
                self._done(entry_id)

        for route, body, body_raw in deliveries:
            delivery = Delivery(alert=body, raw=body_raw, on_settled=settle)
            if not route.deliverer.offer(delivery):
                await route.deliverer.submit(delivery)

    def _keep_for_later(self, entry_id: EntryId, raw: bytes, key: str) -> None:
        """A replayed dead letter for a block this worker does not run: a dead
        letter again (the shipper returns it to the cluster's), not lost."""
        assert self._store is not None
        log.error(
            "Replayed dead letter for '%s', which this worker does not run: kept as a dead"
            " letter again.",
            key,
        )
        self._store.add_dead_letter(
            key,
            key.partition("#")[0],
            raw,
            attempts=0,
            first_failed_at=time.time(),
            last_error=f"replayed to a worker without block {key}",
            status=None,
        )
        self._done(entry_id)

    def _skip(self, entry_id: EntryId, what: str) -> None:
        log.warning("Skipping stream entry %s: %s.", entry_id.decode(), what)
        self._counts["invalid"] += 1
        self.metrics.alerts_invalid_total.labels(reason="not_json").inc()
        self._done(entry_id)

    def _done(self, entry_id: EntryId) -> None:
        self._to_ack.append(entry_id)
        self._ack_wanted.set()
        self._room.set()

    async def _ack_loop(self) -> None:
        while True:
            await self._ack_wanted.wait()
            await asyncio.sleep(ACK_GATHER_S)  # one XACK for what settles together
            self._ack_wanted.clear()
            await self._retrying(self._send_acks)

    async def _send_acks(self) -> None:
        if not self._to_ack:
            return
        assert self._client is not None and self._store is not None
        # Parked deliveries must be stored before Redis forgets their entries.
        self._store.flush()
        ids = self._to_ack
        self._to_ack = []
        try:
            if self._parked_in_redis is not None:
                await self._parked_in_redis.flush()  # every row parked for ids, at least
            await self._acknowledge(ids)
        except BaseException:
            self._to_ack[:0] = ids
            raise
        self._counts["acked"] += len(ids)
        self.cluster_metrics.acked_total.inc(len(ids))

    async def _acknowledge(self, ids: list[EntryId]) -> None:
        """XACK, and in the same transaction the floods stage's decisions on
        these entries: a claimer must find them until the entry is acknowledged."""
        assert self._client is not None
        decisions = self._decisions
        if decisions is None or not decisions.fields_of(ids):
            await self._client.xack(self.cluster.stream, self.cluster.group, *ids)
            return
        pipeline = self._client.pipeline(transaction=True)
        pipeline.xack(self.cluster.stream, self.cluster.group, *ids)
        decisions.forget(pipeline, ids)
        await pipeline.execute()
        decisions.forgotten(ids)

    # -- observability -----------------------------------------------------

    async def _sample_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(RedisError, OSError):
                await self._sample()
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    async def _sample(self) -> None:
        assert self._client is not None
        length = int(await self._client.xlen(self.cluster.stream))
        groups = await self._client.xinfo_groups(self.cluster.stream)
        pending: int | None = None
        lag: int | None = None
        for group in groups:
            name = group.get("name")
            if name in (self.cluster.group, self.cluster.group.encode()):
                pending = int(group.get("pending", 0))
                raw_lag = group.get("lag")
                lag = int(raw_lag) if raw_lag is not None else None
        self._sampled = {"length": length, "pending": pending, "lag": lag}
        self.cluster_metrics.stream_length.set(length)
        if pending is not None:
            self.cluster_metrics.pending.set(pending)
        if lag is not None:
            self.cluster_metrics.lag.set(lag)

    def health(self) -> dict[str, Any]:
        report = super().health()
        report["status"] = "degraded" if self._outage.ongoing else report["status"]
        report["role"] = "worker"
        report["cluster"] = {
            "consumer": self.consumer,
            "stream": self.cluster.stream,
            "group": self.cluster.group,
            "redis": shown_url(self.cluster),
            "redis_reachable": not self._outage.ongoing,
            "entries_in_flight": len(self._entries),
            "sampled_at": round(time.time(), 1),
            **{f"{name}_total": value for name, value in self._counts.items()},
            "parked_taken_over_total": (
                self._parked_in_redis.taken_over if self._parked_in_redis is not None else 0
            ),
            **self._sampled,
        }
        return report


def _tagged(alert: dict[str, Any], raw: bytes, node: str) -> bytes:
    """Name the manager node that read the alert in ``cluster.node``, as a Wazuh
    cluster writes it, unless the alert already says; returns the raw bytes to
    hand on (written anew only when the alert changed)."""
    cluster = alert.get("cluster")
    if isinstance(cluster, dict) and cluster.get("node"):
        return raw
    alert["cluster"] = {**(cluster if isinstance(cluster, dict) else {}), "node": node}
    return orjson.dumps(alert)
