"""Finding the checkpoint's file by identity in Wazuh's dated alerts tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wazuh_integrator.source import FileId
from wazuh_integrator.source.locate import (
    _json_files,
    default_search_dirs,
    find_file,
    rotated_after,
)


def identity(path: Path) -> FileId:
    return FileId.of(os.stat(path))


@pytest.fixture
def alerts_dir(tmp_path: Path) -> Path:
    """logs/alerts with a year of dated folders, in no particular creation order."""
    root = tmp_path / "logs" / "alerts"
    for year, month, day in (("2023", "Dec", 31), ("2024", "Feb", 2), ("2024", "Jan", 15)):
        folder = root / year / month
        folder.mkdir(parents=True)
        (folder / f"ossec-alerts-{day:02d}.json").write_bytes(b"{}\n" * day)
        (folder / f"ossec-alerts-{day - 1:02d}.json.gz").write_bytes(b"\x1f\x8b")
    (root / "alerts.json").write_bytes(b"{}\n")
    (root / "notes").mkdir()
    return root


def test_finds_the_dated_file_with_the_same_inode(alerts_dir: Path) -> None:
    dated = alerts_dir / "2024" / "Jan" / "ossec-alerts-15.json"

    found = find_file(identity(dated), default_search_dirs(alerts_dir / "alerts.json"))

    assert found == dated


def test_looks_in_the_newest_folders_first(alerts_dir: Path) -> None:
    order = [path.relative_to(alerts_dir).as_posix() for path in _json_files(alerts_dir, 2)]

    assert order == [
        "alerts.json",
        "2024/Feb/ossec-alerts-02.json",
        "2024/Jan/ossec-alerts-15.json",
        "2023/Dec/ossec-alerts-31.json",
    ]


def test_compressed_files_are_not_candidates(alerts_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "rotated"
    outside.write_bytes(b"{}\n")
    os.link(outside, alerts_dir / "2024" / "Jan" / "ossec-alerts-16.json.gz")

    assert find_file(identity(outside), [alerts_dir]) is None


def test_the_hint_is_tried_first_wherever_it_is(alerts_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "moved-by-hand.log"
    elsewhere.write_bytes(b"{}\n")

    assert find_file(identity(elsewhere), [alerts_dir], hint=elsewhere) == elsewhere


def test_a_missing_folder_is_not_an_error(tmp_path: Path) -> None:
    assert find_file(FileId(1, 2), [tmp_path / "nowhere"], hint=tmp_path / "gone.json") is None


def test_the_files_rotated_after_the_checkpoints_are_listed_oldest_first(
    tmp_path: Path,
) -> None:
    alerts_dir = tmp_path / "alerts"
    month = alerts_dir / "2026" / "Nov"
    month.mkdir(parents=True)
    days = [month / f"ossec-alerts-{day}.json" for day in (25, 26, 27, 28)]
    for number, day in enumerate(days):
        day.write_text(f"day {number}\n")
        os.utime(day, ns=(10**18 + number * 10**9, 10**18 + number * 10**9))
    today = alerts_dir / "alerts.json"
    os.link(days[-1], today)  # today's dated name and alerts.json: one file
    later = rotated_after(days[1], [alerts_dir], exclude=[identity(today)])
    assert later == [days[2]]
    # Each file once, whatever its names.
    listed = rotated_after(days[0], [alerts_dir])
    assert [identity(path) for path in listed] == [identity(day) for day in days[1:]]
