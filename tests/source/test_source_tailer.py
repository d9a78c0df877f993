"""The tailer against real files: appends, rotation, truncation, deletion, restarts."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import aclosing
from itertools import accumulate, pairwise
from pathlib import Path
from typing import BinaryIO

import pytest

from wazuh_integrator import compat
from wazuh_integrator.source import AlertTailer, FileId, Line, Position
from wazuh_integrator.source.fingerprint import head_fingerprint

WAIT_S = 5.0


def file_id(path: Path) -> FileId:
    return FileId.of(os.stat(path))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab", buffering=0) as file:
        file.write(data)


def touch(path: Path) -> None:
    path.touch()


def remove(path: Path) -> None:
    path.unlink()


def size_of(path: Path) -> int:
    return path.stat().st_size


def truncate(path: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(0)


def open_for_append(path: Path) -> BinaryIO:
    """A writer that keeps its descriptor, as analysisd does, across a rotation."""
    return open(path, "ab", buffering=0)


def alert(number: int) -> bytes:
    return b'{"id":"%d","rule":{"level":3}}' % number


def alerts(numbers: range) -> bytes:
    return b"".join(alert(n) + b"\n" for n in numbers)


class Collector:
    """Runs a tailer in the background and keeps every line it yields."""

    def __init__(self, tailer: AlertTailer) -> None:
        self.tailer = tailer
        self.lines: list[Line] = []
        tailer.initial_position()  # where reading begins is fixed now, not when the task runs
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with aclosing(self.tailer.batches()) as batches:
            async for batch in batches:
                self.lines.extend(batch)

    @property
    def data(self) -> list[bytes]:
        return [line.data for line in self.lines]

    async def wait_for(self, count: int) -> list[Line]:
        async with compat.timeout(WAIT_S):
            while len(self.lines) < count:
                if self._task.done():
                    self._task.result()
                    raise AssertionError(f"tailer ended after {len(self.lines)} lines")
                await asyncio.sleep(0.002)
        return self.lines

    async def settle(self, path: Path, marker: bytes = b"MARK") -> None:
        """Appends a marker line and waits for it, so that nothing is still in flight."""
        append(path, marker + b"\n")
        async with compat.timeout(WAIT_S):
            while not self.lines or self.lines[-1].data != marker:
                if self._task.done():
                    self._task.result()
                    raise AssertionError("tailer ended before the marker")
                await asyncio.sleep(0.002)
        self.lines.pop()

    def wait_in_thread_for_a_line_from(self, file: FileId) -> None:
        """For a writer thread: blocks until a line of that file has been read."""
        deadline = time.monotonic() + WAIT_S
        while not any(line.start.file_id == file for line in reversed(self.lines)):
            assert time.monotonic() < deadline, "the tailer never read the file"
            time.sleep(0.001)

    async def finish(self) -> list[Line]:
        await self.tailer.stop()
        async with compat.timeout(WAIT_S):
            await self._task
        return self.lines


async def read_all(tailer: AlertTailer) -> list[Line]:
    async with aclosing(tailer.batches()) as batches:
        return [line async for batch in batches for line in batch]


@pytest.fixture
def alerts_json(tmp_path: Path) -> Path:
    folder = tmp_path / "logs" / "alerts"
    folder.mkdir(parents=True)
    return folder / "alerts.json"


def assert_contiguous(lines: list[Line]) -> None:
    """Each line starts where the one before ended, unless a new file began at 0."""
    for before, after in pairwise(lines):
        if after.start.file_id == before.end.file_id:
            # The path is only a hint: a rotation renames the file between two lines.
            assert after.start.offset == before.end.offset
        else:
            assert after.start.offset == 0


# -- where reading begins --------------------------------------------------


async def test_starts_at_the_end_like_stock(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(3)))
    tailer = AlertTailer(alerts_json, start=None)

    initial = tailer.initial_position()
    assert initial == Position(file_id(alerts_json), size_of(alerts_json), str(alerts_json))
    collector = Collector(tailer)
    append(alerts_json, alerts(range(3, 5)))

    lines = await collector.wait_for(2)
    await collector.settle(alerts_json)
    assert [line.data for line in lines] == [alert(3), alert(4)]
    assert lines[0].start == initial
    await collector.finish()


async def test_an_alert_half_written_at_start_is_read_whole(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(2)) + b'{"id":"half')
    tailer = AlertTailer(alerts_json, start=None)

    initial = tailer.initial_position()
    assert initial is not None
    assert initial.offset == len(alerts(range(2)))
    collector = Collector(tailer)
    append(alerts_json, b'","rule":{}}\n')

    lines = await collector.wait_for(1)
    assert lines[0].data == b'{"id":"half","rule":{}}'
    await collector.finish()


async def test_from_start_reads_what_is_there(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(3)))
    tailer = AlertTailer(alerts_json, start=None, from_start=True, follow=False)

    assert tailer.initial_position() == Position(file_id(alerts_json), 0, str(alerts_json))
    lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(0), alert(1), alert(2)]
    assert lines[-1].end.offset == size_of(alerts_json)
    assert_contiguous(lines)


async def test_a_file_that_does_not_exist_yet_is_read_from_its_start(alerts_json: Path) -> None:
    tailer = AlertTailer(alerts_json, start=None)
    assert tailer.initial_position() is None
    collector = Collector(tailer)

    append(alerts_json, alerts(range(2)))

    lines = await collector.wait_for(2)
    assert [line.data for line in lines] == [alert(0), alert(1)]
    assert lines[0].start == Position(file_id(alerts_json), 0, str(alerts_json))
    await collector.finish()


async def test_without_follow_a_missing_file_gives_nothing(alerts_json: Path) -> None:
    tailer = AlertTailer(alerts_json, start=None, follow=False)

    assert tailer.initial_position() is None
    assert await read_all(tailer) == []


# -- appending -------------------------------------------------------------


async def test_a_line_written_in_several_pieces_is_yielded_once_complete(
    alerts_json: Path,
) -> None:
    touch(alerts_json)
    collector = Collector(AlertTailer(alerts_json, start=None))
    whole = alert(7)

    for piece in (whole[:5], whole[5:9], whole[9:]):
        append(alerts_json, piece)
        await asyncio.sleep(0.02)  # give the tailer a chance to see each piece alone
    assert collector.lines == []
    append(alerts_json, b"\n")

    lines = await collector.wait_for(1)
    assert lines == [
        Line(
            whole,
            Position(file_id(alerts_json), 0, str(alerts_json)),
            Position(file_id(alerts_json), len(whole) + 1, str(alerts_json)),
        )
    ]
    await collector.finish()


async def test_many_alerts_come_out_in_order_in_big_batches(alerts_json: Path) -> None:
    count = 20_000
    append(alerts_json, alerts(range(count)))
    tailer = AlertTailer(alerts_json, start=None, from_start=True, follow=False)

    batch_sizes = []
    lines: list[Line] = []
    async with aclosing(tailer.batches()) as batches:
        async for batch in batches:
            batch_sizes.append(len(batch))
            lines.extend(batch)

    assert [line.data for line in lines] == [alert(n) for n in range(count)]
    assert_contiguous(lines)
    assert len(batch_sizes) < count / 1000  # chunked reads, not a read per line


async def test_iterating_line_by_line_gives_the_same_lines(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(5)))
    tailer = AlertTailer(alerts_json, start=None, from_start=True, follow=False)

    lines = [line async for line in tailer]

    assert [line.data for line in lines] == [alert(n) for n in range(5)]


async def test_oversize_lines_are_yielded_empty_and_marked(alerts_json: Path) -> None:
    touch(alerts_json)
    collector = Collector(AlertTailer(alerts_json, start=None, max_line_bytes=40))
    big = b'{"full_log":"' + b"x" * 500 + b'"}'

    append(alerts_json, alert(1) + b"\n" + big[:100])
    append(alerts_json, big[100:] + b"\n" + alert(2) + b"\n")

    lines = await collector.wait_for(3)
    assert [(line.data, line.oversize) for line in lines] == [
        (alert(1), False),
        (b"", True),
        (alert(2), False),
    ]
    assert lines[1].end.offset - lines[1].start.offset == len(big) + 1
    assert_contiguous(lines)
    await collector.finish()


# -- rotation, truncation, deletion ----------------------------------------


def rotate_by_rename(alerts_json: Path) -> None:
    os.rename(alerts_json, alerts_json.with_name("alerts-rotated.json"))


def rotate_like_wazuh(alerts_json: Path) -> None:
    """alerts.json is a hard link to the dated file; rotation links a new one."""
    day = alerts_json.parent / "2024" / "Jan"
    day.mkdir(parents=True, exist_ok=True)
    dated = day / f"ossec-alerts-{len(list(day.iterdir())) + 1:02d}.json"
    os.link(alerts_json, dated)
    os.unlink(alerts_json)


@pytest.mark.parametrize("rotate", [rotate_by_rename, rotate_like_wazuh])
async def test_lines_read_after_a_rotation_name_the_file_where_it_went(
    alerts_json: Path, rotate: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wazuh_integrator")
    append(alerts_json, alerts(range(3)))
    collector = Collector(AlertTailer(alerts_json, start=None, from_start=True))
    await collector.wait_for(3)
    old_id = file_id(alerts_json)
    append(alerts_json, alert(3))  # unterminated: the rotation ends it
    rotate(alerts_json)
    append(alerts_json, alerts(range(4, 6)))
    lines = await collector.wait_for(6)
    await collector.finish()
    (moved,) = (
        path
        for path in alerts_json.parent.rglob("*.json")
        if path != alerts_json and file_id(path) == old_id
    )
    # A warning about alert 3 (or a restart looking for its checkpoint)
    # names where that line is now, not alerts.json, which holds other lines.
    assert [line.start.path for line in lines] == [str(alerts_json)] * 3 + [
        str(moved),
        *[str(alerts_json)] * 2,
    ]
    assert lines[3].end.path == str(moved)
    assert f"finishing the old file, now {moved} (read up to offset" in caplog.text


@pytest.mark.parametrize("rotate", [rotate_by_rename, rotate_like_wazuh])
async def test_rotation_while_writing_loses_and_repeats_nothing(
    alerts_json: Path, rotate: Callable[[Path], None]
) -> None:
    append(alerts_json, alerts(range(3)))
    collector = Collector(AlertTailer(alerts_json, start=None, from_start=True))
    await collector.wait_for(3)
    old_id = file_id(alerts_json)

    old = open_for_append(alerts_json)
    try:
        old.write(alerts(range(3, 5)))
        rotate(alerts_json)
        # The writer still holds the old file: what it writes there is not lost.
        old.write(alerts(range(5, 7)) + alert(7))
        await asyncio.sleep(0.03)
        append(alerts_json, alerts(range(8, 10)))
    finally:
        old.close()

    await collector.wait_for(10)
    await collector.settle(alerts_json)
    lines = await collector.finish()
    assert [line.data for line in lines] == [alert(n) for n in range(10)]
    new_id = file_id(alerts_json)
    assert [line.start.file_id for line in lines] == [old_id] * 8 + [new_id] * 2
    # The unterminated last alert of the old file ends where that file ends.
    assert lines[7].end.offset == len(alerts(range(7)) + alert(7))
    assert_contiguous(lines)


def write_with_rotations(
    alerts_json: Path, count: int, rotations: int, seed: int, collector: Collector
) -> None:
    """Writes like a busy analysisd from another thread: pieces of lines, rotations between.

    Like Wazuh's daily rotation, a file is not rotated again before the
    tailer has read from it: a file that lives less than one poll is never
    seen under the name alerts.json.
    """
    randomness = random.Random(seed)
    data = alerts(range(count))
    line_ends = list(accumulate(len(alert(n)) + 1 for n in range(count)))
    # analysisd rotates between alerts, never inside one.
    rotate_at = set(randomness.sample(line_ends[:-1], rotations))
    cut_points = sorted({*randomness.sample(range(1, len(data)), 400), *rotate_at})
    writer = open_for_append(alerts_json)
    try:
        for begin, end in pairwise([0, *cut_points, len(data)]):
            writer.write(data[begin:end])
            if end in rotate_at:
                collector.wait_in_thread_for_a_line_from(file_id(alerts_json))
                rotate_like_wazuh(alerts_json)
                writer.close()
                writer = open_for_append(alerts_json)
            if randomness.random() < 0.05:
                time.sleep(0.001)
    finally:
        writer.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_writer_in_another_thread_rotating_often_loses_nothing(
    alerts_json: Path, seed: int
) -> None:
    touch(alerts_json)
    collector = Collector(AlertTailer(alerts_json, start=None, from_start=True))

    await asyncio.to_thread(write_with_rotations, alerts_json, 3000, 3, seed, collector)

    await collector.wait_for(3000)
    await collector.settle(alerts_json)
    lines = await collector.finish()
    assert [line.data for line in lines] == [alert(n) for n in range(3000)]
    assert len({line.start.file_id for line in lines}) == 4
    assert_contiguous(lines)


async def test_the_last_line_of_a_rotated_file_waits_for_the_new_file(alerts_json: Path) -> None:
    append(alerts_json, alert(0) + b"\n" + alert(1))
    collector = Collector(AlertTailer(alerts_json, start=None, from_start=True))
    await collector.wait_for(1)

    rotate_by_rename(alerts_json)
    await asyncio.sleep(0.03)
    assert len(collector.lines) == 1  # no new file yet: the old one may still grow
    append(alerts_json, alerts(range(2, 3)))

    lines = await collector.wait_for(3)
    assert [line.data for line in lines] == [alert(0), alert(1), alert(2)]
    await collector.finish()


async def test_truncation_in_place_restarts_from_the_start(
    alerts_json: Path, caplog: pytest.LogCaptureFixture
) -> None:
    append(alerts_json, alerts(range(5)))
    collector = Collector(AlertTailer(alerts_json, start=None, from_start=True))
    await collector.wait_for(5)

    truncate(alerts_json)
    await asyncio.sleep(0.03)
    append(alerts_json, alerts(range(5, 7)))

    lines = await collector.wait_for(7)
    await collector.settle(alerts_json)
    assert [line.data for line in lines] == [alert(n) for n in range(7)]
    assert lines[5].start.offset == 0
    assert "truncated" in caplog.text
    await collector.finish()


async def test_a_deleted_file_is_read_from_its_start_when_recreated(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(2)))
    collector = Collector(AlertTailer(alerts_json, start=None, from_start=True))
    await collector.wait_for(2)

    remove(alerts_json)
    await asyncio.sleep(0.03)
    append(alerts_json, alerts(range(2, 4)))

    lines = await collector.wait_for(4)
    await collector.settle(alerts_json)
    assert [line.data for line in lines] == [alert(n) for n in range(4)]
    assert lines[2].start == Position(file_id(alerts_json), 0, str(alerts_json))
    await collector.finish()


async def test_the_initial_position_pins_the_file_it_names(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(2)))
    tailer = AlertTailer(alerts_json, start=None, from_start=True, follow=False)
    initial = tailer.initial_position()

    rotate_by_rename(alerts_json)
    append(alerts_json, alerts(range(2, 3)))
    lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(0), alert(1), alert(2)]
    assert initial is not None
    assert lines[0].start == initial


# -- resuming from a checkpoint --------------------------------------------


async def test_resumes_from_a_checkpoint_in_the_same_file(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(4)))
    first = await read_all(AlertTailer(alerts_json, start=None, from_start=True, follow=False))
    checkpoint = first[1].end
    append(alerts_json, alerts(range(4, 6)))

    tailer = AlertTailer(alerts_json, start=checkpoint, follow=False)
    assert tailer.initial_position() == checkpoint
    lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(n) for n in range(2, 6)]
    assert lines[0].start == checkpoint


async def test_a_checkpoint_past_the_end_means_truncated_while_stopped(
    alerts_json: Path,
) -> None:
    append(alerts_json, alerts(range(2)))
    checkpoint = Position(file_id(alerts_json), 10_000, str(alerts_json))

    lines = await read_all(AlertTailer(alerts_json, start=checkpoint, follow=False))

    assert [line.data for line in lines] == [alert(0), alert(1)]


def wazuh_tree(alerts_json: Path) -> Path:
    """Dated files like Wazuh keeps them, with decoys in other months."""
    for month, day in (("Dec", 31), ("Feb", 1)):
        folder = alerts_json.parent / "2023" / month
        folder.mkdir(parents=True)
        (folder / f"ossec-alerts-{day:02d}.json").write_bytes(alerts(range(100, 102)))
        (folder / f"ossec-alerts-{day - 1:02d}.json.gz").write_bytes(b"\x1f\x8b")
    day_folder = alerts_json.parent / "2024" / "Jan"
    day_folder.mkdir(parents=True)
    dated = day_folder / "ossec-alerts-01.json"
    dated.touch()
    os.link(dated, alerts_json)
    return dated


@pytest.mark.parametrize("follow", [False, True])
async def test_resumes_in_the_rotated_file_found_by_its_inode(
    alerts_json: Path, follow: bool
) -> None:
    dated = wazuh_tree(alerts_json)
    append(alerts_json, alerts(range(3)))
    done = await read_all(AlertTailer(alerts_json, start=None, from_start=True, follow=False))
    checkpoint = done[0].end
    append(alerts_json, alerts(range(3, 5)) + alert(5))
    # Rotated while we were stopped: the old name now points at the next day's file.
    next_day = dated.with_name("ossec-alerts-02.json")
    next_day.write_bytes(alerts(range(6, 8)))
    remove(alerts_json)
    os.link(next_day, alerts_json)

    tailer = AlertTailer(alerts_json, start=checkpoint, follow=follow)
    assert tailer.initial_position() == Position(checkpoint.file_id, checkpoint.offset, str(dated))
    if follow:
        collector = Collector(tailer)
        await collector.wait_for(7)
        await collector.settle(alerts_json)
        lines = await collector.finish()
    else:
        lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(n) for n in range(1, 8)]
    assert [line.start.path for line in lines] == [str(dated)] * 5 + [str(alerts_json)] * 2
    assert lines[4].end == Position(checkpoint.file_id, size_of(dated), str(dated))
    assert lines[5].start == Position(file_id(alerts_json), 0, str(alerts_json))
    assert tailer.lost_bytes == 0
    assert tailer.lost_files == 0


async def test_search_dirs_can_be_given(alerts_json: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive" / "2024" / "Mar"
    archive.mkdir(parents=True)
    append(alerts_json, alerts(range(3)))
    checkpoint = Position(file_id(alerts_json), len(alerts(range(1))), str(alerts_json))
    os.link(alerts_json, archive / "ossec-alerts-09.json")
    remove(alerts_json)
    append(alerts_json, alerts(range(3, 4)))

    tailer = AlertTailer(
        alerts_json, start=checkpoint, follow=False, search_dirs=[tmp_path / "archive"]
    )
    lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(n) for n in range(1, 4)]


async def test_a_rotated_file_that_is_gone_is_counted_as_lost(
    alerts_json: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wazuh_tree(alerts_json)
    append(alerts_json, alerts(range(2)))
    gone = Position(FileId(file_id(alerts_json).device, 999_999_999), 123, str(alerts_json))

    tailer = AlertTailer(alerts_json, start=gone, follow=False)
    with caplog.at_level(logging.WARNING):
        assert tailer.initial_position() == Position(file_id(alerts_json), 0, str(alerts_json))
    lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(0), alert(1)]
    assert tailer.lost_files == 1
    assert tailer.lost_bytes == 0
    assert "is unknown" in caplog.text
    assert "offset 123" in caplog.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_a_rotated_file_that_cannot_be_read_counts_its_bytes_as_lost(
    alerts_json: Path, caplog: pytest.LogCaptureFixture
) -> None:
    append(alerts_json, alerts(range(4)))
    checkpoint = Position(file_id(alerts_json), len(alerts(range(1))), str(alerts_json))
    rotated = alerts_json.with_name("alerts-rotated.json")
    os.rename(alerts_json, rotated)
    rotated.chmod(0)
    append(alerts_json, alerts(range(4, 5)))

    tailer = AlertTailer(alerts_json, start=checkpoint, follow=False)
    lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(4)]
    assert tailer.lost_bytes == len(alerts(range(1, 4)))
    assert f"{len(alerts(range(1, 4)))} bytes" in caplog.text


# -- stopping --------------------------------------------------------------


async def test_stop_ends_an_idle_follow_at_once(alerts_json: Path) -> None:
    touch(alerts_json)
    collector = Collector(AlertTailer(alerts_json, start=None, poll_interval_s=3600))
    await asyncio.sleep(0.01)

    assert await collector.finish() == []


async def test_without_follow_an_unterminated_last_line_is_left_for_later(
    alerts_json: Path,
) -> None:
    append(alerts_json, alerts(range(2)) + b'{"half')
    tailer = AlertTailer(alerts_json, start=None, from_start=True, follow=False)

    lines = await read_all(tailer)

    assert [line.data for line in lines] == [alert(0), alert(1)]
    assert lines[-1].end.offset == len(alerts(range(2)))


async def test_close_releases_the_file(alerts_json: Path) -> None:
    append(alerts_json, alerts(range(1)))
    async with AlertTailer(alerts_json, start=None, from_start=True) as tailer:
        tailer.initial_position()
        assert open_descriptors_to(alerts_json) == 1
    assert open_descriptors_to(alerts_json) == 0


def open_descriptors_to(path: Path) -> int:
    return sum(1 for target in _fd_targets() if target == str(path))


def _fd_targets() -> Iterator[str]:
    for name in os.listdir("/proc/self/fd"):
        try:
            yield os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue


@pytest.mark.parametrize("same_content", [True, False])
async def test_a_checkpoint_file_with_other_first_bytes_is_read_from_its_start(
    alerts_json: Path, same_content: bool
) -> None:
    append(alerts_json, alerts(range(0, 10)))
    with alerts_json.open("rb") as handle:
        head = head_fingerprint(handle.fileno(), size_of(alerts_json))
    start = Position(file_id(alerts_json), size_of(alerts_json), str(alerts_json))
    # Truncated and written again while stopped, past the old offset: same identity.
    truncate(alerts_json)
    append(alerts_json, alerts(range(0, 10) if same_content else range(100, 120)))
    if same_content:
        append(alerts_json, alerts(range(10, 12)))
    tailer = AlertTailer(alerts_json, start=start, start_head=head, follow=False)
    lines = await read_all(tailer)
    expected = [alert(n) for n in (range(10, 12) if same_content else range(100, 120))]
    assert [line.data for line in lines] == expected
