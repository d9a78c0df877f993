"""The floods stage of a cluster worker: throttle windows and digest batches
kept in Redis, so that every worker of the group counts them together.

The stage runs in the worker, after ``XREADGROUP`` and the block's stock
filters, on the alert the worker is about to deliver (see docs/cluster.md).
Every read-modify-write is one Lua script, on Redis's clock:

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

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: 1 the throttle key's window (hash), 2 the decisions hash.
# ARGV: 1 the decision's field, 2 limit, 3 window in ms.
# Returns {'new' or 'again', decision}: 'sent:<suppressed>:<since ms>' or 'held:<seen>'.
_THROTTLE = (
    """
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then return {'again', prior} end
"""
    + _NOW_MS
    + """
local limit = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local w = redis.call('HMGET', KEYS[1], 'started', 'seen', 'sent', 'suppressed', 'since')
local started = tonumber(w[1])
local seen = tonumber(w[2]) or 0
local sent = tonumber(w[3]) or 0
local suppressed = tonumber(w[4]) or 0
local since = tonumber(w[5]) or 0
if not started or now - started >= period then
  started = now
  seen = 0
  sent = 0
end
seen = seen + 1
local decision
if sent < limit then
  sent = sent + 1
  decision = 'sent:' .. suppressed .. ':' .. since
  suppressed = 0
  since = 0
else
  suppressed = suppressed + 1
  if since == 0 then since = now end
  decision = 'held:' .. seen
end
redis.call('HSET', KEYS[1], 'started', started, 'seen', seen, 'sent', sent,
           'suppressed', suppressed, 'since', since)
if suppressed > 0 then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], period)
end
redis.call('HSET', KEYS[2], ARGV[1], decision)
return {'new', decision}
"""
)

# KEYS: 1 the group's open batch (hash), 2 its listed alerts, 3 the block's due
# groups (zset), 4 the group's last flush time, 5 the decisions hash, 6 batch ids.
# ARGV: 1 the decision's field, 2 group key, 3 group_wait ms, 4 group_interval
# ms, 5 max_alerts, 6 the alert, 7 the group's fields (JSON).
# Returns -1 when the entry was counted before, -2 when it joined an open
# batch, else the milliseconds until the batch it opened is due.
_COLLECT = (
    """
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 1 then return -1 end
"""
    + _NOW_MS
    + """
local opened = -2
if redis.call('EXISTS', KEYS[1]) == 0 then
  local send_at = now + tonumber(ARGV[3])
  local flushed = tonumber(redis.call('GET', KEYS[4]))
  if flushed then send_at = math.max(send_at, flushed + tonumber(ARGV[4])) end
  local id = redis.call('INCR', KEYS[6])
  redis.call('HSET', KEYS[1], 'id', id, 'fields', ARGV[7], 'first', now, 'count', 0)
  redis.call('ZADD', KEYS[3], send_at, ARGV[2])
  opened = send_at - now
end
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last', now)
if redis.call('LLEN', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('RPUSH', KEYS[2], ARGV[6])
end
redis.call('HSET', KEYS[5], ARGV[1], 'digest')
return opened
"""
)

# KEYS: 1 the group's open batch, 2 its alerts, 3 due groups, 4 the group's
# last flush time, 5 the block's sending hash, 6 its leases (zset).
# ARGV: 1 group key, 2 group_interval ms, 3 lease ms.
# Returns {'wait', ms}, {'gone'} (another worker closed it) or {'send', id, batch}.
_CLOSE = (
    _NOW_MS
    + """
local send_at = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not send_at then return {'gone'} end
if tonumber(send_at) > now then return {'wait', tonumber(send_at) - now} end
redis.call('ZREM', KEYS[3], ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'id', 'fields', 'first', 'last', 'count')
if not b[1] then return {'gone'} end
local batch = cjson.encode({group = ARGV[1], fields = b[2], first = tonumber(b[3]),
  last = tonumber(b[4]), count = tonumber(b[5]),
  alerts = redis.call('LRANGE', KEYS[2], 0, -1)})
redis.call('HSET', KEYS[5], b[1], batch)
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[3]), b[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[4], now, 'PX', math.max(1, tonumber(ARGV[2])))
return {'send', b[1], batch}
"""
)

# KEYS: 1 the block's sending hash, 2 its leases. ARGV: 1 lease ms, then the
# ids this worker is sending. Renews those leases; takes over the expired ones
# of other workers and returns them as id, batch, id, batch, ...
_LEASES = (
    _NOW_MS
    + """
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[2], 'XX', now + lease, ARGV[i])
end
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 20)) do
  local batch = redis.call('HGET', KEYS[1], id)
  if batch then
    redis.call('ZADD', KEYS[2], now + lease, id)
    table.insert(taken, id)
    table.insert(taken, batch)
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return taken
"""
)


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
        self._script = client.register_script(_THROTTLE)
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
        self._collect = client.register_script(_COLLECT)
        self._close = client.register_script(_CLOSE)
        self._leases = client.register_script(_LEASES)
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

    def persist(self) -> None:
        """Everything is in Redis already."""


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
