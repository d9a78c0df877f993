"""Alerts already written: the rotated files of ``logs/alerts/YYYY/Mon/`` and
the start of alerts.json, searched by time.

Wazuh keeps each day's alerts as ``logs/alerts/<year>/<Mon>/ossec-alerts-<DD>.json``
(alerts.json is a hard link to today's) and compresses past days to
``ossec-alerts-<DD>.json.gz``. ``run --since`` and ``replay`` both read them
from here.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import msgspec

from wazuh_integrator.errors import IntegratorError
from wazuh_integrator.source.positions import FileId, Line, Position
from wazuh_integrator.source.splitter import LineSplitter

__all__ = [
    "ArchiveError",
    "TimeWindow",
    "alert_time",
    "archived_alert_files",
    "lines_from_first_at_or_after",
    "lines_in_window",
    "parse_time",
    "read_lines",
    "start_at_or_after",
]

_CHUNK_BYTES = 256 * 1024
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY_FILE = re.compile(r"ossec-alerts-(\d{2})\.json(\.gz)?")
# A day's file holds the manager's local day; a margin covers any time zone.
_DAY_MARGIN = timedelta(days=1)


class ArchiveError(IntegratorError):
    """An alerts file that cannot be read, or a time that cannot be understood."""


class _Stamp(msgspec.Struct, gc=False):
    timestamp: str | None = None


_stamp_decoder = msgspec.json.Decoder(_Stamp)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time from the command line; without a zone, the local one.

    ``2026-11-27T17:00:00+01:00``, ``2026-11-27 17:00``, ``2026-11-27``.
    """
    value = _parse_iso(text.strip())
    if value is None:
        raise ArchiveError(
            f"{text!r} is not an ISO 8601 time (for example 2026-11-27T17:00:00+00:00)"
        )
    return value if value.tzinfo is not None else value.astimezone()


