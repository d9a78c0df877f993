"""The floods stage of a cluster worker: throttle windows and digest batches
kept in Redis, so that every worker of the group counts them together.

The stage runs in the worker, after ``XREADGROUP`` and the block's stock
filters, on the alert the worker is about to deliver (see docs/cluster.md).
Every read-modify-write is one Lua script (:mod:`.flood_scripts`), on
Redis's clock:

- a throttle decision is one ``EVALSHA`` per alert and throttled block;
- joining a digest is one ``EVALSHA`` per alert and digested block;
- closing a due batch moves it, in the same script, from the group's open
  batch to the block's *sending* hash under a lease. The worker that closed
  it sends it and deletes it once the digest is delivered, parked or
  dead-lettered; while it sends, it renews the lease. A lease that expires
  (that worker died) is taken over by another worker, which sends the
  digest again: at least once, as everything else here.

Each decision is also written, under the stream entry's id, to one hash of
decisions: an entry claimed from a worker that died after deciding and
before acknowledging gets the same decision again instead of being counted
twice. The worker deletes an entry's decisions in the same transaction as
its ``XACK`` (:meth:`Decisions.forget`), so the hash holds only entries in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from wazuh_integrator.cluster.connection import Outage
from wazuh_integrator.cluster.flood_scripts import CLOSE, COLLECT, LEASES, THROTTLE
from wazuh_integrator.config.models import DigestSettings, IntegrationSettings, ThrottleSettings
from wazuh_integrator.floods.fields import FieldPath, describe, key_text
from wazuh_integrator.floods.stage import DigestSubmit, FloodCounters, Shaped, Shaper
from wazuh_integrator.floods.throttle import format_duration, ordinal
from wazuh_integrator.integrations.flood_marks import DIGEST, SUPPRESSED, Suppressed, iso_time

__all__ = ["ClusterShaper", "Decisions", "shared_stage"]

log = logging.getLogger(__name__)

POLL_S: Final = 0.5  # how often a worker looks for due digests and expired leases
CLOSE_AT_ONCE: Final = 20  # due groups looked at per poll
UNREACHABLE_WAIT_S: Final = 1.0


class Decisions:
    """The worker's record of which entries the stage decided on, so that
    their decisions leave Redis with their ``XACK``."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.key = f"{prefix}:floods:decided"
        self._client = client
        self._fields: dict[bytes, list[str]] = {}

    def field(self, entry_id: bytes, integration_key: str) -> str:
        fields = self._fields.setdefault(entry_id, [])
        name = f"{entry_id.decode()}|{integration_key}"
        fields.append(name)
        return name

    def fields_of(self, entry_ids: list[bytes]) -> list[str]:
        fields = self._fields
        return [name for entry_id in entry_ids for name in fields.get(entry_id, ())]

    def forget(self, pipeline: Pipeline, entry_ids: list[bytes]) -> bool:
        """Queue the deletion of these entries' decisions on ``pipeline``;
        False when they have none."""
        names = self.fields_of(entry_ids)
        if not names:
            return False
        pipeline.hdel(self.key, *names)
        return True

    def forgotten(self, entry_ids: list[bytes]) -> None:
        """The deletion queued by :meth:`forget` was executed."""
        for entry_id in entry_ids:
            self._fields.pop(entry_id, None)


@dataclass(frozen=True)
class _Throttled:
    send: bool
    note: Suppressed | None = None
    reason: str | None = None


