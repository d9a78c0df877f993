"""Following alerts.json by inotify, and by polling where inotify cannot be had.

Each case runs twice: with inotify and polls too slow to ever come within the
test (so only the kernel's events can wake the tailer), and with polling alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import aclosing
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from wazuh_integrator import compat
from wazuh_integrator.source import AlertTailer, Line

WAIT_S = 5.0
NEVER_S = 3600.0

MODES: dict[str, dict[str, Any]] = {
    "inotify": {"watch_changes": True, "poll_interval_s": NEVER_S, "safety_poll_s": NEVER_S},
    "poll": {"watch_changes": False, "poll_interval_s": 0.01},
}


def alert(number: int) -> bytes:
    return b'{"id":"%d","rule":{"level":3}}\n' % number


def append(path: Path, data: bytes) -> None:
    with open(path, "ab", buffering=0) as file:
        file.write(data)


def open_for_append(path: Path) -> BinaryIO:
    """A writer that keeps its descriptor, as analysisd does, across a rotation."""
    return open(path, "ab", buffering=0)


def remove(path: Path) -> None:
    path.unlink()


class Reader:
    """A following tailer in a task of its own, keeping what it yields."""

    def __init__(self, path: Path, **options: Any) -> None:
        self.tailer = AlertTailer(path, start=None, from_start=True, **options)
        self.lines: list[Line] = []
        self.tailer.initial_position()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with aclosing(self.tailer.batches()) as batches:
            async for batch in batches:
                self.lines.extend(batch)

    async def wait_for(self, count: int) -> list[bytes]:
        async with compat.timeout(WAIT_S):
            while len(self.lines) < count:
                assert not self._task.done(), f"tailer ended after {len(self.lines)} lines"
                await asyncio.sleep(0.002)
        return [line.data + b"\n" for line in self.lines]

    async def finish(self) -> None:
        await self.tailer.stop()
        async with compat.timeout(WAIT_S):
            await self._task


@pytest.fixture
def alerts_json(tmp_path: Path) -> Path:
    folder = tmp_path / "logs" / "alerts"
    folder.mkdir(parents=True)
    return folder / "alerts.json"


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> dict[str, Any]:
    return MODES[request.param]


async def test_appended_lines_are_read(alerts_json: Path, mode: dict[str, Any]) -> None:
    append(alerts_json, alert(0))
    reader = Reader(alerts_json, **mode)
    await reader.wait_for(1)
    for number in range(1, 4):
        await asyncio.sleep(0.01)  # idle between appends, as at a steady rate
        append(alerts_json, alert(number))
    assert await reader.wait_for(4) == [alert(n) for n in range(4)]
    await reader.finish()


async def test_a_rotation_is_followed_to_the_new_file(
    alerts_json: Path, mode: dict[str, Any]
) -> None:
    writer = open_for_append(alerts_json)
    try:
        writer.write(alert(0))
        reader = Reader(alerts_json, **mode)
        await reader.wait_for(1)
        os.rename(alerts_json, alerts_json.with_name("ossec-alerts-29.json"))
        await asyncio.sleep(0.01)
        writer.write(alert(1))  # written after the rename, to the old file
        assert await reader.wait_for(2) == [alert(0), alert(1)]
    finally:
        writer.close()
    append(alerts_json, alert(2))
    assert await reader.wait_for(3) == [alert(n) for n in range(3)]
    await asyncio.sleep(0.01)
    append(alerts_json, alert(3))  # the watch moved to the new file
    assert await reader.wait_for(4) == [alert(n) for n in range(4)]
    await reader.finish()


async def test_a_file_moved_into_place_is_read(alerts_json: Path, mode: dict[str, Any]) -> None:
    append(alerts_json, alert(0))
    reader = Reader(alerts_json, **mode)
    await reader.wait_for(1)
    staged = alerts_json.with_name("staged.json")
    append(staged, alert(1))
    os.replace(staged, alerts_json)
    assert await reader.wait_for(2) == [alert(0), alert(1)]
    await reader.finish()


async def test_a_truncation_is_seen(alerts_json: Path, mode: dict[str, Any]) -> None:
    append(alerts_json, alert(0) + alert(1))
    reader = Reader(alerts_json, **mode)
    await reader.wait_for(2)
    os.truncate(alerts_json, 0)
    await asyncio.sleep(0.03)
    append(alerts_json, alert(2))
    assert await reader.wait_for(3) == [alert(0), alert(1), alert(2)]
    assert reader.lines[2].start.offset == 0
    await reader.finish()


async def test_a_file_that_appears_later_is_read(alerts_json: Path, mode: dict[str, Any]) -> None:
    reader = Reader(alerts_json, **mode)
    await asyncio.sleep(0.01)
    append(alerts_json, alert(0))
    assert await reader.wait_for(1) == [alert(0)]
    await asyncio.sleep(0.01)
    append(alerts_json, alert(1))
    assert await reader.wait_for(2) == [alert(0), alert(1)]
    await reader.finish()


async def test_a_deleted_file_is_followed_when_created_again(
    alerts_json: Path, mode: dict[str, Any]
) -> None:
    append(alerts_json, alert(0))
    reader = Reader(alerts_json, **mode)
    await reader.wait_for(1)
    remove(alerts_json)
    await asyncio.sleep(0.01)
    append(alerts_json, alert(1))
    assert await reader.wait_for(2) == [alert(0), alert(1)]
    await asyncio.sleep(0.01)
    append(alerts_json, alert(2))
    assert await reader.wait_for(3) == [alert(n) for n in range(3)]
    await reader.finish()


async def test_without_a_directory_to_watch_it_says_so_and_polls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alerts_json = tmp_path / "not-yet" / "alerts.json"
    caplog.set_level(logging.WARNING)
    reader = Reader(alerts_json, poll_interval_s=0.01, safety_poll_s=NEVER_S)
    await asyncio.sleep(0.05)
    assert f"Cannot watch {alerts_json.parent} with inotify" in caplog.text
    assert "polling it instead" in caplog.text
    alerts_json.parent.mkdir()
    append(alerts_json, alert(0))
    assert await reader.wait_for(1) == [alert(0)]
    await reader.finish()


async def test_stop_closes_the_inotify_descriptor(alerts_json: Path) -> None:
    append(alerts_json, alert(0))
    before = set(os.listdir("/proc/self/fd"))
    reader = Reader(alerts_json, **MODES["inotify"])
    await reader.wait_for(1)
    opened = set(os.listdir("/proc/self/fd")) - before
    assert any("inotify" in os.readlink(f"/proc/self/fd/{fd}") for fd in opened if _exists(fd))
    await reader.finish()
    assert set(os.listdir("/proc/self/fd")) <= before | {fd for fd in opened if not _exists(fd)}


def _exists(fd: str) -> bool:
    return os.path.exists(f"/proc/self/fd/{fd}")
