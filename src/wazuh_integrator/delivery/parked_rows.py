"""Where parked deliveries wait: the one interface the delivery layer parks
into and retries from, whichever backend holds the rows.

- :class:`StoreParkedRows`: the state store's SQLite table, for the single
  process (and every command that runs one).
- ``cluster.parked.RedisParkedRows``: Redis, shared by every cluster worker,
  so that any of them retries a row when it is due.

Parking is synchronous, as recording an outcome is: a row parked is durable
once :meth:`ParkedRows.flush` has returned, which is what the caller waits
for before it lets the alert go (the checkpoint, a stream acknowledgement).
Retrying *claims* due rows: a claimed row is the claimer's until it removes,
reschedules or releases it, so that two retry loops never send one row at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wazuh_integrator.store import ParkedDelivery, ParkState, StateStore

__all__ = ["ParkedRows", "StoreParkedRows"]


class ParkedRows(Protocol):
    """What both backends do; each subclasses it, and so takes :meth:`park`."""

    def park_many(self, integration_key: str, alerts: Sequence[bytes], state: ParkState) -> None:
        """Keep deliveries in one state for a later attempt, in one write
        (durable after :meth:`flush`)."""
        ...

    def park(
        self,
        integration_key: str,
        alert: bytes,
        *,
        attempts: int,
        first_failed_at: float,
        next_attempt_at: float,
        last_error: str,
    ) -> None:
        """Keep one delivery for a later attempt (durable after :meth:`flush`)."""
        state = ParkState(attempts, first_failed_at, next_attempt_at, last_error)
        self.park_many(integration_key, (alert,), state)

    async def flush(self) -> None:
        """Make every row parked so far durable; raises when it cannot."""
        ...

    async def next_due_at(self, integration_key: str) -> float | None:
        """When the earliest row of one integration is due (None: no row)."""
        ...

    async def claim_due(self, integration_key: str, now: float, limit: int) -> list[ParkedDelivery]:
        """Take up to ``limit`` rows due at ``now``, oldest due first."""
        ...

    async def release(self, parked: ParkedDelivery) -> None:
        """Give a claimed row back untried, due when it was."""
        ...

    async def reschedule(
        self, parked: ParkedDelivery, *, attempts: int, next_attempt_at: float, last_error: str
    ) -> None:
        """Give a claimed row back after another failed attempt."""
        ...

    async def remove(self, parked: ParkedDelivery) -> None:
        """Forget a claimed row: delivered or dead-lettered."""
        ...

    def abandon(self, parked: ParkedDelivery) -> None:
        """Let a claimed row go without a word to the backend (the caller can
        no longer give it back): it is retried once its claim lapses."""
        ...

    async def bring_forward(self, integration_key: str, now: float) -> int:
        """Make every row of one integration that was tried before due at
        ``now`` (the receiver is back); how many moved."""
        ...

    async def count(self, integration_key: str) -> int:
        """Rows of one integration, claimed ones included."""
        ...


class StoreParkedRows(ParkedRows):
    """Parked rows in the state store's SQLite table (one process retries them)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def park_many(self, integration_key: str, alerts: Sequence[bytes], state: ParkState) -> None:
        self._store.park_many(integration_key, alerts, state)

    async def flush(self) -> None:
        self._store.flush()

    async def next_due_at(self, integration_key: str) -> float | None:
        return self._store.next_parked_due_at(integration_key)

    async def claim_due(self, integration_key: str, now: float, limit: int) -> list[ParkedDelivery]:
        # One retry loop per integration in one process: a row read is its own.
        return self._store.due_parked(integration_key, now, limit)

    async def release(self, parked: ParkedDelivery) -> None:
        """Nothing to do: a row read here was never taken from the table."""

    async def reschedule(
        self, parked: ParkedDelivery, *, attempts: int, next_attempt_at: float, last_error: str
    ) -> None:
        self._store.reschedule_parked(
            parked.id, attempts=attempts, next_attempt_at=next_attempt_at, last_error=last_error
        )

    async def remove(self, parked: ParkedDelivery) -> None:
        self._store.remove_parked(parked.id)

    def abandon(self, parked: ParkedDelivery) -> None:
        """Nothing to do: a row read here stays due in the table."""

    async def bring_forward(self, integration_key: str, now: float) -> int:
        return self._store.bring_forward_parked(integration_key, now)

    async def count(self, integration_key: str) -> int:
        return self._store.count_parked(integration_key)
