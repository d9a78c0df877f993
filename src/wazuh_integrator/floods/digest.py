"""``[integrations.<name>.digest]``: Alertmanager's grouping for Wazuh alerts.

Alerts are grouped by the values of ``group_by``. A new group's first batch
is sent ``group_wait`` after its first alert; while alerts keep coming, one
batch per ``group_interval``. A batch lists its first ``max_alerts`` alerts
and counts all of them.

Nothing collected is lost by a crash: with a store, each batch's count and
listed alerts are written to it when an alert joins (only then may the
checkpoint pass the alert's line), and a batch is deleted only once its digest
is delivered, parked or dead-lettered. Batches sent but not settled before a
crash are sent again at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from wazuh_integrator.config.models import DigestSettings
from wazuh_integrator.floods.fields import FieldPath, describe, key_text
from wazuh_integrator.floods.marks import Mark
from wazuh_integrator.integrations.flood_marks import DIGEST, iso_time
from wazuh_integrator.store import StoredBatch, StoredGroup

__all__ = ["DigestCollector", "DigestStore", "ReadyDigest", "StoredBatch", "StoredGroup"]


class DigestStore(Protocol):
    def digest_state(self, integration_key: str) -> tuple[list[StoredGroup], list[StoredBatch]]: ...

    def digest_new_batch(
        self,
        integration_key: str,
        group_key: str,
        fields: bytes,
        first_at: float,
        send_at: float,
    ) -> int: ...

    def digest_add_alert(self, batch_id: int, alert: bytes) -> None: ...

    def digest_count(
        self, batch_id: int, count: int, last_at: float, through: Mark | None
    ) -> None: ...

    def digest_flushed(
        self,
        integration_key: str,
        batch_id: int,
        group_key: str,
        flushed_at: float,
        through: Mark | None,
    ) -> None: ...

    def digest_settled(self, batch_id: int) -> None: ...

    def digest_forget_groups(self, integration_key: str, group_keys: list[str]) -> None: ...


@dataclass
class _Batch:
    id: int
    fields: dict[str, Any]
    first_at: float
    last_at: float
    send_at: float
    count: int = 0
    alerts: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass
class _Group:
    last_flush_at: float | None = None
    through: Mark | None = None
    batch: _Batch | None = None


@dataclass(frozen=True)
class ReadyDigest:
    """A digest to send; ``batch_id`` is given back to :meth:`DigestCollector.settled`."""

    batch_id: int
    group_key: str
    document: dict[str, Any]


class DigestCollector:
    """One block's digests."""

    def __init__(
        self,
        settings: DigestSettings,
        *,
        integration_key: str = "",
        store: DigestStore | None = None,
    ) -> None:
        self.settings = settings
        self._paths = tuple(FieldPath(dotted) for dotted in settings.group_by)
        self._integration_key = integration_key
        self._store = store
        self._groups: dict[str, _Group] = {}
        self._next_id = 0  # batch ids without a store
        self._unsettled: list[ReadyDigest] = []  # sent before a restart, not settled
        self.batches_opened = 0  # a new batch may be due before every other one
        if store is not None:
            self._restore(store)

    def _restore(self, store: DigestStore) -> None:
        groups, batches = store.digest_state(self._integration_key)
        for stored in groups:
            self._groups[stored.group_key] = _Group(stored.last_flush_at, stored.through)
        for stored_batch in batches:
            batch = _Batch(
                id=stored_batch.id,
                fields=stored_batch.fields,
                first_at=stored_batch.first_at,
                last_at=stored_batch.last_at,
                send_at=stored_batch.send_at,
                count=stored_batch.count,
                alerts=[orjson.loads(raw) for raw in stored_batch.alerts],
            )
            if stored_batch.flushed:
                self._unsettled.append(self._ready(stored_batch.group_key, batch))
                continue
            group = self._groups.setdefault(stored_batch.group_key, _Group())
            group.batch = batch
            if stored_batch.through is not None and not stored_batch.through.at_or_before(
                group.through
            ):
                group.through = stored_batch.through

    def group_of(self, alert: Mapping[str, Any]) -> str:
        return key_text(self._paths, alert)

    def collect(
        self, alert: Mapping[str, Any], raw: bytes, now: float, mark: Mark | None = None
    ) -> str:
        """Hold ``alert`` for its group's next digest; returns the group key."""
        key = key_text(self._paths, alert)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        elif mark is not None and mark.at_or_before(group.through):
            return key  # counted before a restart
        batch = group.batch
        if batch is None:
            send_at = now + self.settings.group_wait_s
            if group.last_flush_at is not None:
                send_at = max(send_at, group.last_flush_at + self.settings.group_interval_s)
            fields = describe(self._paths, alert)
            batch_id = self._new_batch_id(key, fields, now, send_at)
            batch = group.batch = _Batch(batch_id, fields, now, now, send_at)
            self.batches_opened += 1
        batch.count += 1
        batch.last_at = now
        if mark is not None:
            group.through = mark
        if len(batch.alerts) < self.settings.max_alerts:
            batch.alerts.append(alert)
            if self._store is not None:
                self._store.digest_add_alert(batch.id, raw)
        if self._store is not None:
            self._store.digest_count(batch.id, batch.count, now, group.through)
        return key

    def _new_batch_id(self, key: str, fields: dict[str, Any], now: float, send_at: float) -> int:
        if self._store is None:
            self._next_id += 1
            return self._next_id
        return self._store.digest_new_batch(
            self._integration_key, key, orjson.dumps(fields), now, send_at
        )

    def next_due_at(self) -> float | None:
        """When the earliest batch is due (now for digests left from a restart)."""
        if self._unsettled:
            return float("-inf")
        due = [group.batch.send_at for group in self._groups.values() if group.batch]
        return min(due) if due else None

    def take_due(self, now: float) -> list[ReadyDigest]:
        """The digests due at ``now``, their batches closed."""
        ready, self._unsettled = self._unsettled, []
        for key, group in self._groups.items():
            if group.batch is not None and group.batch.send_at <= now:
                ready.append(self._close(key, group, now))
        self._forget_quiet_groups(now)
        return ready

    def take_all(self, now: float) -> list[ReadyDigest]:
        """Every pending digest, due or not (``run --once`` at the end of the file)."""
        ready, self._unsettled = self._unsettled, []
        for key, group in self._groups.items():
            if group.batch is not None:
                ready.append(self._close(key, group, now))
        return ready

    def pending(self) -> dict[str, int]:
        """Alerts held per group, not yet in a digest."""
        return {key: group.batch.count for key, group in self._groups.items() if group.batch}

    def settled(self, batch_id: int) -> None:
        """The digest of ``batch_id`` was delivered, parked or dead-lettered."""
        if self._store is not None:
            self._store.digest_settled(batch_id)

    def _close(self, key: str, group: _Group, now: float) -> ReadyDigest:
        batch = group.batch
        assert batch is not None
        group.batch = None
        group.last_flush_at = now
        if self._store is not None:
            self._store.digest_flushed(self._integration_key, batch.id, key, now, group.through)
        return self._ready(key, batch)

    def _ready(self, key: str, batch: _Batch) -> ReadyDigest:
        document = {
            DIGEST: {
                "group": key,
                "fields": batch.fields,
                "integration": self._integration_key,
            },
            "count": batch.count,
            "first": iso_time(batch.first_at),
            "last": iso_time(batch.last_at),
            "alerts": list(batch.alerts),
        }
        return ReadyDigest(batch.id, key, document)

    def _forget_quiet_groups(self, now: float) -> None:
        # A group quiet for a whole interval starts afresh with group_wait anyway.
        quiet = [
            key
            for key, group in self._groups.items()
            if group.batch is None
            and group.last_flush_at is not None
            and now - group.last_flush_at
            >= self.settings.group_interval_s + self.settings.group_wait_s
        ]
        for key in quiet:
            del self._groups[key]
        if quiet and self._store is not None:
            self._store.digest_forget_groups(self._integration_key, quiet)
