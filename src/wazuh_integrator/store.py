"""The daemon's durable state in one SQLite file: the alerts.json checkpoint,
deliveries parked for a later retry, dead letters, and the lookup cache.

The store is used from the daemon's single asyncio thread, so plain
:mod:`sqlite3` calls are fine as long as each stays small (every query below
is served by an index). Writes are batched: they join one open transaction
that is committed at most every ``commit_interval_s`` seconds, which keeps a
busy daemon at a few commits a second however many alerts it handles.

Because the checkpoint and the parked deliveries live in the same write-ahead
log, a committed checkpoint always implies that every row parked before it is
committed too: the pipeline's order *park → flush → checkpoint* holds even
across a power cut.

Other processes (the ``dead-letter`` commands of the CLI) open the same file
with :meth:`StateStore.open_readonly` while the daemon runs; WAL mode lets
them read without blocking it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson

from wazuh_integrator.errors import IntegratorError

__all__ = [
    "SCHEMA_VERSION",
    "Checkpoint",
    "DeadLetter",
    "ForeignStateError",
    "Mark",
    "ParkState",
    "ParkedDelivery",
    "StateReader",
    "StateStore",
    "StoreError",
    "StoredBatch",
    "StoredGroup",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
ALERTS_STREAM: Final = "alerts"
BUSY_TIMEOUT_MS: Final = 5000
# SQLite builds older than 3.32 accept at most 999 bound parameters.
_MAX_IDS_PER_QUERY: Final = 500

_SCHEMA: Final = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE checkpoint (
    stream     TEXT PRIMARY KEY,
    device     INTEGER NOT NULL,
    inode      INTEGER NOT NULL,
    offset     INTEGER NOT NULL,
    path       TEXT NOT NULL,
    updated_at REAL NOT NULL,
    head       TEXT
);
CREATE TABLE parked (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_key TEXT NOT NULL,
    alert           BLOB NOT NULL,
    attempts        INTEGER NOT NULL,
    first_failed_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT NOT NULL
);
CREATE INDEX parked_due ON parked (integration_key, next_attempt_at);
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_key  TEXT NOT NULL,
    integration_name TEXT NOT NULL,
    alert            BLOB NOT NULL,
    attempts         INTEGER NOT NULL,
    first_failed_at  REAL NOT NULL,
    failed_at        REAL NOT NULL,
    last_error       TEXT NOT NULL,
    status           INTEGER
);
CREATE INDEX dead_letters_by_key ON dead_letters (integration_key, id);
CREATE TABLE cache (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX cache_expiry ON cache (expires_at);
"""

