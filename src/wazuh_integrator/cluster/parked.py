"""Parked deliveries in Redis, so that any worker retries them when due and a
worker that dies or is scaled down leaves none behind.

Per integration block, under ``<stream>:parked:<key>:``:

- ``rows``: a hash, row id -> the row (alert, attempts, first failure, last error);
- ``due``: a sorted set, row id -> when it is due (Unix seconds);
- ``claims``: a sorted set, row id -> when its claim lapses (Redis's clock, ms).

Claiming moves due rows from ``due`` to ``claims`` in one Lua script, so two
workers never take one row. A worker keeps the rows it holds claimed by
renewing them every quarter of ``claim_idle``; a row whose claim lapsed (its
worker was killed while retrying it) goes back to ``due`` the next time any
worker looks, and is retried there. Ids come from one counter
(``<stream>:parked:ids``) and the blocks that ever parked are listed in
``<stream>:parked:keys``, for ``status``.

Parking is synchronous for the delivery layer: rows wait in memory until
:meth:`RedisParkedRows.flush` writes them (in one transaction), which the
worker awaits before it acknowledges their stream entries. A worker killed
before that leaves the entries pending: another worker claims and delivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from wazuh_integrator.cluster.connection import connect
from wazuh_integrator.config.models import ClusterSettings
from wazuh_integrator.delivery.parked_rows import ParkedRows
from wazuh_integrator.store import ParkedDelivery, ParkState, StateStore

__all__ = ["RedisParkedRows", "cluster_parked_counts"]

log = logging.getLogger(__name__)

TAKE_OVER_BATCH: Final = 500

# Lua: the time on Redis's clock in milliseconds, then lapsed claims due again.
_NOW_AND_LAPSED = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)
for _, id in ipairs(lapsed) do
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HEXISTS', KEYS[3], id) == 1 then redis.call('ZADD', KEYS[1], ARGV[1], id) end
end
"""

# KEYS: due, claims, rows. ARGV: now (s). Returns {lapsed claims, earliest due or ''}.
_NEXT_DUE = (
    _NOW_AND_LAPSED
    + """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#lapsed, first[2] or ''}
"""
)

# KEYS: due, claims, rows. ARGV: now (s), limit, claim ms.
# Returns {lapsed claims, id1, due1, row1, id2, ...}.
_CLAIM = (
    _NOW_AND_LAPSED
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {#lapsed}
for i = 1, #due, 2 do
  local id = due[i]
  redis.call('ZREM', KEYS[1], id)
  local row = redis.call('HGET', KEYS[3], id)
  if row then
    redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[3]), id)
    out[#out + 1] = id
    out[#out + 1] = due[i + 1]
    out[#out + 1] = row
  end
end
return out
"""
)

# KEYS: claims. ARGV: claim ms, then ids. Renews the claims still held.
_RENEW = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now_ms + tonumber(ARGV[1]), ARGV[i])
end
return 0
"""

# KEYS: due, claims, rows. ARGV: id, due (s), the row anew or ''.
# A claimed row given back: due again, unless it was removed meanwhile.
_GIVE_BACK = """
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then return 0 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

# KEYS: ids counter, due, rows, keys set. ARGV: due (s), row, integration key.
_PARK = """
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], id, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], id)
redis.call('SADD', KEYS[4], ARGV[3])
return id
"""

# KEYS: due, rows. ARGV: now (s). Rows tried before and due later: due now.
_BRING_FORWARD = """
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local moved = 0
for _, id in ipairs(later) do
  local row = redis.call('HGET', KEYS[2], id)
  if row and cjson.decode(row)['attempts'] > 0 then
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    moved = moved + 1
  end
