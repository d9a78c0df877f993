"""The cluster's dead letters, in Redis, so that ``dead-letter`` on any node
lists, shows, replays and purges what every worker gave up.

A worker gives up as the single process does, into its own state store; a
shipper then copies each letter to Redis and deletes it locally. The copy is
idempotent (a letter is known by its origin: the worker's database and its
local id), so a worker that dies between the copy and the delete, or two
workers sharing one database, never store a letter twice, and a letter is
never deleted locally before Redis has it.

Replay appends the letter's alert to the stream again, marked for its one
integration block: any worker that has the block delivers it, filters
skipped, as ``dead-letter replay`` does in the single process.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from wazuh_integrator.cluster.connection import Outage, connect
from wazuh_integrator.cluster.stream import FIELD_ALERT, FIELD_NODE, FIELD_ONLY
from wazuh_integrator.config.models import ClusterSettings
from wazuh_integrator.deadletters import (
    Selection,
    SelectionError,
    _check_selection,
    _matches,
    print_letter,
    print_letters,
)
from wazuh_integrator.store import DeadLetter, StateStore

__all__ = ["DeadLetterShipper", "RedisDeadLetters", "cluster_dead_letter_command"]

log = logging.getLogger(__name__)

SHIP_INTERVAL_S = 1.0
SHIP_BATCH = 500

# KEYS: origins hash, id counter, letters hash. ARGV: origin, the letter's JSON.
# Returns the letter's cluster id, the same one however often it is shipped.
_ADD = """
local known = redis.call('HGET', KEYS[1], ARGV[1])
if known then return tonumber(known) end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[3], id, ARGV[2])
return id
"""


def _letter_json(letter: DeadLetter, origin: str) -> bytes:
    return orjson.dumps(
        {
            "origin": origin,
            "integration_key": letter.integration_key,
            "integration_name": letter.integration_name,
            "alert": letter.alert.decode("utf-8", "replace"),
            "attempts": letter.attempts,
            "first_failed_at": letter.first_failed_at,
            "failed_at": letter.failed_at,
            "last_error": letter.last_error,
            "status": letter.status,
        }
    )


def _letter_of(letter_id: int, raw: bytes) -> tuple[DeadLetter, str]:
    record: dict[str, Any] = orjson.loads(raw)
    letter = DeadLetter(
        id=letter_id,
        integration_key=str(record["integration_key"]),
        integration_name=str(record["integration_name"]),
        alert=str(record["alert"]).encode(),
        attempts=int(record["attempts"]),
        first_failed_at=float(record["first_failed_at"]),
        failed_at=float(record["failed_at"]),
        last_error=str(record["last_error"]),
        status=record["status"],
    )
    return letter, str(record["origin"])


class RedisDeadLetters:
    """The dead letters of every worker, kept under ``<stream>:dead-letters``."""

    def __init__(self, client: redis.Redis, cluster: ClusterSettings) -> None:
        self._client = client
        self._cluster = cluster
        prefix = f"{cluster.stream}:dead-letters"
        self._letters, self._origins, self._ids = prefix, f"{prefix}:origins", f"{prefix}:ids"
        self._add = client.register_script(_ADD)

    async def add(self, letter: DeadLetter, origin: str) -> int:
        keys = [self._origins, self._ids, self._letters]
        return int(await self._add(keys=keys, args=[origin, _letter_json(letter, origin)]))

    async def all(self) -> list[tuple[DeadLetter, str]]:
        stored = await self._client.hgetall(self._letters)
        letters = [
            _letter_of(int(letter_id), raw if isinstance(raw, bytes) else raw.encode())
            for letter_id, raw in stored.items()
        ]
        return sorted(letters, key=lambda pair: pair[0].id)

    async def delete(self, letters: Sequence[tuple[DeadLetter, str]]) -> int:
        if not letters:
            return 0
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._letters, *(letter.id for letter, _ in letters))
            pipe.hdel(self._origins, *(origin for _, origin in letters))
            deleted, _ = await pipe.execute()
        return int(deleted)

    async def replay(self, letters: Sequence[tuple[DeadLetter, str]]) -> int:
        """Append each letter's alert to the stream for its block, then forget the letter."""
        if not letters:
            return 0
        async with self._client.pipeline(transaction=True) as pipe:
            for letter, _ in letters:
                pipe.xadd(
                    self._cluster.stream,
                    {
                        FIELD_ALERT: letter.alert,
                        FIELD_NODE: b"",
                        FIELD_ONLY: letter.integration_key.encode(),
                    },
                    maxlen=self._cluster.max_length,
                    approximate=True,
                )
            pipe.hdel(self._letters, *(letter.id for letter, _ in letters))
            pipe.hdel(self._origins, *(origin for _, origin in letters))
            await pipe.execute()
        return len(letters)


