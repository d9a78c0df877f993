"""The SQLite state store, on real files, with real second processes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from wazuh_integrator.store import (
    SCHEMA_VERSION,
    Checkpoint,
    ParkState,
    StateReader,
    StateStore,
    StoreError,
)

# Long enough that nothing commits unless a test asks for it.
NEVER_S = 3600.0


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "integrator" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Any:
    with StateStore(db_path, commit_interval_s=NEVER_S) as opened:
        yield opened


def committed_rows(db_path: Path, table: str) -> int:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(db_path) as other:
        return int(other.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def park_one(
    store: StateStore,
    key: str = "slack#0",
    *,
    alert: bytes = b'{"id": "1"}',
    attempts: int = 1,
    first_failed_at: float = 10.0,
    next_attempt_at: float = 20.0,
    last_error: str = "HTTP 503",
) -> int:
    return store.park(
        key,
        alert,
        attempts=attempts,
        first_failed_at=first_failed_at,
        next_attempt_at=next_attempt_at,
        last_error=last_error,
    )


def dead_letter_one(
    store: StateStore, key: str = "slack#0", alert: bytes = b'{"id": "1"}', status: int | None = 500
) -> int:
    return store.add_dead_letter(
        key,
        key.partition("#")[0],
        alert,
        attempts=4,
        first_failed_at=10.0,
        last_error="HTTP 500 from https://hooks.slack.com/<redacted>",
        status=status,
    )


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (a second process) and return its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# opening


def test_creates_private_parent_dirs_and_file_in_wal_mode(db_path: Path) -> None:
    StateStore(db_path).close()

    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_reopening_keeps_a_single_schema_version_row(db_path: Path) -> None:
    StateStore(db_path).close()
    StateStore(db_path).close()

    with sqlite3.connect(db_path) as other:
        assert other.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1


def test_refuses_a_newer_schema(db_path: Path) -> None:
    StateStore(db_path).close()
    with sqlite3.connect(db_path) as other:
        other.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))

    with pytest.raises(StoreError, match="newer than this program"):
        StateStore(db_path)
    with pytest.raises(StoreError, match="newer than this program"):
        StateStore.open_readonly(db_path)


def test_refuses_a_file_that_is_not_a_database(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not SQLite, just some text that is long enough " * 100)

    with pytest.raises(StoreError, match=str(db_path)):
        StateStore(db_path)


def test_readonly_refuses_a_missing_database(db_path: Path) -> None:
    with pytest.raises(StoreError, match="no state database"):
        StateStore.open_readonly(db_path)
    assert not db_path.exists()


def test_readonly_refuses_a_foreign_database(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as other:
        other.execute("CREATE TABLE t (x)")

    with pytest.raises(StoreError, match="not a wazuh-integrator state database"):
        StateStore.open_readonly(foreign)


def test_closed_store_refuses_writes_and_closes_twice(store: StateStore) -> None:
    store.close()
    store.close()

    with pytest.raises(StoreError, match="closed"):
        park_one(store)
    with pytest.raises(StoreError, match="closed"):
        store.save_checkpoint(Checkpoint(1, 2, 3, "/x"))


# checkpoint and batched commits


def test_checkpoint_is_none_until_saved(store: StateStore) -> None:
    assert store.load_checkpoint() is None


def test_checkpoint_is_batched_until_flush_then_durable(db_path: Path) -> None:
    store = StateStore(db_path, commit_interval_s=NEVER_S)
    store.save_checkpoint(Checkpoint(device=1, inode=2, offset=300, path="/a.json"))
    store.save_checkpoint(Checkpoint(device=1, inode=2, offset=400, path="/a.json"))

    assert store.load_checkpoint() == Checkpoint(1, 2, 400, "/a.json")
    assert store.dirty
    assert committed_rows(db_path, "checkpoint") == 0

    store.flush()
    assert not store.dirty
    assert committed_rows(db_path, "checkpoint") == 1
    store.close()

    with StateStore(db_path) as reopened:
        assert reopened.load_checkpoint() == Checkpoint(1, 2, 400, "/a.json")


def test_maybe_commit_waits_for_the_interval(db_path: Path) -> None:
    monotonic = FakeClock()
    with StateStore(db_path, commit_interval_s=0.25, monotonic=monotonic) as store:
        monotonic.advance(0.125)
        park_one(store)
        store.maybe_commit()
        assert committed_rows(db_path, "parked") == 0

        monotonic.advance(0.125)
        store.maybe_commit()
        assert committed_rows(db_path, "parked") == 1
        assert not store.dirty


def test_a_write_after_the_interval_commits_the_batch(db_path: Path) -> None:
    monotonic = FakeClock()
    with StateStore(db_path, commit_interval_s=0.25, monotonic=monotonic) as store:
        monotonic.advance(0.125)
        park_one(store)
        park_one(store)
        assert committed_rows(db_path, "parked") == 0

        monotonic.advance(0.125)
        store.save_checkpoint(Checkpoint(1, 2, 3, "/a.json"))
        assert committed_rows(db_path, "parked") == 2
        assert committed_rows(db_path, "checkpoint") == 1


async def test_running_loop_commits_a_batch_on_its_own(db_path: Path) -> None:
    with StateStore(db_path, commit_interval_s=0.01) as store:
        store.flush()  # the interval now runs from here, so the next write waits
        park_one(store)
        for _ in range(500):
            if committed_rows(db_path, "parked") == 1:
                break
            await asyncio.sleep(0.01)
        assert committed_rows(db_path, "parked") == 1
        assert not store.dirty


def test_close_commits_pending_writes(db_path: Path) -> None:
    store = StateStore(db_path, commit_interval_s=NEVER_S)
    park_one(store)
    dead_letter_one(store)
    store.put("vt", "abc", {"positives": 3}, ttl_s=60)
    store.close()

    with StateStore(db_path) as reopened:
        assert reopened.count_parked() == 1
        assert reopened.count_dead_letters() == 1
        assert reopened.get("vt", "abc") == {"positives": 3}


def test_a_crash_keeps_flushed_writes_and_drops_the_rest_in_order(db_path: Path) -> None:
    run_python(
        f"""
        import os
        from pathlib import Path
        from wazuh_integrator.store import Checkpoint, StateStore

        store = StateStore(Path({str(db_path)!r}), commit_interval_s=3600)
        store.park("slack#0", b"a", attempts=1, first_failed_at=1, next_attempt_at=2,
                   last_error="e")
        store.flush()
        store.save_checkpoint(Checkpoint(1, 2, 100, "/a.json"))
        store.flush()
        store.park("slack#0", b"b", attempts=1, first_failed_at=1, next_attempt_at=2,
                   last_error="e")
        store.save_checkpoint(Checkpoint(1, 2, 200, "/a.json"))
        os._exit(0)  # dies without closing: nothing after the last flush is kept
        """
    )

    with StateStore(db_path) as reopened:
        assert reopened.load_checkpoint() == Checkpoint(1, 2, 100, "/a.json")
        assert [p.alert for p in reopened.due_parked("slack#0", now=10, limit=10)] == [b"a"]


# parked deliveries


def test_park_and_read_back_every_field(store: StateStore) -> None:
    parked_id = park_one(
        store,
        "pagerduty#1",
        alert=b'{"id": "7"}',
        attempts=2,
        first_failed_at=5.5,
        next_attempt_at=9.25,
        last_error="time-out",
    )

    (parked,) = store.due_parked("pagerduty#1", now=9.25, limit=10)
    assert parked.id == parked_id
    assert parked.integration_key == "pagerduty#1"
    assert parked.alert == b'{"id": "7"}'
    assert (parked.attempts, parked.first_failed_at, parked.next_attempt_at) == (2, 5.5, 9.25)
    assert parked.last_error == "time-out"


def test_park_many_keeps_every_row_in_order_and_survives_a_reopen(store: StateStore) -> None:
    alerts = [b'{"id": "%d"}' % number for number in range(300)]
    store.park_many(
        "shuffle#0", alerts, ParkState(0, 4.0, 4.0, "not attempted: the queue was full")
    )
    store.park_many("shuffle#0", [], ParkState(0, 4.0, 4.0, ""))
    store.close()

    with StateStore(store.path) as reopened:
        rows = reopened.due_parked("shuffle#0", now=4.0, limit=1000)
        assert [row.alert for row in rows] == alerts
        assert {(row.attempts, row.last_error) for row in rows} == {
            (0, "not attempted: the queue was full")
        }


def test_due_parked_selects_due_rows_of_one_key_oldest_due_first(store: StateStore) -> None:
    late = park_one(store, next_attempt_at=30.0)
    early = park_one(store, next_attempt_at=10.0)
    also_early = park_one(store, next_attempt_at=10.0)
    park_one(store, next_attempt_at=99.0)
    park_one(store, "shuffle#2", next_attempt_at=1.0)

    assert [p.id for p in store.due_parked("slack#0", now=30.0, limit=10)] == [
        early,
        also_early,
        late,
    ]
    assert [p.id for p in store.due_parked("slack#0", now=30.0, limit=2)] == [early, also_early]
    assert store.due_parked("slack#0", now=9.9, limit=10) == []
    assert store.due_parked("nobody#9", now=1e12, limit=10) == []


def test_next_parked_due_at(store: StateStore) -> None:
    assert store.next_parked_due_at("slack#0") is None
    park_one(store, next_attempt_at=50.0)
    park_one(store, next_attempt_at=40.0)
    park_one(store, "shuffle#2", next_attempt_at=1.0)

    assert store.next_parked_due_at("slack#0") == 40.0


def test_reschedule_and_remove_parked(store: StateStore) -> None:
    parked_id = park_one(store, next_attempt_at=10.0)
    store.reschedule_parked(parked_id, attempts=3, next_attempt_at=70.0, last_error="HTTP 502")

    assert store.due_parked("slack#0", now=69.0, limit=10) == []
    (parked,) = store.due_parked("slack#0", now=70.0, limit=10)
    assert (parked.attempts, parked.last_error) == (3, "HTTP 502")

    store.remove_parked(parked_id)
    assert store.count_parked() == 0
    assert store.next_parked_due_at("slack#0") is None


def test_count_parked_per_key_and_in_all(store: StateStore) -> None:
    park_one(store, "slack#0")
    park_one(store, "slack#0")
    park_one(store, "shuffle#2")

    assert store.count_parked() == 3
    assert store.count_parked("slack#0") == 2
    assert store.count_parked("virustotal#3") == 0
    assert store.parked_counts() == {"slack#0": 2, "shuffle#2": 1}


# dead letters


def test_dead_letter_fields_and_failed_at_from_the_clock(db_path: Path) -> None:
    clock = FakeClock(1234.5)
    with StateStore(db_path, clock=clock) as store:
        letter_id = dead_letter_one(store, "shuffle#2", alert=b"{}", status=None)
        (letter,) = store.dead_letters()

    assert letter.id == letter_id
    assert (letter.integration_key, letter.integration_name) == ("shuffle#2", "shuffle")
    assert (letter.alert, letter.attempts, letter.status) == (b"{}", 4, None)
    assert (letter.first_failed_at, letter.failed_at) == (10.0, 1234.5)
    assert letter.last_error == "HTTP 500 from https://hooks.slack.com/<redacted>"


def test_dead_letters_pages_by_id_and_filters_by_key(store: StateStore) -> None:
    ids = [dead_letter_one(store, "slack#0" if n % 2 else "pagerduty#1") for n in range(6)]

    first_page = store.dead_letters(limit=4)
    assert [d.id for d in first_page] == ids[:4]
    assert [d.id for d in store.dead_letters(limit=4, since_id=first_page[-1].id)] == ids[4:]
    assert [d.id for d in store.dead_letters("slack#0")] == ids[1::2]
    assert [d.id for d in store.dead_letters("slack#0", since_id=ids[1])] == ids[3::2]
    assert store.count_dead_letters() == 6
    assert store.count_dead_letters("pagerduty#1") == 3
    assert store.dead_letter_counts() == {"slack#0": 3, "pagerduty#1": 3}


@pytest.mark.parametrize(
    ("ids", "key", "taken_positions"),
    [
        (None, None, [0, 1, 2, 3]),
        (None, "slack#0", [0, 2]),
        ([1, 3], None, [1, 3]),
        ([0, 1], "slack#0", [0]),
        ([3, 3, 1], None, [1, 3]),
        ([], None, []),
    ],
    ids=["all", "by-key", "by-ids", "ids-and-key", "duplicates-unordered", "no-ids"],
)
def test_take_dead_letters_removes_and_returns_the_selection(
    store: StateStore, ids: list[int] | None, key: str | None, taken_positions: list[int]
) -> None:
    letter_ids = [dead_letter_one(store, k) for k in ("slack#0", "pagerduty#1") * 2]
    selected = None if ids is None else [letter_ids[i] for i in ids]

    taken = store.take_dead_letters(selected, key)

    assert [d.id for d in taken] == [letter_ids[i] for i in taken_positions]
    remaining = [i for i in letter_ids if i not in {d.id for d in taken}]
    assert [d.id for d in store.dead_letters()] == remaining
    assert store.take_dead_letters(selected, key) == []


def test_take_dead_letters_ignores_unknown_ids(store: StateStore) -> None:
    letter_id = dead_letter_one(store)

    taken = store.take_dead_letters([letter_id, 9999])

    assert [d.id for d in taken] == [letter_id]


def test_take_more_dead_letters_than_one_statement_can_bind(store: StateStore) -> None:
    letter_ids = [dead_letter_one(store, alert=str(n).encode()) for n in range(1200)]

    taken = store.take_dead_letters(list(reversed(letter_ids)))

    assert [d.id for d in taken] == letter_ids
    assert [d.alert for d in taken[:3]] == [b"0", b"1", b"2"]
    assert store.count_dead_letters() == 0


def test_dead_letter_ids_are_never_reused(db_path: Path) -> None:
    with StateStore(db_path) as store:
        first = dead_letter_one(store)
        store.take_dead_letters([first])
    with StateStore(db_path) as store:
        assert dead_letter_one(store) > first


@pytest.mark.parametrize(
    ("ids", "key", "deleted"),
    [(None, None, 4), (None, "pagerduty#1", 2), ([0, 3], None, 2), ([0, 3], "slack#0", 1)],
)
def test_delete_dead_letters_counts_what_it_removed(
    store: StateStore, ids: list[int] | None, key: str | None, deleted: int
) -> None:
    letter_ids = [dead_letter_one(store, k) for k in ("slack#0", "pagerduty#1") * 2]
    selected = None if ids is None else [letter_ids[i] for i in ids]

    assert store.delete_dead_letters(selected, key) == deleted
    assert store.count_dead_letters() == 4 - deleted


# lookup cache


@pytest.mark.parametrize(
    "value",
    [{"positives": 2, "total": 70}, [1, "two", None], "text", 0, 1.5, True, {}],
    ids=["object", "list", "string", "zero", "float", "bool", "empty-object"],
)
def test_cache_round_trips_json_values(store: StateStore, value: Any) -> None:
    store.put("virustotal", "d41d8cd98f00b204e9800998ecf8427e", value, ttl_s=60)

    assert store.get("virustotal", "d41d8cd98f00b204e9800998ecf8427e") == value


def test_cache_entries_expire_with_the_clock(db_path: Path) -> None:
    clock = FakeClock()
    with StateStore(db_path, clock=clock) as store:
        store.put("vt", "a", {"found": 1}, ttl_s=60)
        store.put("vt", "b", {"found": 0}, ttl_s=120)

        clock.advance(59.9)
        assert store.get("vt", "a") == {"found": 1}
        clock.advance(0.1)
        assert store.get("vt", "a") is None
        assert store.get("vt", "b") == {"found": 0}

        assert store.purge_expired_cache() == 1
        clock.advance(60)
        assert store.purge_expired_cache() == 1
        assert store.purge_expired_cache() == 0


def test_cache_put_replaces_value_and_expiry(db_path: Path) -> None:
    clock = FakeClock()
    with StateStore(db_path, clock=clock) as store:
        store.put("vt", "a", 1, ttl_s=10)
        store.put("vt", "a", 2, ttl_s=100)
        clock.advance(50)

        assert store.get("vt", "a") == 2


def test_cache_namespaces_are_separate(store: StateStore) -> None:
    store.put("virustotal", "k", "vt", ttl_s=60)
    store.put("maltiverse", "k", "mv", ttl_s=60)

    assert store.get("virustotal", "k") == "vt"
    assert store.get("maltiverse", "k") == "mv"
    assert store.get("other", "k") is None


def test_cache_refuses_values_that_are_not_json(store: StateStore) -> None:
    with pytest.raises(TypeError):
        store.put("vt", "k", object(), ttl_s=60)
    assert store.get("vt", "k") is None


def test_cache_survives_a_restart(db_path: Path) -> None:
    with StateStore(db_path) as store:
        store.put("vt", "k", {"positives": 1}, ttl_s=3600)
    with StateStore(db_path) as store:
        assert store.get("vt", "k") == {"positives": 1}


# a second process while the daemon runs

_READ_STATE = """
import json
from pathlib import Path
from wazuh_integrator.store import StateStore