class _SharedThrottle:
    def __init__(
        self, client: redis.Redis, prefix: str, key: str, settings: ThrottleSettings
    ) -> None:
        self._script = client.register_script(THROTTLE)
        self._prefix = f"{prefix}:throttle:{key}:"
        self._paths = tuple(FieldPath(dotted) for dotted in settings.key)
        self._args = (settings.limit, max(1, int(settings.window_s * 1000)))
        self._words = f"within {format_duration(settings.window_s)} (limit {settings.limit})"

    async def queue(
        self, pipeline: Pipeline, alert: dict[str, Any], decisions_key: str, field: str
    ) -> str:
        """Queue the decision on ``alert`` on ``pipeline``; returns its throttle key."""
        key = key_text(self._paths, alert)
        await self._script(
            keys=[self._prefix + key, decisions_key], args=[field, *self._args], client=pipeline
        )
        return key

    def verdict(self, key: str, reply: list[bytes]) -> _Throttled:
        fresh, decision = reply
        verdict, _, rest = decision.decode().partition(":")
        if verdict == "held":
            if fresh == b"again":
                return _Throttled(False, reason=f"throttled: counted for {key} before a claim")
            return _Throttled(
                False, reason=f"throttled: {ordinal(int(rest))} alert for {key} {self._words}"
            )
        count, _, since_ms = rest.partition(":")
        if int(count) == 0:
            return _Throttled(True)
        return _Throttled(True, Suppressed(int(count), iso_time(int(since_ms) / 1000)))


