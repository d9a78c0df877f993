"""source/archive.py: the rotated alert files, read plain or compressed, searched by time."""

from __future__ import annotations

import gzip
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from wazuh_integrator.source.archive import (
    ArchiveError,
    TimeWindow,
    alert_time,
    archived_alert_files,
    lines_from_first_at_or_after,
    lines_in_window,
    parse_time,
    read_lines,
    start_at_or_after,
)

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def alert_line(number: int, when: datetime) -> bytes:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    return orjson.dumps({"timestamp": stamp, "rule": {"level": 5}, "id": str(number)}) + b"\n"


def write_alerts(path: Path, numbers: range, *, gz: bool = False) -> None:
    data = b"".join(alert_line(n, T0 + timedelta(minutes=n)) for n in numbers)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)


def ids(batches: object) -> list[int]:
    return [int(orjson.loads(line.data)["id"]) for batch in batches for line in batch]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T17:00:00+00:00", T0),
        ("2026-11-27T17:00:00Z", T0),
        ("2026-11-27T18:00:00+0100", T0),
        ("2026-11-27T17:00:00.000+0000", T0),
        ("2026-11-27T17:00:00.5+00:00", T0 + timedelta(milliseconds=500)),
    ],
)
def test_parse_time_reads_iso_8601(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_parse_time_without_a_zone_is_local_time() -> None:
    parsed = parse_time("2026-11-27T17:00:00")
    assert parsed.tzinfo is not None
    assert parsed == datetime(2026, 11, 27, 17, 0).astimezone()


def test_parse_time_refuses_what_is_not_a_time() -> None:
    with pytest.raises(ArchiveError, match="'yesterday' is not an ISO 8601 time"):
        parse_time("yesterday")


def test_alert_time_reads_wazuh_timestamps_and_tolerates_lines_without() -> None:
    assert alert_time(alert_line(1, T0).rstrip()) == T0
    assert alert_time(b'{"rule": {}}') is None
    assert alert_time(b"not json") is None
    assert alert_time(b'{"timestamp": "soon"}') is None


def test_archived_files_are_listed_oldest_first_plain_winning_over_gz(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.json"
    write_alerts(tmp_path / "2026" / "Dec" / "ossec-alerts-01.json.gz", range(1), gz=True)
    write_alerts(tmp_path / "2026" / "Nov" / "ossec-alerts-30.json.gz", range(1), gz=True)
    write_alerts(tmp_path / "2025" / "Dec" / "ossec-alerts-31.json.gz", range(1), gz=True)
    write_alerts(tmp_path / "2026" / "Nov" / "ossec-alerts-29.json", range(1))
    write_alerts(tmp_path / "2026" / "Nov" / "ossec-alerts-29.json.gz", range(1), gz=True)
    (tmp_path / "2026" / "Nov" / "ossec-alerts-29.log.sum").write_text("x")
    today = tmp_path / "2026" / "Dec" / "ossec-alerts-02.json"
    write_alerts(today, range(1))
    os.link(today, alerts)  # alerts.json is today's file: not an archive

    names = [str(p.relative_to(tmp_path)) for p in archived_alert_files(tmp_path, exclude=[alerts])]
    assert names == [
        "2025/Dec/ossec-alerts-31.json.gz",
        "2026/Nov/ossec-alerts-29.json",
        "2026/Nov/ossec-alerts-30.json.gz",
        "2026/Dec/ossec-alerts-01.json.gz",
    ]
    since = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    recent = archived_alert_files(tmp_path, since=since, exclude=[alerts])
    assert [p.name for p in recent] == ["ossec-alerts-30.json.gz", "ossec-alerts-01.json.gz"]


def test_plain_and_gz_files_read_the_same_lines(tmp_path: Path) -> None:
    plain, packed = tmp_path / "a.json", tmp_path / "b.json.gz"
    write_alerts(plain, range(500))
    write_alerts(packed, range(500), gz=True)
    assert ids(read_lines(plain)) == ids(read_lines(packed)) == list(range(500))


def test_a_broken_gz_file_is_an_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "ossec-alerts-01.json.gz"
    broken.write_bytes(gzip.compress(alert_line(1, T0))[:-12])
    with pytest.raises(ArchiveError, match=r"ossec-alerts-01\.json\.gz: cannot read"):
        list(read_lines(broken))


def test_a_truncated_gz_file_yields_its_whole_lines_before_the_error(tmp_path: Path) -> None:
    # GzipFile.read raises on a truncated file without handing over what it
    # had decompressed: a day's archive cut short lost every alert it held.
    packed = tmp_path / "ossec-alerts-01.json.gz"
    data = b"".join(alert_line(n, T0) for n in range(3000))
    packed.write_bytes(gzip.compress(data)[: len(gzip.compress(data)) // 2])
    read: list[int] = []
    with pytest.raises(ArchiveError, match=r"ossec-alerts-01\.json\.gz: cannot read: .*ends early"):
        for batch in read_lines(packed, max_line_bytes=4096):
            read.extend(int(orjson.loads(line.data)["id"]) for line in batch)
    assert len(read) > 1000
    assert read == list(range(len(read))), "whole lines in order; the cut-off fragment is not one"


def test_a_corrupt_gz_file_yields_its_lines_before_the_damage(tmp_path: Path) -> None:
    packed = tmp_path / "ossec-alerts-02.json.gz"
    data = b"".join(alert_line(n, T0) for n in range(3000))
    good = gzip.compress(data, compresslevel=1)
    middle = len(good) // 2
    packed.write_bytes(good[:middle] + bytes(b ^ 0xFF for b in good[middle:]))
    lines: list[bytes] = []
    with pytest.raises(ArchiveError, match=r"ossec-alerts-02\.json\.gz: cannot read"):
        for batch in read_lines(packed):
            lines.extend(line.data for line in batch)
    # Deflate may decode some garbage before it notices: the pipeline skips
    # such lines as invalid. The lines before the damage are all there.
    intact = [int(orjson.loads(line)["id"]) for line in lines[:1000]]
    assert intact == list(range(1000))


def test_gz_members_one_after_another_and_an_empty_gz_file(tmp_path: Path) -> None:
    joined, empty = tmp_path / "joined.json.gz", tmp_path / "empty.json.gz"
    first = b"".join(alert_line(n, T0) for n in range(5))
    second = b"".join(alert_line(n, T0) for n in range(5, 9))
    joined.write_bytes(gzip.compress(first) + gzip.compress(second) + bytes(16))
    empty.write_bytes(b"")
    assert ids(read_lines(joined)) == list(range(9))
    assert ids(read_lines(empty)) == []


def test_a_since_in_a_far_eastern_zone_still_lists_a_far_western_managers_day(
    tmp_path: Path,
) -> None:
    # 2026-11-27T00:30+14:00 is 2026-11-26T10:30Z: a manager at UTC-12 wrote
    # it into its file of the 25th (22:30 local), two calendar days before
    # the date written in --since.
    write_alerts(tmp_path / "2026" / "Nov" / "ossec-alerts-25.json", range(1))
    since = datetime(2026, 11, 27, 0, 30, tzinfo=timezone(timedelta(hours=14)))
    assert [p.name for p in archived_alert_files(tmp_path, since=since)] == ["ossec-alerts-25.json"]


def test_lines_from_the_first_in_range_on_keep_everything_after(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_alerts(path, range(10))
    with path.open("ab") as handle:
        handle.write(b"not json\n")
        handle.write(alert_line(99, T0))  # out of order: kept, it comes after the start
    since = T0 + timedelta(minutes=7)
    kept = [
        orjson.loads(line.data)["id"] if line.data.startswith(b"{") else line.data.decode()
        for batch in lines_from_first_at_or_after(read_lines(path), since)
        for line in batch
    ]
    assert kept == ["7", "8", "9", "not json", "99"]


def test_lines_in_window_is_half_open(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_alerts(path, range(10))
    window = TimeWindow(T0 + timedelta(minutes=2), T0 + timedelta(minutes=5))
    assert ids(lines_in_window(read_lines(path), window)) == [2, 3, 4]


def test_start_at_or_after_finds_the_line_or_the_scanned_end(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    write_alerts(path, range(10))
    found = start_at_or_after(path, T0 + timedelta(minutes=3))
    assert found.offset == len(b"".join(alert_line(n, T0 + timedelta(minutes=n)) for n in range(3)))
    with path.open("ab") as handle:
        handle.write(b'{"timestamp": "2026-11-27T18:')  # half written
    end = start_at_or_after(path, T0 + timedelta(days=1))
    assert end.offset == len(b"".join(alert_line(n, T0 + timedelta(minutes=n)) for n in range(10)))


def linear_start(path: Path, since: datetime) -> int:
    offset = 0
    for line in path.read_bytes().splitlines(keepends=True):
        when = alert_time(line.rstrip(b"\n"))
        if when is not None and when >= since:
            return offset
        offset += len(line)
    return offset


@pytest.mark.parametrize("minute", [0, 1, 7_777, 19_998, 19_999, 25_000])
def test_a_big_file_is_searched_by_halves_with_the_same_answer(tmp_path: Path, minute: int) -> None:
    path = tmp_path / "alerts.json"
    with path.open("wb") as handle:
        for n in range(20_000):  # about 4 MB: several halvings
            if n % 1000 == 500:
                handle.write(b"not json at all\n")
            # Written 2 minutes late, out of order: still found, since the
            # search backs off before reading line by line.
            late = timedelta(minutes=2) if n % 997 == 0 else timedelta(0)
            handle.write(alert_line(n, T0 + timedelta(minutes=n) - late))
    since = T0 + timedelta(minutes=minute)
    assert start_at_or_after(path, since).offset == linear_start(path, since)