end
return moved
"""


@dataclass(frozen=True)
class _Row:
    integration_key: str
    alert: bytes
    attempts: int
    first_failed_at: float
    next_attempt_at: float
    last_error: str


def _row_json(alert: bytes, attempts: int, first_failed_at: float, last_error: str) -> bytes:
    return orjson.dumps(
        {
            "alert": alert.decode("utf-8", "replace"),
            "attempts": attempts,
            "first_failed_at": first_failed_at,
            "last_error": last_error,
        }
    )


def _parked_of(integration_key: str, row_id: bytes, due: bytes, raw: bytes) -> ParkedDelivery:
    row: dict[str, Any] = orjson.loads(raw)
    return ParkedDelivery(
        id=int(row_id),
        integration_key=integration_key,
        alert=str(row["alert"]).encode(),
        attempts=int(row["attempts"]),
        first_failed_at=float(row["first_failed_at"]),
        next_attempt_at=float(due),
        last_error=str(row["last_error"]),
    )


class RedisParkedRows(ParkedRows):
    """Every worker's parked deliveries, in Redis (a ``ParkedRows``)."""

    def __init__(self, client: redis.Redis, prefix: str, claim_s: float) -> None:
        self._client = client
        self._prefix = f"{prefix}:parked"
        self._claim_ms = max(1000, int(claim_s * 1000))
        self.renew_interval_s = self._claim_ms / 4000
        self._park = client.register_script(_PARK)
        self._next_due = client.register_script(_NEXT_DUE)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._give_back = client.register_script(_GIVE_BACK)
        self._bring_forward = client.register_script(_BRING_FORWARD)
        self._outbox: list[_Row] = []
        self._flushing = asyncio.Lock()
        # Row ids this worker holds claimed, per integration key.
        self._held: dict[str, set[int]] = {}
        self.taken_over = 0

    def _keys(self, integration_key: str) -> list[str]:
        base = f"{self._prefix}:{integration_key}"
        return [f"{base}:due", f"{base}:claims", f"{base}:rows"]

    # -- parking -----------------------------------------------------------

    def park_many(self, integration_key: str, alerts: Sequence[bytes], state: ParkState) -> None:
        self._outbox.extend(
            _Row(
                integration_key,
                alert,
                state.attempts,
                state.first_failed_at,
                state.next_attempt_at,
                state.last_error,
            )
            for alert in alerts
        )

    @property
    def unwritten(self) -> int:
        return len(self._outbox)

    async def flush(self) -> None:
        async with self._flushing:
            rows, self._outbox = self._outbox, []
            if not rows:
                return
            try:
                async with self._client.pipeline(transaction=True) as pipe:
                    for row in rows:
                        due, _claims, stored = self._keys(row.integration_key)
                        body = _row_json(
                            row.alert, row.attempts, row.first_failed_at, row.last_error
                        )
                        await self._park(
                            keys=[f"{self._prefix}:ids", due, stored, f"{self._prefix}:keys"],
                            args=[repr(row.next_attempt_at), body, row.integration_key],
                            client=pipe,
                        )
                    await pipe.execute()
            except BaseException:
                self._outbox[:0] = rows  # written by the next flush; nothing is acknowledged
                raise

    async def take_over(self, store: StateStore, integration_keys: Iterable[str]) -> int:
        """Move the rows the state store holds (parked before this worker ran in
        a cluster) to Redis; how many. A row is deleted locally only once Redis
        has it."""
        moved = 0
        for key in integration_keys:
            while rows := store.due_parked(key, float("inf"), TAKE_OVER_BATCH):
                for row in rows:
                    self.park(
                        key,
                        row.alert,
                        attempts=row.attempts,
                        first_failed_at=row.first_failed_at,
                        next_attempt_at=row.next_attempt_at,
                        last_error=row.last_error,
                    )
                await self.flush()
                for row in rows:
                    store.remove_parked(row.id)
                store.flush()
                moved += len(rows)
        return moved

    # -- retrying ----------------------------------------------------------

    def _note_lapsed(self, integration_key: str, lapsed: int) -> None:
        if lapsed:
            self.taken_over += lapsed
            log.warning(
                "Integration '%s': %d parked deliveries claimed by a worker that stopped"
                " answering are due again; retrying them here.",
                integration_key,
                lapsed,
            )

    async def next_due_at(self, integration_key: str) -> float | None:
        lapsed, first = await self._next_due(keys=self._keys(integration_key), args=[_now_s()])
        self._note_lapsed(integration_key, int(lapsed))
        return float(first) if first else None

    async def claim_due(self, integration_key: str, now: float, limit: int) -> list[ParkedDelivery]:
        reply = await self._claim(
            keys=self._keys(integration_key), args=[repr(now), limit, self._claim_ms]
        )
        self._note_lapsed(integration_key, int(reply[0]))
        claimed = [
            _parked_of(integration_key, reply[i], reply[i + 1], reply[i + 2])
            for i in range(1, len(reply), 3)
        ]
        self._held.setdefault(integration_key, set()).update(row.id for row in claimed)
        return claimed

    async def release(self, parked: ParkedDelivery) -> None:
        await self._hand_back(parked, parked.next_attempt_at, b"")

    async def reschedule(
        self, parked: ParkedDelivery, *, attempts: int, next_attempt_at: float, last_error: str
    ) -> None:
        row = _row_json(parked.alert, attempts, parked.first_failed_at, last_error)
        await self._hand_back(parked, next_attempt_at, row)

    def abandon(self, parked: ParkedDelivery) -> None:
        """Stop renewing the claim of a row this worker no longer holds in
        memory: the claim lapses after claim_idle and the row is retried."""
        self._held.get(parked.integration_key, set()).discard(parked.id)

    async def _hand_back(self, parked: ParkedDelivery, due: float, row: bytes) -> None:
        # Before the command: if Redis does not answer it, the row comes back
        # when its claim lapses.
        self.abandon(parked)
        await self._give_back(
            keys=self._keys(parked.integration_key), args=[parked.id, repr(due), row]
        )

    async def remove(self, parked: ParkedDelivery) -> None:
        due, claims, rows = self._keys(parked.integration_key)
        self.abandon(parked)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zrem(claims, parked.id)
            pipe.zrem(due, parked.id)
            pipe.hdel(rows, parked.id)
            await pipe.execute()

    async def bring_forward(self, integration_key: str, now: float) -> int:
        due, _claims, rows = self._keys(integration_key)
        return int(await self._bring_forward(keys=[due, rows], args=[repr(now)]))

    async def count(self, integration_key: str) -> int:
        return int(await self._client.hlen(self._keys(integration_key)[2]))

    # -- the claims this worker holds ---------------------------------------

    async def renew_claims(self) -> None:
        for key, ids in self._held.items():
            if ids:
                await self._renew(keys=[self._keys(key)[1]], args=[self._claim_ms, *ids])

    async def keep_claims(self, stop: asyncio.Event) -> None:
        """Until ``stop``: renew the claims held here, so that no other worker
        takes a row this one is still trying (Redis errors wait for the next turn)."""
        while not stop.is_set():
            await asyncio.sleep(self.renew_interval_s)
            with contextlib.suppress(RedisError, OSError):
                await self.renew_claims()

    async def release_held(self) -> int:
        """On stopping: every row still claimed here is due again at once."""
        released = 0
        now = float(_now_s())
        for key, ids in self._held.items():
            for row_id in list(ids):
                await self._give_back(keys=self._keys(key), args=[row_id, repr(now), b""])
                released += 1
            ids.clear()
        return released


def _now_s() -> str:
    return repr(time.time())


async def _parked_counts(cluster: ClusterSettings) -> dict[str, int]:
    client = connect(cluster)
    try:
        prefix = f"{cluster.stream}:parked"
        keys = sorted(
            member.decode() if isinstance(member, bytes) else str(member)
            for member in await client.smembers(f"{prefix}:keys")
        )
        counts = {key: int(await client.hlen(f"{prefix}:{key}:rows")) for key in keys}
        return {key: count for key, count in counts.items() if count}
    finally:
        await client.aclose()


def cluster_parked_counts(cluster: ClusterSettings) -> dict[str, int]:
    """Parked deliveries per block across the cluster, for ``status``."""
    return asyncio.run(_parked_counts(cluster))
