"""The throttle: limits per key and window, the suppressed note, its state in the store."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.floods.alerts import alert

from wazuh_integrator.config.models import ThrottleSettings
from wazuh_integrator.floods.marks import Mark
from wazuh_integrator.floods.throttle import (
    PERSIST_ROWS_AT_ONCE,
    Throttle,
    format_duration,
    ordinal,
)
from wazuh_integrator.store import StateStore

KEY = ("rule.id", "agent.id")
HOUR = ThrottleSettings(key=KEY, window_s=3600.0, limit=2)
AGENTS = ("001", "002", "003")


def burst(count: int) -> list[dict[str, object]]:
    return [alert(n, agent_id=AGENTS[n % 3]) for n in range(count)]


def test_a_burst_of_three_keys_sends_limit_per_key() -> None:
    throttle = Throttle(HOUR)
    sent = [a for a in burst(10_000) if throttle.decide(a, now=1000.0).send]
    assert len(sent) == 6
    assert sorted(a["agent"]["id"] for a in sent) == ["001", "001", "002", "002", "003", "003"]


def test_the_reason_names_the_key_the_count_and_the_window() -> None:
    throttle = Throttle(HOUR)
    verdicts = [throttle.decide(alert(n), now=1000.0 + n) for n in range(3)]
    assert [v.send for v in verdicts] == [True, True, False]
    assert verdicts[2].reason == (
        "throttled: 3rd alert for rule.id=5712 agent.id=001 within 1h (limit 2)"
    )


def test_a_missing_field_is_a_value_of_its_own() -> None:
    throttle = Throttle(ThrottleSettings(key=("data.srcip",), window_s=60.0, limit=1))
    with_ip = alert(1, data={"srcip": "10.0.0.1"})
    assert throttle.decide(alert(0), now=0.0).send
    assert throttle.decide(with_ip, now=0.0).send
    verdict = throttle.decide(alert(2), now=0.0)
    assert not verdict.send
    assert verdict.reason is not None and "data.srcip=(missing)" in verdict.reason


@pytest.mark.parametrize("suppressed", [1, 7, 4998])
def test_the_next_send_after_the_window_carries_the_exact_count(suppressed: int) -> None:
    throttle = Throttle(ThrottleSettings(key=KEY, window_s=2.0, limit=2))
    for n in range(2 + suppressed):
        throttle.decide(alert(n), now=100.0 + n * 0.0001)
    verdict = throttle.decide(alert(99_999), now=103.0)
    assert verdict.send
    assert verdict.note is not None
    assert verdict.note.count == suppressed
    assert verdict.note.since == "1970-01-01T00:01:40.000Z"  # the first suppressed one (100.0002)
    assert verdict.note.text().startswith(f"{suppressed} similar alert")
    assert throttle.decide(alert(100_000), now=103.1).note is None


def test_counts_add_up_over_several_windows() -> None:
    throttle = Throttle(ThrottleSettings(key=("rule.id",), window_s=1.0, limit=2))
    delivered, carried = 0, 0
    for n in range(1000):
        verdict = throttle.decide(alert(n), now=n * 0.01)  # 10 s, ten windows
        if verdict.send:
            delivered += 1
            carried += verdict.note.count if verdict.note else 0
    leftover = throttle.decide(alert(0), now=100.0)
    carried += leftover.note.count if leftover.note else 0
    assert delivered + carried == 1000


def test_windows_survive_a_restart_through_the_store(tmp_path: Path) -> None:
    alerts = burst(300)
    with StateStore(tmp_path / "state.db") as store:
        first = Throttle(HOUR, integration_key="slack#0", store=store)
        sent = sum(first.decide(a, now=10.0, mark=Mark(1, 2, n)).send for n, a in enumerate(alerts))
        first.persist(now=10.0)
    with StateStore(tmp_path / "state.db") as store:
        second = Throttle(HOUR, integration_key="slack#0", store=store)
        later = sum(second.decide(a, now=20.0).send for a in burst(300))
    assert (sent, later) == (6, 0)


def test_a_line_read_again_is_sent_again_only_if_it_was_sent(tmp_path: Path) -> None:
    """After a crash the lines past the checkpoint are read again: suppressed
    ones are not counted twice, sent ones go again (they may not have arrived)."""
    with StateStore(tmp_path / "state.db") as store:
        first = Throttle(HOUR, integration_key="slack#0", store=store)
        verdicts = [first.decide(alert(n), now=10.0, mark=Mark(1, 2, n)) for n in range(5)]
        first.persist(now=10.0)
    assert [v.send for v in verdicts] == [True, True, False, False, False]
    with StateStore(tmp_path / "state.db") as store:
        second = Throttle(HOUR, integration_key="slack#0", store=store)
        again = [second.decide(alert(n), now=11.0, mark=Mark(1, 2, n)).send for n in range(1, 5)]
        fresh = second.decide(alert(9), now=11.0, mark=Mark(1, 2, 9))
    assert again == [True, False, False, False]
    assert not fresh.send
    assert fresh.reason is not None and fresh.reason.startswith("throttled: 6th alert")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "1h"), (30, "30s"), (5400, "90m"), (86400, "1d"), (0.5, "500ms"), (1.5, "1.5s")],
)
def test_durations_read_as_written(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"
    ]  # fmt: skip


def test_lines_read_again_across_two_windows_are_told_apart(tmp_path: Path) -> None:
    short = ThrottleSettings(key=KEY, window_s=1.0, limit=2)
    times = [0.0] * 5 + [2.0] * 5
    with StateStore(tmp_path / "state.db") as store:
        first = Throttle(short, integration_key="slack#0", store=store)
        before = [first.decide(alert(n), now=times[n], mark=Mark(1, 2, n)) for n in range(10)]
        first.persist(now=2.0)
    with StateStore(tmp_path / "state.db") as store:
        second = Throttle(short, integration_key="slack#0", store=store)
        again = [second.decide(alert(n), now=2.5, mark=Mark(1, 2, n)) for n in range(10)]
    expected = [True, True, False, False, False, True, True, False, False, False]
    assert [v.send for v in before] == [v.send for v in again] == expected
    assert again[5].note is not None and again[5].note.count == 3
    assert again[5].note == before[5].note


def test_windows_saved_as_objects_by_earlier_versions_are_still_read(tmp_path: Path) -> None:
    """Rows were JSON objects before they became arrays: an upgrade in a flood
    keeps counting where the old version stopped."""
    old_row = orjson.dumps(
        {
            "started_at": 10.0,
            "seen": 5,
            "sent": 2,
            "suppressed": 3,
            "suppressed_since": 10.5,
            "through": [1, 2, 4],
            "runs": [[[1, 2, 0], [1, 2, 1], None]],
        }
    )
    with StateStore(tmp_path / "state.db") as store:
        store.save_throttle_windows("slack#0", [("rule.id=5712 agent.id=001", old_row)])
    with StateStore(tmp_path / "state.db") as store:
        throttle = Throttle(HOUR, integration_key="slack#0", store=store)
        again = [throttle.decide(alert(n), now=11.0, mark=Mark(1, 2, n)).send for n in range(5)]
        fresh = throttle.decide(alert(5), now=11.0, mark=Mark(1, 2, 5))
        later = throttle.decide(alert(6), now=3611.0, mark=Mark(1, 2, 6))
    assert again == [True, True, False, False, False]
    assert fresh.reason is not None and fresh.reason.startswith("throttled: 6th alert")
    assert later.note is not None and later.note.count == 4
    assert later.note.since == "1970-01-01T00:00:10.500Z"


def test_a_saved_window_reads_back_as_it_was(tmp_path: Path) -> None:
    """Every member of a window goes through the row: counts, the first
    suppressed time, the last line counted and the runs with their note."""
    short = ThrottleSettings(key=KEY, window_s=1.0, limit=2)
    with StateStore(tmp_path / "state.db") as store:
        first = Throttle(short, integration_key="slack#0", store=store)
        for n in range(5):
            first.decide(alert(n), now=0.0, mark=Mark(1, 2, n))
        first.decide(alert(5), now=2.0, mark=Mark(1, 2, 5))
        first.decide(alert(6), now=2.0, mark=Mark(1, 2, 6))
        first.persist(now=2.0)
        rows = store.load_throttle_windows("slack#0")
    with StateStore(tmp_path / "state.db") as store:
        second = Throttle(short, integration_key="slack#0", store=store)
        assert second.decide(alert(7), now=2.5, mark=Mark(1, 2, 7)).reason == (
            "throttled: 3rd alert for rule.id=5712 agent.id=001 within 1s (limit 2)"
        )
        second.persist(now=2.5)
        after = store.load_throttle_windows("slack#0")
    assert list(rows) == ["rule.id=5712 agent.id=001"]
    assert orjson.loads(rows["rule.id=5712 agent.id=001"]) == [
        1,
        2.0,
        2,
        2,
        0,
        None,
        [1, 2, 6],
        [[[1, 2, 0], [1, 2, 1], None], [[1, 2, 5], [1, 2, 6], {"count": 3, "since": _ISO_0}]],
    ]
    assert orjson.loads(after["rule.id=5712 agent.id=001"])[2:7] == [3, 2, 1, 2.5, [1, 2, 7]]


_ISO_0 = "1970-01-01T00:00:00.000Z"


def test_a_row_of_an_unknown_version_starts_that_window_afresh(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        row = orjson.dumps([99, 10.0, 9, 2, 7, 10.0, [1, 2, 9], []])
        store.save_throttle_windows("slack#0", [("rule.id=5712 agent.id=001", row)])
    with StateStore(tmp_path / "state.db") as store:
        throttle = Throttle(HOUR, integration_key="slack#0", store=store)
        verdict = throttle.decide(alert(0), now=11.0, mark=Mark(1, 2, 0))
    assert verdict.send and verdict.note is None


def test_a_save_of_many_changed_windows_is_put_off_unless_forced(tmp_path: Path) -> None:
    """Past PERSIST_ROWS_AT_ONCE changed windows within a second of the last
    save, persist() writes nothing and says so (the pipeline then keeps the
    checkpoint where that save left it); a forced save writes them all."""
    by_source = ThrottleSettings(key=("data.srcip",), window_s=3600.0, limit=2)
    with StateStore(tmp_path / "state.db") as store:
        throttle = Throttle(by_source, integration_key="slack#0", store=store)
        throttle.decide(alert(0, data={"srcip": "10.0.0.1"}), now=1.0)
        assert throttle.persist(now=1.0)
        for n in range(PERSIST_ROWS_AT_ONCE + 1):
            source = f"10.1.{n // 256}.{n % 256}"
            throttle.decide(alert(n, data={"srcip": source}), now=1.0)
        assert not throttle.persist(now=1.0)
        assert len(store.load_throttle_windows("slack#0")) == 1
        assert throttle.persist(now=1.0, force=True)
        assert len(store.load_throttle_windows("slack#0")) == PERSIST_ROWS_AT_ONCE + 2
        throttle.decide(alert(0, data={"srcip": "10.0.0.1"}), now=2.0)
        assert throttle.persist(now=2.0)  # one changed window: at once