with StateStore.open_readonly(Path({path!r})) as reader:
    checkpoint = reader.load_checkpoint()
    print(json.dumps({{
        "parked": reader.count_parked(),
        "dead": [d.id for d in reader.dead_letters()],
        "offset": checkpoint.offset if checkpoint else None,
    }}))
"""


def test_another_process_reads_committed_state_while_the_daemon_writes(db_path: Path) -> None:
    with StateStore(db_path, commit_interval_s=NEVER_S) as store:
        park_one(store)
        letter_id = dead_letter_one(store)
        store.save_checkpoint(Checkpoint(1, 2, 500, "/a.json"))
        store.flush()
        # A batch still open: the reader must neither wait for it nor see it.
        park_one(store)
        store.save_checkpoint(Checkpoint(1, 2, 900, "/a.json"))
        park_one(store)

        seen = json.loads(run_python(_READ_STATE.format(path=str(db_path))))
        assert seen == {"parked": 1, "dead": [letter_id], "offset": 500}

        store.flush()
        seen = json.loads(run_python(_READ_STATE.format(path=str(db_path))))
        assert seen == {"parked": 3, "dead": [letter_id], "offset": 900}


def test_another_process_can_take_dead_letters_while_the_daemon_runs(db_path: Path) -> None:
    with StateStore(db_path, commit_interval_s=NEVER_S) as store:
        kept = dead_letter_one(store, "slack#0")
        dead_letter_one(store, "pagerduty#1")
        store.flush()

        out = run_python(
            f"""
            from pathlib import Path
            from wazuh_integrator.store import StateStore

            with StateStore(Path({str(db_path)!r})) as cli:
                print(len(cli.take_dead_letters(integration_key="pagerduty#1")))
            """
        )

        assert out.strip() == "1"
        assert [d.id for d in store.dead_letters()] == [kept]
        # The daemon goes on writing after the other process's commit.
        dead_letter_one(store, "pagerduty#1")
        store.flush()
        assert store.count_dead_letters() == 2


def test_readonly_handle_reads_without_writing(db_path: Path) -> None:
    with StateStore(db_path) as store:
        store.put("vt", "k", 1, ttl_s=60)
        park_one(store)

    reader = StateStore.open_readonly(db_path)
    try:
        assert isinstance(reader, StateReader)
        assert not isinstance(reader, StateStore)
        assert reader.get("vt", "k") == 1
        assert reader.count_parked("slack#0") == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._db.execute("DELETE FROM parked")
    finally:
        reader.close()


def _park_one(store: StateStore) -> None:
    store.park(
        "slack#0", b'{"id":"1"}', attempts=1, first_failed_at=1.0, next_attempt_at=2.0,
        last_error="HTTP 500",
    )  # fmt: skip


@pytest.mark.parametrize("with_log_files", [True, False])
def test_a_deleted_database_is_restored_with_everything_it_held(
    store: StateStore, db_path: Path, with_log_files: bool
) -> None:
    checkpoint = Checkpoint(device=1, inode=2, offset=300, path="/x/alerts.json")
    store.save_checkpoint(checkpoint)
    _park_one(store)
    store.flush()
    assert store.restore_if_gone() is None  # in place: nothing to do
    names = [db_path.name] + ([db_path.name + "-wal", db_path.name + "-shm"] * with_log_files)
    for name in names:
        (db_path.parent / name).unlink(missing_ok=True)
    message = store.restore_if_gone()
    assert message is not None and "was deleted while in use" in message
    assert oct(db_path.stat().st_mode & 0o777) == "0o600"
    # A new process sees it all, and the store goes on writing there.
    with StateStore.open_readonly(db_path) as reader:
        assert reader.load_checkpoint() == checkpoint
        assert reader.count_parked() == 1
    _park_one(store)
    store.flush()
    assert committed_rows(db_path, "parked") == 2


def test_a_replaced_database_is_moved_aside_not_overwritten(
    store: StateStore, db_path: Path
) -> None:
    _park_one(store)
    store.flush()
    db_path.unlink()
    db_path.write_bytes(b"someone else's file")
    message = store.restore_if_gone()
    assert message is not None and "replaced by another file" in message
    [aside] = [p for p in db_path.parent.iterdir() if ".replaced-" in p.name]
    assert aside.read_bytes() == b"someone else's file"
    assert committed_rows(db_path, "parked") == 1


_OPEN_AT = """
import sys, time
from pathlib import Path
from wazuh_integrator.store import StateStore
start = float(sys.argv[2])
while time.time() < start:
    pass
StateStore(Path(sys.argv[1])).close()
"""


def test_processes_opening_one_new_database_together_all_get_it(tmp_path: Path) -> None:
    """A reader and a worker started together on one home (systemd starts both
    units at boot): the switch to WAL mode can answer SQLITE_BUSY without
    waiting, which once stopped one of them with 'database is locked'."""
    import subprocess
    import sys
    import time

    for round_number in range(8):
        path = tmp_path / f"round{round_number}" / "state.db"
        start = time.time() + 0.5
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AT, str(path), repr(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(6)
        ]
        for process in processes:
            output, _ = process.communicate(timeout=30)
            assert process.returncode == 0, output