class _SharedDigests:
    """One block's digest batches in Redis, and its sender loop."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        integration_key: str,
        settings: DigestSettings,
        *,
        lease_s: float,
        outage: Outage,
    ) -> None:
        self._client = client
        self._collect = client.register_script(COLLECT)
        self._close = client.register_script(CLOSE)
        self._leases = client.register_script(LEASES)
        self._integration_key = integration_key
        base = f"{prefix}:digest:{integration_key}"
        self._open = f"{base}:open:"
        self._alerts = f"{base}:alerts:"
        self._flushed = f"{base}:flushed:"
        self._due = f"{base}:due"
        self._sending = f"{base}:sending"
        self._lease_keys = f"{base}:leases"
        self._ids = f"{prefix}:digest:next-id"
        self._paths = tuple(FieldPath(dotted) for dotted in settings.group_by)
        self._wait_ms = int(settings.group_wait_s * 1000)
        self._interval_ms = int(settings.group_interval_s * 1000)
        self._max_alerts = settings.max_alerts
        self._lease_ms = max(1000, int(lease_s * 1000))
        self._outage = outage
        self._held: set[bytes] = set()  # batches this worker is sending
        self._settled: list[bytes] = []
        self._late_flushes: set[asyncio.Task[None]] = set()
        self.stopped = False  # the sender loop ended: settle each batch on its own
        self.changed = asyncio.Event()

    async def queue(
        self,
        pipeline: Pipeline,
        alert: dict[str, Any],
        raw: bytes,
        decisions_key: str,
        field: str,
    ) -> str:
        """Queue collecting ``alert`` on ``pipeline``; returns its group."""
        group = key_text(self._paths, alert)
        await self._collect(
            keys=[
                self._open + group,
                self._alerts + group,
                self._due,
                self._flushed + group,
                decisions_key,
                self._ids,
            ],
            args=[
                field,
                group,
                self._wait_ms,
                self._interval_ms,
                self._max_alerts,
                raw,
                orjson.dumps(describe(self._paths, alert)),
            ],
            client=pipeline,
        )
        return group

    def collected(self, reply: int) -> None:
        if int(reply) >= 0:
            self.changed.set()  # it opened a batch: the sender may have to wake sooner

    async def send_when_due(
        self, submit: DigestSubmit, counters: FloodCounters | None, stopping: asyncio.Event
    ) -> None:
        while not stopping.is_set():
            try:
                wait_s = await self._tick(submit, counters)
            except (RedisError, OSError) as error:
                self._outage.failed(error)
                wait_s = UNREACHABLE_WAIT_S
            else:
                self._outage.succeeded()
            with contextlib.suppress(asyncio.TimeoutError):  # Python 3.10's own
                await asyncio.wait_for(self.changed.wait(), timeout=wait_s)
            self.changed.clear()

    async def _tick(self, submit: DigestSubmit, counters: FloodCounters | None) -> float:
        await self.flush_settled()
        taken = await self._leases(
            keys=[self._sending, self._lease_keys], args=[self._lease_ms, *self._held]
        )
        for index in range(0, len(taken), 2):
            log.warning(
                "Integration '%s': sending digest %s again; the worker sending it stopped"
                " renewing its lease.",
                self._integration_key,
                taken[index].decode(),
            )
            await self._send(submit, counters, taken[index], taken[index + 1])
        wait_s = POLL_S
        due: list[Any] = await self._client.zrange(self._due, 0, CLOSE_AT_ONCE - 1)
        for raw_group in due:
            group = bytes(raw_group).decode()
            reply = await self._close(
                keys=[
                    self._open + group,
                    self._alerts + group,
                    self._due,
                    self._flushed + group,
                    self._sending,
                    self._lease_keys,
                ],
                args=[group, self._interval_ms, self._lease_ms],
            )
            if reply[0] == b"wait":
                wait_s = min(wait_s, int(reply[1]) / 1000)
                break  # the groups are in order of due time
            if reply[0] == b"send":
                await self._send(submit, counters, reply[1], reply[2])
        return wait_s

    async def _send(
        self,
        submit: DigestSubmit,
        counters: FloodCounters | None,
        batch_id: bytes,
        stored: bytes,
    ) -> None:
        batch = orjson.loads(stored)
        alerts = batch.get("alerts")
        document = {
            DIGEST: {
                "group": batch["group"],
                "fields": orjson.loads(batch["fields"]),
                "integration": self._integration_key,
            },
            "count": int(batch["count"]),
            "first": iso_time(batch["first"] / 1000),
            "last": iso_time(batch["last"] / 1000),
            # cjson writes an empty list as {}
            "alerts": [orjson.loads(raw) for raw in alerts] if isinstance(alerts, list) else [],
        }
        self._held.add(batch_id)
        if counters is not None:
            counters.digests.inc()

        def settled() -> None:
            self._settled.append(batch_id)
            self.changed.set()
            if self.stopped:  # parked by a block retired on reload: no sender loop left
                task = asyncio.get_running_loop().create_task(self._flush_quietly())
                self._late_flushes.add(task)
                task.add_done_callback(self._late_flushes.discard)

        await submit(document, orjson.dumps(document), settled)

    async def _flush_quietly(self) -> None:
        # Not deleted, the batch's lease runs out and another worker sends it again.
        with contextlib.suppress(RedisError, OSError):
            await self.flush_settled()

    async def flush_settled(self) -> None:
        """Delete the batches whose digests were delivered, parked or dead-lettered."""
        if not self._settled:
            return
        done = self._settled
        pipeline = self._client.pipeline(transaction=True)
        pipeline.hdel(self._sending, *done)
        pipeline.zrem(self._lease_keys, *done)
        await pipeline.execute()
        self._settled = self._settled[len(done) :]
        self._held.difference_update(done)


class ClusterShaper(Shaper):
    """A block's floods stage in a worker: the narrowing as in the single
    process, the throttle and the digests shared in Redis."""

    def __init__(
        self,
        integration_key: str,
        settings: IntegrationSettings,
        *,
        client: redis.Redis,
        prefix: str,
        decisions: Decisions,
        lease_s: float,
        outage: Outage,
        counters: FloodCounters | None = None,
    ) -> None:
        super().__init__(integration_key, settings, counters=counters)
        # The in-memory throttle and digests of the single process are replaced.
        self._throttle = None
        self.digests = None
        self._client = client
        self._decisions = decisions
        self._shared_throttle = (
            _SharedThrottle(client, prefix, integration_key, settings.throttle)
            if settings.throttle is not None
            else None
        )
        self._shared_digests = (
            _SharedDigests(
                client, prefix, integration_key, settings.digest, lease_s=lease_s, outage=outage
            )
            if settings.digest is not None
            else None
        )
        self._stopping = asyncio.Event()

    async def shape_shared(self, alert: dict[str, Any], raw: bytes, entry_id: bytes) -> Shaped:
        """Decide for one stream entry that passed the block's stock filters."""
        return (await self.shape_many([(alert, raw, entry_id)]))[0]

    async def shape_many(
        self, items: Sequence[tuple[dict[str, Any], bytes, bytes]]
    ) -> list[Shaped]:
        """Decide for stream entries (alert, raw, entry id) that passed the
        block's stock filters, with one pipeline to Redis per step. Raises
        what Redis raises; the caller retries (each decision is kept under
        its entry's id, so a retry decides the same)."""
        counters = self._counters
        decided: list[Shaped | None] = [None] * len(items)
        waiting: list[tuple[int, dict[str, Any], bytes, bytes]] = []
        for index, (alert, raw, entry_id) in enumerate(items):
            reason = self._narrowing.reason(alert) if self._narrowing is not None else None
            if reason is None:
                waiting.append((index, alert, raw, entry_id))
                continue
            if counters is not None:
                counters.excluded.inc()
            decided[index] = Shaped(None, None, reason)
        decisions_key = self._decisions.key
        throttle, digests = self._shared_throttle, self._shared_digests
        if throttle is not None and waiting:
            pipeline = self._client.pipeline(transaction=False)
            keys = [
                await throttle.queue(
                    pipeline, alert, decisions_key, self._decision_field(entry_id, "throttle")
                )
                for _, alert, _, entry_id in waiting
            ]
            replies = await pipeline.execute()
            passed = []
            for (index, alert, raw, entry_id), key, reply in zip(
                waiting, keys, replies, strict=True
            ):
                verdict = throttle.verdict(key, reply)
                if not verdict.send:
                    if counters is not None:
                        counters.suppressed.inc()
                    decided[index] = Shaped(None, None, verdict.reason)
                    continue
                if verdict.note is not None:
                    alert = {**alert, SUPPRESSED: verdict.note.as_json()}
                    raw = orjson.dumps(alert)
                passed.append((index, alert, raw, entry_id))
            waiting = passed
        if digests is not None and waiting:
            pipeline = self._client.pipeline(transaction=False)
            groups = [
                await digests.queue(
                    pipeline, alert, raw, decisions_key, self._decision_field(entry_id, "digest")
                )
                for _, alert, raw, entry_id in waiting
            ]
            replies = await pipeline.execute()
            for (index, _, _, _), group, reply in zip(waiting, groups, replies, strict=True):
                digests.collected(reply)
                if counters is not None:
                    counters.digested.inc()
                decided[index] = Shaped(None, None, f"digest: held for group {group}", group)
            waiting = []
        for index, alert, raw, _ in waiting:
            decided[index] = Shaped(alert, raw)
        return [shaped for shaped in decided if shaped is not None]

    def _decision_field(self, entry_id: bytes, step: str) -> str:
        return self._decisions.field(entry_id, f"{self.integration_key}|{step}")

    def start(self, submit: DigestSubmit) -> None:
        if self._shared_digests is not None and self._sender is None:
            self._stopping.clear()
            self._shared_digests.stopped = False
            self._sender = asyncio.create_task(
                self._shared_digests.send_when_due(submit, self._counters, self._stopping),
                name=f"digests {self.integration_key}",
            )

    async def stop(self) -> None:
        self._stopping.set()
        await super().stop()
        if self._shared_digests is not None:
            self._shared_digests.stopped = True

    async def flush_settled(self) -> None:
        """After the deliverers stopped: forget the digests they settled (parked)."""
        if self._shared_digests is not None:
            await self._shared_digests.flush_settled()

    async def send_all(self, submit: DigestSubmit) -> None:
        """Workers have no end of file: open batches stay for the cluster."""

    def persist(self, *, force: bool = False) -> bool:
        """Everything is in Redis already."""
        return True


def shared_stage(
    shaper: Shaper,
    settings: IntegrationSettings,
    *,
    client: redis.Redis,
    prefix: str,
    decisions: Decisions,
    lease_s: float,
    outage: Outage,
) -> Shaper:
    """The worker's stage for a block the single process would shape with ``shaper``."""
    if settings.throttle is None and settings.digest is None:
        return shaper  # a narrowing alone needs nothing shared
    return ClusterShaper(
        shaper.integration_key,
        settings,
        client=client,
        prefix=prefix,
        decisions=decisions,
        lease_s=lease_s,
        outage=outage,
        counters=shaper.counters,
    )