class DeadLetterShipper:
    """Moves a worker's dead letters from its state store to Redis."""

    def __init__(self, store: StateStore, letters: RedisDeadLetters, outage: Outage) -> None:
        self._store = store
        self._letters = letters
        self._outage = outage
        self._origin = f"{store.path.resolve()}#"
        self.shipped = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(SHIP_INTERVAL_S)
            try:
                await self.ship()
            except (RedisError, OSError) as error:
                self._outage.failed(error)  # they stay in the state store meanwhile

    async def ship(self) -> int:
        letters = self._store.dead_letters(limit=SHIP_BATCH)
        for letter in letters:
            await self._letters.add(letter, f"{self._origin}{letter.id}")
        if letters:
            self._store.delete_dead_letters([letter.id for letter in letters])
            self._store.flush()
            self.shipped += len(letters)
            log.info("%d dead letter(s) moved to the cluster's dead letters.", len(letters))
        return len(letters)


def cluster_dead_letter_command(
    action: str,
    cluster: ClusterSettings,
    selection: Selection,
    *,
    as_json: bool,
    limit: int,
    dry_run: bool,
    known_integrations: frozenset[str],
    out: TextIO = sys.stdout,
) -> int:
    """``dead-letter`` against the cluster's letters (the CLI's entry with [cluster])."""
    if action == "show" and len(selection.ids) != 1:
        print("error: show takes exactly one dead letter id", file=sys.stderr)
        return 2
    if action in ("replay", "purge") and selection.is_empty:
        print("error: name dead letter ids, --integration, or --all", file=sys.stderr)
        return 2
    if action not in ("list", "show", "replay", "purge"):
        print(f"error: unknown action {action!r}", file=sys.stderr)
        return 2
    return asyncio.run(
        _command(
            action,
            cluster,
            selection,
            as_json=as_json,
            limit=limit,
            dry_run=dry_run,
            known=known_integrations,
            out=out,
        )
    )


async def _command(
    action: str,
    cluster: ClusterSettings,
    selection: Selection,
    *,
    as_json: bool,
    limit: int,
    dry_run: bool,
    known: frozenset[str],
    out: TextIO,
) -> int:
    client = connect(cluster)
    try:
        store = RedisDeadLetters(client, cluster)
        stored = await store.all()
        letters = [letter for letter, _ in stored]
        if selection.ids or selection.integration is not None:
            _check_selection(letters, selection, known)
        if action == "list":
            chosen = [letter for letter in letters if _matches(letter, selection)]
            return print_letters(chosen, as_json=as_json, limit=limit, out=out)
        if action == "show":
            return print_letter(letters, selection.ids[0], out)
        picked = [pair for pair in stored if _matches(pair[0], selection)]
        ids = ", ".join(str(letter.id) for letter, _ in picked)
        if not picked:
            print("No dead letter matches: nothing done.", file=out)
            return 0
        done = "queued for delivery" if action == "replay" else "deleted"
        if dry_run:
            print(f"Dry run: {len(picked)} dead letter(s) would be {done}: {ids}", file=out)
            return 0
        if action == "replay":
            count = await store.replay(picked)
            print(
                f"{count} dead letter(s) queued for delivery: appended to stream"
                f" '{cluster.stream}', where the workers deliver them now.",
                file=out,
            )
        else:
            count = await store.delete(picked)
            print(f"{count} dead letter(s) deleted from the cluster.", file=out)
        return 0
    except SelectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(f"error: Redis: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()