# The floods stage's tables (docs/floods.md), created in databases of any age.
_FLOODS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS throttle_windows (
    integration_key TEXT NOT NULL,
    key             TEXT NOT NULL,
    state           BLOB NOT NULL,
    PRIMARY KEY (integration_key, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digest_groups (
    integration_key TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    last_flush_at   REAL NOT NULL,
    through         BLOB,
    PRIMARY KEY (integration_key, group_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digest_batches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_key TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    fields          BLOB NOT NULL,
    first_at        REAL NOT NULL,
    last_at         REAL NOT NULL,
    send_at         REAL NOT NULL,
    count           INTEGER NOT NULL,
    through         BLOB,
    flushed         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS digest_batches_by_key ON digest_batches (integration_key, id);
CREATE TABLE IF NOT EXISTS digest_alerts (
    batch_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    alert    BLOB NOT NULL,
    PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;
"""

_PARKED_COLUMNS: Final = (
    "id, integration_key, alert, attempts, first_failed_at, next_attempt_at, last_error"
)
_DEAD_LETTER_COLUMNS: Final = (
    "id, integration_key, integration_name, alert, attempts, first_failed_at, failed_at,"
    " last_error, status"
)


class StoreError(IntegratorError):
    """The state database cannot be opened or is not one this program understands."""


class ForeignStateError(StoreError):
    """The state database is not one this program can use, whatever it retries:
    not ours, or written by a newer version."""


@dataclass(frozen=True)
class Checkpoint:
    """Where reading alerts.json resumes: the file's identity and a byte offset."""

    device: int
    inode: int
    offset: int
    path: str
    # source.fingerprint's "<n>:<sha256>" of the file's first bytes, or None.
    head: str | None = None


class Mark(NamedTuple):
    """Where a line of alerts.json ends (see wazuh_integrator.floods.marks)."""

    device: int
    inode: int
    offset: int

    def at_or_before(self, other: Mark | None) -> bool:
        """Whether this line comes no later than ``other`` in the same file.

        Lines of different files are never compared: after a rotation the
        stage counts a line again rather than risk dropping one.
        """
        return (
            other is not None
            and self.device == other.device
            and self.inode == other.inode
            and self.offset <= other.offset
        )


@dataclass
class StoredBatch:
    """A batch as the store keeps it."""

    id: int
    group_key: str
    fields: dict[str, Any]
    first_at: float
    last_at: float
    send_at: float
    count: int
    through: Mark | None
    flushed: bool
    alerts: list[bytes]


@dataclass(frozen=True)
class StoredGroup:
    group_key: str
    last_flush_at: float
    through: Mark | None


@dataclass(frozen=True)
class ParkState:
    """Where parked deliveries stand: what several rows parked together share."""

    attempts: int
    first_failed_at: float
    next_attempt_at: float
    last_error: str


@dataclass(frozen=True)
class ParkedDelivery:
    """A delivery that failed and waits in the store for its next attempt."""

    id: int
    integration_key: str
    alert: bytes
    attempts: int
    first_failed_at: float
    next_attempt_at: float
    last_error: str


@dataclass(frozen=True)
class DeadLetter:
    """A delivery given up for good, kept for inspection and replay."""

    id: int
    integration_key: str
    integration_name: str
    alert: bytes
    attempts: int
    first_failed_at: float
    failed_at: float
    last_error: str
    status: int | None


def _parked(row: Sequence[Any]) -> ParkedDelivery:
    return ParkedDelivery(
        id=row[0],
        integration_key=row[1],
        alert=bytes(row[2]),
        attempts=row[3],
        first_failed_at=row[4],
        next_attempt_at=row[5],
        last_error=row[6],
    )


def _dead_letter(row: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        id=row[0],
        integration_key=row[1],
        integration_name=row[2],
        alert=bytes(row[3]),
        attempts=row[4],
        first_failed_at=row[5],
        failed_at=row[6],
        last_error=row[7],
        status=row[8],
    )


def _identity_of(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _mark(value: bytes | None) -> Mark | None:
    return None if value is None else Mark(*orjson.loads(value))


def _mark_bytes(mark: Mark | None) -> bytes | None:
    return None if mark is None else orjson.dumps(list(mark))


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _MAX_IDS_PER_QUERY):
        yield ids[start : start + _MAX_IDS_PER_QUERY]


def _dead_letter_filter(
    ids: Sequence[int] | None, integration_key: str | None
) -> Iterator[tuple[str, list[Any]]]:
    """WHERE clauses (with their parameters) selecting dead letters by id and key.

    Yields one clause per chunk of ids so that no statement exceeds SQLite's
    parameter limit; with no ids, one clause covering every id.
    """
    key_clause = "1" if integration_key is None else "integration_key = ?"
    key_params: list[Any] = [] if integration_key is None else [integration_key]
    if ids is None:
        yield key_clause, key_params
        return
    for chunk in _chunks(list(dict.fromkeys(ids))):
        marks = ", ".join("?" * len(chunk))
        yield f"id IN ({marks}) AND {key_clause}", [*chunk, *key_params]


class StateReader:
    """Read-only access to a state database, safe while the daemon writes it."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        _connection: sqlite3.Connection | None = None,
    ) -> None:
        self.path = path
        self._clock = clock
        if _connection is None:
            _connection = self._connect_readonly(path)
        self._db = _connection
        try:
            self._check_schema()
        except BaseException:
            self._db.close()
            raise

    @staticmethod
    def _connect_readonly(path: Path) -> sqlite3.Connection:
        if not path.exists():
            raise StoreError(f"{path}: no state database here (has the daemon run yet?)")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as error:
            raise StoreError(f"{path}: cannot open the state database: {error}") from error
        return db

    def _check_schema(self) -> None:
        version = self._schema_version()
        if version is None:
            raise ForeignStateError(f"{self.path}: not a wazuh-integrator state database")
        if version > SCHEMA_VERSION:
            raise ForeignStateError(
                f"{self.path}: state schema version {version} is newer than this program"
                f" understands ({SCHEMA_VERSION}); upgrade wazuh-integrator"
            )

    def _schema_version(self) -> int | None:
        try:
            table = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if table is None:
                return None
            row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: cannot read the state database: {error}") from error
        return int(row[0]) if row and row[0] is not None else None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # checkpoint

    def load_checkpoint(self) -> Checkpoint | None:
        try:
            row = self._db.execute(
                "SELECT device, inode, offset, path, head FROM checkpoint WHERE stream = ?",
                (ALERTS_STREAM,),
            ).fetchone()
        except sqlite3.OperationalError:  # a database the daemon has not opened since 0.1
            row = self._db.execute(
                "SELECT device, inode, offset, path, NULL FROM checkpoint WHERE stream = ?",
                (ALERTS_STREAM,),
            ).fetchone()
        if row is None:
            return None
        return Checkpoint(device=row[0], inode=row[1], offset=row[2], path=row[3], head=row[4])

    # parked deliveries

    def due_parked(self, integration_key: str, now: float, limit: int) -> list[ParkedDelivery]:
        """The parked deliveries of one integration whose time has come, oldest due first."""
        rows = self._db.execute(
            f"SELECT {_PARKED_COLUMNS} FROM parked"
            " WHERE integration_key = ? AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (integration_key, now, limit),
        ).fetchall()
        return [_parked(row) for row in rows]

    def next_parked_due_at(self, integration_key: str) -> float | None:
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM parked WHERE integration_key = ?",
            (integration_key,),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def count_parked(self, integration_key: str | None = None) -> int:
        if integration_key is None:
            row = self._db.execute("SELECT COUNT(*) FROM parked").fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM parked WHERE integration_key = ?", (integration_key,)
            ).fetchone()
        return int(row[0])

    def parked_counts(self) -> dict[str, int]:
        """Parked deliveries per integration key (to set gauges at start)."""
        rows = self._db.execute(
            "SELECT integration_key, COUNT(*) FROM parked GROUP BY integration_key"
        ).fetchall()
        return {key: int(count) for key, count in rows}

    # dead letters

    def dead_letters(
        self, integration_key: str | None = None, *, limit: int = 100, since_id: int = 0
    ) -> list[DeadLetter]:
        """Dead letters with an id above ``since_id``, oldest first (page with the last id)."""
        if integration_key is None:
            rows = self._db.execute(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?",
                (since_id, limit),
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"
                " WHERE integration_key = ? AND id > ? ORDER BY id LIMIT ?",
                (integration_key, since_id, limit),
            ).fetchall()
        return [_dead_letter(row) for row in rows]

    def count_dead_letters(self, integration_key: str | None = None) -> int:
        if integration_key is None:
            row = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM dead_letters WHERE integration_key = ?", (integration_key,)
            ).fetchone()
        return int(row[0])

    def dead_letter_counts(self) -> dict[str, int]:
        """Dead letters per integration key (to set gauges at start)."""
        rows = self._db.execute(
            "SELECT integration_key, COUNT(*) FROM dead_letters GROUP BY integration_key"
        ).fetchall()
        return {key: int(count) for key, count in rows}

    def newest_dead_letter_errors(self) -> dict[str, tuple[float, str]]:
        """Per integration key, when its newest dead letter failed and why (for ``status``)."""
        rows = self._db.execute(
            "SELECT integration_key, failed_at, last_error FROM dead_letters WHERE id IN"
            " (SELECT MAX(id) FROM dead_letters GROUP BY integration_key)"
        ).fetchall()
        return {key: (float(failed_at), str(error)) for key, failed_at, error in rows}

    # lookup cache

    def get(self, namespace: str, key: str) -> Any | None:
        """The cached value, or None when absent or expired."""
        row = self._db.execute(
            "SELECT value FROM cache WHERE namespace = ? AND key = ? AND expires_at > ?",
            (namespace, key, self._clock()),
        ).fetchone()
        return None if row is None else orjson.loads(row[0])


class StateStore(StateReader):
    """The daemon's read-write handle on the state database.

    Also a :class:`~wazuh_integrator.integrations.base.LookupCache`. Writes are
    durable once committed: at the latest ``commit_interval_s`` after them when
    an event loop runs (a commit is scheduled on it), at the next write or
    :meth:`maybe_commit` after that interval otherwise, and at once on
    :meth:`flush` or :meth:`close`.
    """

    def __init__(
        self,
        path: Path,
        *,
        commit_interval_s: float = 0.2,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._commit_interval_s = commit_interval_s
        self._monotonic = monotonic
        self._pending_checkpoint: Checkpoint | None = None
        self._writes_lost: str | None = None
        self._scheduled_commit: asyncio.TimerHandle | None = None
        self._closed = False
        db = self._connect(path)
        try:
            self._prepare(db, path)
        except BaseException:
            db.close()
            raise
        super().__init__(path, clock=clock, _connection=db)
        self._last_commit = monotonic()
        self._identity = _identity_of(path)

    @classmethod
    def open_readonly(cls, path: Path, *, clock: Callable[[], float] = time.time) -> StateReader:
        """A read-only handle for another process (the CLI) while the daemon runs."""
        return StateReader(path, clock=clock)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # Alerts carry hostnames, users and logs: the file (and, after it,
            # its -wal and -shm files) is readable by the daemon's user only.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            db = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"{path}: cannot open the state database: {error}") from error
        return db

    @classmethod
    def _prepare(cls, db: sqlite3.Connection, path: Path) -> None:
        """WAL mode and the schema. Two processes opening one new file at once
        (a reader and a worker started together) can get SQLITE_BUSY from the
        switch to WAL without the busy handler waiting (SQLite refuses to wait
        where waiting could deadlock), so a lock is tried again for a while."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                cls._prepare_once(db, path)
                return
            except StoreError as error:
                locked = isinstance(error.__cause__, sqlite3.OperationalError) and (
                    "locked" in str(error.__cause__) or "busy" in str(error.__cause__)
                )
                if not locked or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    @staticmethod
    def _prepare_once(db: sqlite3.Connection, path: Path) -> None:
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch the state database to WAL mode")
            # In WAL mode NORMAL survives a crash of the process; a power cut may
            # lose the last commits, but never out of order.
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                exists = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                ).fetchone()
                if exists is None:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                for statement in _FLOODS_SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                columns = {row[1] for row in db.execute("PRAGMA table_info(checkpoint)")}
                if "head" not in columns:
                    # Added within schema 1: a nullable column older versions ignore.
                    db.execute("ALTER TABLE checkpoint ADD COLUMN head TEXT")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{path}: cannot use the state database: {error}") from error

    # transactions

    def _write(self, sql: str, params: Sequence[Any] = (), *, many: bool = False) -> sqlite3.Cursor:
        """Execute in the write transaction, opening it first; ``many``: once
        per row of ``params``."""
        if self._closed:
            raise StoreError(f"{self.path}: the state store is closed")
        if not self._db.in_transaction:
            # IMMEDIATE takes the write lock up front (waiting out a CLI writer
            # within busy_timeout) instead of failing on a stale read snapshot.
            self._db.execute("BEGIN IMMEDIATE")
        return self._guarded(sql, params, many=many)

    def _guarded(
        self, sql: str, params: Sequence[Any] = (), *, many: bool = False
    ) -> sqlite3.Cursor:
        """Execute in the open transaction, noticing when an error rolls it back.

        SQLite may roll a whole transaction back on a full disk or an I/O
        error. Rows parked in it are then gone although their deliveries were
        settled, so no later checkpoint may be committed in this process: the
        one on disk stays the last that matches what was stored with it.
        """
        try:
            if many:
                return self._db.executemany(sql, params)
            return self._db.execute(sql, params)
        except sqlite3.Error as error:
            if not self._db.in_transaction:
                self._writes_lost = str(error)
            raise

    def _refuse_after_lost_writes(self) -> None:
        if self._writes_lost is not None:
            raise StoreError(
                f"{self.path}: a write failed and was rolled back ({self._writes_lost}); "
                "the checkpoint stays at the last one saved until a restart"
            )

    def _after_write(self) -> None:
        if self._monotonic() - self._last_commit >= self._commit_interval_s:
            self._commit()
        else:
            self._schedule_commit()

    def _schedule_commit(self) -> None:
        if self._scheduled_commit is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (CLI, sync tests): the next write or flush() commits
        delay = max(0.0, self._last_commit + self._commit_interval_s - self._monotonic())
        self._scheduled_commit = loop.call_later(delay, self._scheduled_commit_due)

    def _scheduled_commit_due(self) -> None:
        self._scheduled_commit = None
        if self._closed:
            return
        try:
            self._commit()
        except (sqlite3.Error, StoreError) as error:
            if self._writes_lost is not None:
                log.error("State database %s: a commit failed: %s", self.path, error)
                return
            # Another process held the lock past busy_timeout: keep the batch
            # open and try again rather than lose it in the loop's handler.
            log.warning("state commit postponed: %s", error)
            self._last_commit = self._monotonic()
            self._schedule_commit()

    def _commit(self) -> None:
        checkpoint = self._pending_checkpoint
        if checkpoint is not None and self._writes_lost is not None:
            checkpoint = self._pending_checkpoint = None  # see _guarded
        if checkpoint is not None:
            self._write(
                "INSERT INTO checkpoint (stream, device, inode, offset, path, updated_at, head)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (stream) DO UPDATE SET device = excluded.device,"
                " inode = excluded.inode, offset = excluded.offset, path = excluded.path,"
                " updated_at = excluded.updated_at, head = excluded.head",
                (
                    ALERTS_STREAM,
                    checkpoint.device,
                    checkpoint.inode,
                    checkpoint.offset,
                    checkpoint.path,
                    self._clock(),
                    checkpoint.head,
                ),
            )
            self._pending_checkpoint = None
        if self._db.in_transaction:
            self._guarded("COMMIT")
        self._last_commit = self._monotonic()
        if self._scheduled_commit is not None:
            self._scheduled_commit.cancel()
            self._scheduled_commit = None

    @property
    def dirty(self) -> bool:
        """True while some write is not yet committed."""
        return self._db.in_transaction or self._pending_checkpoint is not None

    def flush(self) -> None:
        """Commit every write now."""
        if not self._closed and self.dirty:
            self._commit()

    def maybe_commit(self) -> None:
        """Commit if ``commit_interval_s`` has passed since the last commit."""
        if (
            not self._closed
            and self.dirty
            and self._monotonic() - self._last_commit >= self._commit_interval_s
        ):
            self._commit()

    def close(self) -> None:
        """Commit what is pending and release the database (idempotent)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._scheduled_commit is not None:
                self._scheduled_commit.cancel()
                self._scheduled_commit = None
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    # the file itself

    def restore_if_gone(self) -> str | None:
        """Put the database file back if it was deleted or replaced while open.

        SQLite goes on writing to an open file whose name was deleted, so
        nothing would be noticed until a restart found no checkpoint and began
        at the end of alerts.json. The open connection still holds everything
        (checkpoint, parked deliveries, dead letters, cache): it is copied to a
        new file at the path, and writing goes on there. A file that replaced
        ours is moved aside, not overwritten. Returns what was done, for the
        log, or None when the file is in place.
        """
        current = _identity_of(self.path)
        if current == self._identity:
            return None
        self._commit()
        replaced = None
        if current is not None:
            replaced = self.path.with_name(f"{self.path.name}.replaced-{int(self._clock())}")
            os.replace(self.path, replaced)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        restored = self.path.with_name(f"{self.path.name}.restoring")
        restored.unlink(missing_ok=True)
        os.close(os.open(restored, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600))
        copy = sqlite3.connect(restored, isolation_level=None)
        try:
            self._db.backup(copy)
        finally:
            copy.close()
        old = self._db
        # Closing the old connection removes its -wal and -shm files by name,
        # so it goes before the copy takes the name and opens its own.
        old.close()
        for suffix in ("-wal", "-shm"):
            # Left by another process still reading the deleted file: never
            # let the new file meet the old file's log.
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        os.replace(restored, self.path)
        db = self._connect(self.path)
        self._prepare(db, self.path)
        self._db = db
        self._identity = _identity_of(self.path)
        what = "replaced by another file" if replaced else "deleted"
        moved = f"; the file that replaced it is kept as {replaced}" if replaced else ""
        return f"{self.path} was {what} while in use: recreated from the open copy{moved}"

    # checkpoint

    def load_checkpoint(self) -> Checkpoint | None:
        if self._pending_checkpoint is not None:
            return self._pending_checkpoint
        return super().load_checkpoint()

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Remember the checkpoint; only the latest is written, at the next commit."""
        if self._closed:
            raise StoreError(f"{self.path}: the state store is closed")
        self._refuse_after_lost_writes()
        self._pending_checkpoint = checkpoint
        self._after_write()

    # parked deliveries

    def park(
        self,
        integration_key: str,
        alert: bytes,
        *,
        attempts: int,
        first_failed_at: float,
        next_attempt_at: float,
        last_error: str,
    ) -> int:
        """Store a failed delivery for a later attempt; returns its id."""
        cursor = self._write(
            "INSERT INTO parked (integration_key, alert, attempts, first_failed_at,"
            " next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?)",
            (integration_key, alert, attempts, first_failed_at, next_attempt_at, last_error),
        )
        self._after_write()
        return self._row_id(cursor)

    def park_many(self, integration_key: str, alerts: Sequence[bytes], state: ParkState) -> None:
        """Store deliveries that share one state (a spill of untried ones) in
        one statement: a row each, without a round of Python per row."""
        if not alerts:
            return
        shared = (state.attempts, state.first_failed_at, state.next_attempt_at, state.last_error)
        self._write(
            "INSERT INTO parked (integration_key, alert, attempts, first_failed_at,"
            " next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?)",
            [(integration_key, alert, *shared) for alert in alerts],
            many=True,
        )
        self._after_write()

    def reschedule_parked(
        self, parked_id: int, *, attempts: int, next_attempt_at: float, last_error: str
    ) -> None:
        self._write(
            "UPDATE parked SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (attempts, next_attempt_at, last_error, parked_id),
        )
        self._after_write()

    def bring_forward_parked(self, integration_key: str, now: float) -> int:
        """Make every parked delivery of one integration that failed before
        due at ``now``; the number of rows changed."""
        cursor = self._write(
            "UPDATE parked SET next_attempt_at = ?"
            " WHERE integration_key = ? AND attempts > 0 AND next_attempt_at > ?",
            (now, integration_key, now),
        )
        self._after_write()
        return int(cursor.rowcount)

    def remove_parked(self, parked_id: int) -> None:
        self._write("DELETE FROM parked WHERE id = ?", (parked_id,))
        self._after_write()

    # dead letters

    def add_dead_letter(
        self,
        integration_key: str,
        integration_name: str,
        alert: bytes,
        *,
        attempts: int,
        first_failed_at: float,
        last_error: str,
        status: int | None,
    ) -> int:
        """Keep a delivery given up for good; returns its id. ``last_error`` must
        already be free of secrets."""
        cursor = self._write(
            "INSERT INTO dead_letters (integration_key, integration_name, alert, attempts,"
            " first_failed_at, failed_at, last_error, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                integration_key,
                integration_name,
                alert,
                attempts,
                first_failed_at,
                self._clock(),
                last_error,
                status,
            ),
        )
        self._after_write()
        return self._row_id(cursor)

    def take_dead_letters(
        self, ids: Sequence[int] | None = None, integration_key: str | None = None
    ) -> list[DeadLetter]:
        """Remove the selected dead letters and return them, oldest first, for replay.

        ``ids`` and ``integration_key`` narrow the selection together; with
        neither, every dead letter is taken. Ids that do not exist are ignored.
        The removal commits with the next batch, so a crash before then leaves
        them in place (replayed at least once, never lost).
        """
        taken: list[DeadLetter] = []
        for clause, params in _dead_letter_filter(ids, integration_key):
            # SELECT then DELETE in one transaction rather than DELETE … RETURNING,
            # which SQLite only has since 3.35 (older than some Wazuh hosts' build).
            rows = self._write(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters WHERE {clause}", params
            ).fetchall()
            self._write(f"DELETE FROM dead_letters WHERE {clause}", params)
            taken.extend(_dead_letter(row) for row in rows)
        self._after_write()
        taken.sort(key=lambda letter: letter.id)
        return taken

    def delete_dead_letters(
        self, ids: Sequence[int] | None = None, integration_key: str | None = None
    ) -> int:
        """Delete the selected dead letters (selection as in :meth:`take_dead_letters`)."""
        deleted = 0
        for clause, params in _dead_letter_filter(ids, integration_key):
            deleted += self._write(f"DELETE FROM dead_letters WHERE {clause}", params).rowcount
        self._after_write()
        return deleted

    # lookup cache

    def put(self, namespace: str, key: str, value: Any, ttl_s: float) -> None:
        """Cache a JSON-serialisable value for ``ttl_s`` seconds."""
        encoded = orjson.dumps(value)
        self._write(
            "INSERT INTO cache (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
            " expires_at = excluded.expires_at",
            (namespace, key, encoded, self._clock() + ttl_s),
        )
        self._after_write()

    def purge_expired_cache(self) -> int:
        """Delete expired cache entries; returns how many."""
        deleted = self._write("DELETE FROM cache WHERE expires_at <= ?", (self._clock(),)).rowcount
        self._after_write()
        return deleted

    # floods: throttle windows and digests (see wazuh_integrator.floods)

    def load_throttle_windows(self, integration_key: str) -> dict[str, bytes]:
        rows = self._db.execute(
            "SELECT key, state FROM throttle_windows WHERE integration_key = ?",
            (integration_key,),
        ).fetchall()
        return {key: bytes(state) for key, state in rows}

    def save_throttle_windows(self, integration_key: str, rows: list[tuple[str, bytes]]) -> None:
        self._db_executemany(
            "INSERT INTO throttle_windows (integration_key, key, state) VALUES (?, ?, ?)"
            " ON CONFLICT (integration_key, key) DO UPDATE SET state = excluded.state",
            [(integration_key, key, state) for key, state in rows],
        )

    def delete_throttle_windows(self, integration_key: str, keys: list[str]) -> None:
        self._db_executemany(
            "DELETE FROM throttle_windows WHERE integration_key = ? AND key = ?",
            [(integration_key, key) for key in keys],
        )

    def digest_state(self, integration_key: str) -> tuple[list[StoredGroup], list[StoredBatch]]:
        """The groups and batches of one block's digests, batches oldest first."""
        groups = [
            StoredGroup(group_key, last_flush_at, _mark(through))
            for group_key, last_flush_at, through in self._db.execute(
                "SELECT group_key, last_flush_at, through FROM digest_groups"
                " WHERE integration_key = ?",
                (integration_key,),
            ).fetchall()
        ]
        batches = []
        for row in self._db.execute(
            "SELECT id, group_key, fields, first_at, last_at, send_at, count, through, flushed"
            " FROM digest_batches WHERE integration_key = ? ORDER BY id",
            (integration_key,),
        ).fetchall():
            alerts = [
                bytes(alert)
                for (alert,) in self._db.execute(
                    "SELECT alert FROM digest_alerts WHERE batch_id = ? ORDER BY seq", (row[0],)
                ).fetchall()
            ]
            batches.append(
                StoredBatch(
                    id=row[0],
                    group_key=row[1],
                    fields=orjson.loads(row[2]),
                    first_at=row[3],
                    last_at=row[4],
                    send_at=row[5],
                    count=row[6],
                    through=_mark(row[7]),
                    flushed=bool(row[8]),
                    alerts=alerts,
                )
            )
        return groups, batches

    def digest_new_batch(
        self, integration_key: str, group_key: str, fields: bytes, first_at: float, send_at: float
    ) -> int:
        cursor = self._write(
            "INSERT INTO digest_batches (integration_key, group_key, fields, first_at, last_at,"
            " send_at, count) VALUES (?, ?, ?, ?, ?, ?, 0)",
            (integration_key, group_key, fields, first_at, first_at, send_at),
        )
        self._after_write()
        return self._row_id(cursor)

    def digest_add_alert(self, batch_id: int, alert: bytes) -> None:
        self._write(
            "INSERT INTO digest_alerts (batch_id, seq, alert) VALUES (?,"
            " (SELECT COUNT(*) FROM digest_alerts WHERE batch_id = ?), ?)",
            (batch_id, batch_id, alert),
        )
        self._after_write()

    def digest_count(self, batch_id: int, count: int, last_at: float, through: Mark | None) -> None:
        self._write(
            "UPDATE digest_batches SET count = ?, last_at = ?, through = ? WHERE id = ?",
            (count, last_at, _mark_bytes(through), batch_id),
        )
        self._after_write()

    def digest_flushed(
        self,
        integration_key: str,
        batch_id: int,
        group_key: str,
        flushed_at: float,
        through: Mark | None,
    ) -> None:
        self._write("UPDATE digest_batches SET flushed = 1 WHERE id = ?", (batch_id,))
        self._write(
            "INSERT INTO digest_groups (integration_key, group_key, last_flush_at, through)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (integration_key, group_key) DO UPDATE SET"
            " last_flush_at = excluded.last_flush_at, through = excluded.through",
            (integration_key, group_key, flushed_at, _mark_bytes(through)),
        )
        self._after_write()

    def digest_settled(self, batch_id: int) -> None:
        self._write("DELETE FROM digest_alerts WHERE batch_id = ?", (batch_id,))
        self._write("DELETE FROM digest_batches WHERE id = ?", (batch_id,))
        self._after_write()

    def digest_forget_groups(self, integration_key: str, group_keys: list[str]) -> None:
        self._db_executemany(
            "DELETE FROM digest_groups WHERE integration_key = ? AND group_key = ?",
            [(integration_key, key) for key in group_keys],
        )

    def _db_executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self._write("SELECT 1")  # opens the batch's transaction
        self._db.executemany(sql, rows)
        self._after_write()

    @staticmethod
    def _row_id(cursor: sqlite3.Cursor) -> int:
        row_id = cursor.lastrowid
        if row_id is None:  # pragma: no cover - an INSERT always sets it
            raise StoreError("SQLite returned no id for an inserted row")
        return row_id