def _parse_iso(text: str) -> datetime | None:
    # Wazuh writes "+0000"; Python 3.10's fromisoformat wants "+00:00".
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    text = re.sub(r"Z$", "+00:00", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    # fromisoformat before 3.11 takes only 3 or 6 fraction digits.
    fraction = re.match(r"(.*[T ]\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", text)
    if fraction is None:
        return None
    head, digits, zone = fraction.groups()
    try:
        return datetime.fromisoformat(f"{head}.{digits[:6].ljust(6, '0')}{zone}")
    except ValueError:
        return None


def alert_time(line: bytes) -> datetime | None:
    """The ``timestamp`` of an alert line, or None when it has none we can read."""
    try:
        stamp = _stamp_decoder.decode(line).timestamp
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if stamp is None:
        return None
    value = _parse_iso(stamp)
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class TimeWindow:
    """``since <= time < until``; either end open when None."""

    since: datetime | None = None
    until: datetime | None = None

    def holds(self, when: datetime | None) -> bool:
        if when is None:
            return self.since is None and self.until is None
        if self.since is not None and when < self.since:
            return False
        return not (self.until is not None and when >= self.until)


def _day_of(path: Path) -> date | None:
    found = _DAY_FILE.fullmatch(path.name)
    if found is None or path.parent.name not in _MONTHS or not path.parent.parent.name.isdigit():
        return None
    try:
        return date(
            int(path.parent.parent.name), _MONTHS.index(path.parent.name) + 1, int(found.group(1))
        )
    except ValueError:
        return None


def archived_alert_files(
    alerts_dir: Path, *, since: datetime | None = None, exclude: Iterable[Path] = ()
) -> list[Path]:
    """The dated files under ``alerts_dir``, oldest first; from the day before
    ``since`` on when given. When a day has both a ``.json`` and a ``.json.gz``
    (compression under way), the plain one is read. Files that are the same
    file as one of ``exclude`` (alerts.json's hard link to today's) are left out.
    """
    excluded = set()
    for path in exclude:
        try:
            excluded.add(FileId.of(os.stat(path)))
        except OSError:
            continue
    # In UTC: a day file is the manager's local day, whatever zone --since was written in.
    first_day = (since.astimezone(timezone.utc) - _DAY_MARGIN).date() if since is not None else None
    by_day: dict[date, Path] = {}
    for path in alerts_dir.glob("[0-9]*/*/ossec-alerts-*.json*"):
        day = _day_of(path)
        if day is None or (first_day is not None and day < first_day):
            continue
        if day in by_day and by_day[day].suffix == ".json":
            continue  # the plain file wins over its compressed copy
        try:
            if FileId.of(os.stat(path)) in excluded:
                continue
        except OSError:
            continue
        by_day[day] = path
    return [by_day[day] for day in sorted(by_day)]


def read_lines(
    path: Path,
    *,
    max_line_bytes: int = 1024 * 1024,
    on_read: Callable[[int], None] | None = None,
) -> Iterator[list[Line]]:
    """The complete lines of ``path`` (plain or ``.gz``), a list per read.

    Offsets are in the uncompressed data. A last line without its newline is
    yielded too: the file is finished. A ``.gz`` file that is truncated or
    damaged yields every complete line before the damage, then raises
    :class:`ArchiveError` (its unfinished last line is a fragment, not an
    alert). ``on_read`` is told how many bytes of the file on disk each read
    consumed, for a progress bar.
    """
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with raw:
        splitter = LineSplitter(FileId.of(os.fstat(raw.fileno())), str(path), 0, max_line_bytes)
        chunks = _gunzipped(raw, path) if path.name.endswith(".gz") else _plain(raw, path)
        for chunk, disk_bytes in chunks:
            if on_read is not None:
                on_read(disk_bytes)
            lines = splitter.feed(chunk)
            if lines:
                yield lines
        last = splitter.flush()
        if last is not None:
            yield [last]


def _disk_reads(raw: BinaryIO, path: Path) -> Iterator[bytes]:
    """The file's bytes as read from disk, a chunk at a time; ArchiveError on a failed read."""
    while True:
        try:
            data = raw.read(_CHUNK_BYTES)
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        if not data:
            return
        yield data


def _plain(raw: BinaryIO, path: Path) -> Iterator[tuple[bytes, int]]:
    """A plain file's chunks, each with the disk bytes it took."""
    for chunk in _disk_reads(raw, path):
        yield chunk, len(chunk)


def _gunzipped(raw: BinaryIO, path: Path) -> Iterator[tuple[bytes, int]]:
    """A gzip file's uncompressed chunks, each with the disk bytes it took.

    Decompressed piece by piece rather than through :class:`gzip.GzipFile`,
    whose ``read`` raises on a truncated file without handing over the data
    it did decompress: here the alerts before the damage are still read.
    Several gzip members one after another (``cat a.gz b.gz``) are one stream.
    """
    member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    empty = True
    for data in _disk_reads(raw, path):
        empty = False
        disk_bytes = len(data)
        while data:
            try:
                chunk = member.decompress(data)
            except zlib.error as exc:
                raise ArchiveError(f"{path}: cannot read: damaged gzip data: {exc}") from exc
            if chunk:
                yield chunk, disk_bytes
                disk_bytes = 0
            data = member.unused_data if member.eof else b""
            if member.eof and data.strip(b"\0"):
                member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            elif member.eof:
                data = b""  # zero padding after the last member, as gzip(1) allows
        if disk_bytes:
            yield b"", disk_bytes
    if not member.eof and not empty:  # an empty file holds no alerts, as gzip.open reads it
        raise ArchiveError(f"{path}: cannot read: the gzip data ends early (a truncated file)")


def start_at_or_after(path: Path, since: datetime) -> Position:
    """Where reading ``path`` should begin for ``--since``: the first complete
    alert stamped at or after ``since``, else the end of what was scanned (so
    that lines appended while it scanned are read, not skipped).

    A day's alerts.json can hold gigabytes: the search halves the file down
    to a line stamped well before ``since`` (alerts are written in time
    order, give or take ``_ORDER_MARGIN``), then reads on from there.
    """
    with path.open("rb") as stream:
        file_id = FileId.of(os.fstat(stream.fileno()))
        begin = _offset_before(stream, since - _ORDER_MARGIN)
        stream.seek(begin)
        splitter = LineSplitter(file_id, str(path), begin, _MAX_SEARCH_LINE_BYTES)
        while chunk := stream.read(_CHUNK_BYTES):
            for line in splitter.feed(chunk):
                when = alert_time(line.data)
                if when is not None and when >= since:
                    return line.start
        return splitter.checkpoint


# How far out of time order analysisd may write two alerts; the search backs
# off this much, so an alert written a little late is not skipped.
_ORDER_MARGIN = timedelta(minutes=5)
_MAX_SEARCH_LINE_BYTES = 1024 * 1024
_BISECT_STOP_BYTES = 1024 * 1024


def _offset_before(stream: BinaryIO, target: datetime) -> int:
    """The start of a line stamped before ``target`` (0 when none is found),
    such that every line from ``target`` on comes after it."""
    low, high = 0, os.fstat(stream.fileno()).st_size
    while high - low > _BISECT_STOP_BYTES:
        middle = (low + high) // 2
        found = _stamped_line_after(stream, middle, high)
        if found is None:
            high = middle  # nothing readable up there: look lower
            continue
        start, when = found
        if when < target:
            low = start
        else:
            high = middle
    return low


def _stamped_line_after(stream: BinaryIO, offset: int, limit: int) -> tuple[int, datetime] | None:
    """The first line beginning after ``offset`` (and before ``limit``) that
    carries a readable time: where it starts, and that time."""
    stream.seek(offset)
    data = stream.read(min(limit - offset, 2 * _MAX_SEARCH_LINE_BYTES))
    newline = data.find(b"\n")
    while newline >= 0:
        start = newline + 1
        end = data.find(b"\n", start)
        if end < 0:
            return None
        when = alert_time(data[start:end])
        if when is not None:
            return offset + start, when
        newline = end
    return None


def lines_in_window(batches: Iterable[list[Line]], window: TimeWindow) -> Iterator[list[Line]]:
    """Only the lines whose alert time is inside ``window``."""
    for batch in batches:
        kept = [line for line in batch if window.holds(alert_time(line.data))]
        if kept:
            yield kept


def lines_from_first_at_or_after(
    batches: Iterable[list[Line]], since: datetime
) -> Iterator[list[Line]]:
    """Every line from the first alert stamped at or after ``since`` on.

    Alerts are written in time order; past the first one in range, a line is
    never dropped for its time (nor for lacking one), so nothing is skipped.
    """
    started = False
    for batch in batches:
        if not started:
            for index, line in enumerate(batch):
                when = alert_time(line.data)
                if when is not None and when >= since:
                    batch = batch[index:]
                    started = True
                    break
            else:
                continue
        yield batch
