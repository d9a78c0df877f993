"""Follows alerts.json as analysisd appends to it, across rotations and restarts."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType

from wazuh_integrator.source.locate import default_search_dirs, find_file
from wazuh_integrator.source.positions import FileId, Line, Position
from wazuh_integrator.source.splitter import LineSplitter

log = logging.getLogger(__name__)

# Big reads keep the syscalls per alert far below one; 256 KiB holds ~250 alerts.
CHUNK_BYTES = 256 * 1024
_LOOKBACK_BLOCK_BYTES = 64 * 1024
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class _OpenFile:
    """A file being read: its descriptor and the splitter that tracks its offset."""

    __slots__ = ("fd", "splitter")

    def __init__(self, fd: int, splitter: LineSplitter) -> None:
        self.fd = fd
        self.splitter = splitter

    @property
    def file_id(self) -> FileId:
        return self.splitter.file_id

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class AlertTailer:
    """Yields the complete lines of alerts.json with their positions.

    Where reading begins: at ``start`` (a checkpoint) when given, even if that
    file has been rotated away since (it is then looked for under
    ``search_dirs`` by its identity); else at the start of the last line of
    the file, or at its very start with ``from_start``. A file that does not
    exist yet, or that appears after a rotation or a deletion, is read from
    its start.

    With ``follow`` it polls for new data every ``poll_interval_s`` when idle
    and runs until :meth:`stop`; without, it stops at the end of the data
    (after finishing any rotated file it had to read first).
    """

    def __init__(
        self,
        path: Path,
        *,
        start: Position | None,
        from_start: bool = False,
        max_line_bytes: int = 1024 * 1024,
        follow: bool = True,
        poll_interval_s: float = 0.01,
        search_dirs: Sequence[Path] = (),
    ) -> None:
        self._path = path
        self._start = start
        self._from_start = from_start
        self._max_line_bytes = max_line_bytes
        self._follow = follow
        self._poll_interval_s = poll_interval_s
        self._search_dirs = tuple(search_dirs) or default_search_dirs(path)
        self.lost_bytes = 0
        """Bytes known to be lost: the checkpoint's file was found but unreadable."""
        self.lost_files = 0
        """Files whose rest after the checkpoint could not be read, size known or not."""
        self._resolved = False
        self._file: _OpenFile | None = None
        # What replaced the file at the path, opened as soon as it was seen so
        # that a second rotation while we finish the first cannot skip it.
        self._next: _OpenFile | None = None
        self._stopped = False
        self._waiter: asyncio.Future[None] | None = None
        self._last_open_error: str | None = None

    # -- public ----------------------------------------------------------

    def initial_position(self) -> Position | None:
        """Where reading begins; None when the file does not exist yet.

        Opens the file, so that what is read is the file this position names
        even if it is rotated before iteration begins.
        """
        self._resolve()
        return self._file.splitter.checkpoint if self._file is not None else None

    def __aiter__(self) -> AsyncIterator[Line]:
        return self._lines()

    async def batches(self) -> AsyncIterator[list[Line]]:
        """The lines, a list per read (one or more lines each)."""
        self._resolve()
        try:
            while not self._stopped:
                current = self._file
                if current is None:
                    current = self._file = self._open_path_from_start()
                    if current is None:
                        if not self._follow:
                            return
                        await self._idle()
                        continue
                    log.info("%s appeared: reading it from its start.", self._path)
                chunk = os.read(current.fd, CHUNK_BYTES)
                if chunk:
                    lines = current.splitter.feed(chunk)
                    if lines:
                        yield lines
                        # Let other tasks run even when the file never runs dry.
                        await asyncio.sleep(0)
                    continue
                if self._next is not None:
                    last = self._switch_to_next(current)
                    if last is not None:
                        yield [last]
                    continue
                if self._more_to_read(current):
                    continue
                if not self._follow:
                    return
                await self._idle()
        finally:
            self._close_files()

    async def stop(self) -> None:
        """Ends the iteration at its next step; an idle wait ends at once."""
        self._stopped = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        await self.stop()
        self._close_files()

    async def __aenter__(self) -> AlertTailer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- reading ---------------------------------------------------------

    async def _lines(self) -> AsyncIterator[Line]:
        async for batch in self.batches():
            for line in batch:
                yield line

    def _more_to_read(self, current: _OpenFile) -> bool:
        """At the end of ``current``: looks at the path for growth, truncation or a new file."""
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            # Deleted or between rename and create: whoever still writes to
            # the old file writes to our descriptor too, so keep it.
            return False
        except OSError as exc:
            self._log_open_error(exc)
            return False
        fed = current.splitter.fed_offset
        if FileId.of(status) == current.file_id:
            if status.st_size < fed:
                log.warning(
                    "%s was truncated to %d bytes after %d had been read: reading it again "
                    "from its start (lines written just before the truncation may be lost).",
                    self._path,
                    status.st_size,
                    fed,
                )
                os.lseek(current.fd, 0, os.SEEK_SET)
                current.splitter.reset(0)
                return True
            return status.st_size > fed
        replacement = self._open_path_from_start()
        if replacement is None:
            return False
        if replacement.file_id == current.file_id:  # swapped back between stat and open
            replacement.close()
            return True
        log.info(
            "%s was rotated: finishing the old file (read up to offset %d), then reading "
            "the new one from its start.",
            self._path,
            fed,
        )
        self._next = replacement
        return True  # read the old file to its end once more before switching

    def _switch_to_next(self, finished: _OpenFile) -> Line | None:
        """Ends a rotated file, whose unterminated last line is now complete."""
        last = finished.splitter.flush()
        finished.close()
        self._file, self._next = self._next, None
        return last

    async def _idle(self) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self._poll_interval_s, _wake, waiter)
        self._waiter = waiter
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _close_files(self) -> None:
        for opened in (self._file, self._next):
            if opened is not None:
                opened.close()

    # -- opening ---------------------------------------------------------

    def _resolve(self) -> None:
        if self._resolved:
            return
        self._resolved = True
        if self._start is not None:
            self._file = self._open_checkpoint(self._start)
            return
        opened = self._open_path()
        if opened is None:
            return
        fd, status = opened
        offset = 0 if self._from_start else self._start_of_last_line(fd, status.st_size)
        self._file = self._wrap(fd, status, offset, str(self._path))

    def _open_checkpoint(self, start: Position) -> _OpenFile | None:
        opened = self._open_path()
        if opened is not None and FileId.of(opened[1]) == start.file_id:
            fd, status = opened
            offset = start.offset
            if offset > status.st_size:
                log.warning(
                    "%s is shorter (%d bytes) than the checkpoint (offset %d): it was "
                    "truncated while we were stopped; reading it from its start.",
                    self._path,
                    status.st_size,
                    offset,
                )
                offset = 0
            return self._wrap(fd, status, offset, str(self._path))
        current = None if opened is None else self._wrap(opened[0], opened[1], 0, str(self._path))
        rotated = self._open_rotated(start)
        if rotated is None:
            return current
        self._next = current
        return rotated

    def _open_rotated(self, start: Position) -> _OpenFile | None:
        """The checkpoint's file, rotated away while we were stopped, at the checkpoint."""
        hint = Path(start.path) if start.path else None
        found = find_file(start.file_id, self._search_dirs, hint=hint)
        if found is None:
            self.lost_files += 1
            log.warning(
                "The file of the checkpoint (%s, device %d, inode %d) was rotated and is not "
                "under %s any more (compressed or deleted): what it held after offset %d "
                "could not be read (how many bytes is unknown). Reading %s from its start.",
                start.path,
                start.file_id.device,
                start.file_id.inode,
                ", ".join(str(directory) for directory in self._search_dirs),
                start.offset,
                self._path,
            )
            return None
        try:
            fd = os.open(found, _OPEN_FLAGS)
        except OSError as exc:
            self._count_unreadable(found, start, exc)
            return None
        status = os.fstat(fd)
        offset = start.offset
        if offset > status.st_size:
            log.warning(
                "%s, the checkpoint's file, is shorter (%d bytes) than the checkpoint "
                "(offset %d): nothing more to read from it.",
                found,
                status.st_size,
                offset,
            )
            offset = status.st_size
        log.info(
            "The checkpoint's file was rotated while we were stopped: finishing it as %s "
            "from offset %d, then reading %s from its start.",
            found,
            offset,
            self._path,
        )
        return self._wrap(fd, status, offset, str(found))

    def _count_unreadable(self, found: Path, start: Position, error: OSError) -> None:
        self.lost_files += 1
        try:
            lost = max(0, os.stat(found).st_size - start.offset)
        except OSError:
            lost = None
        if lost is not None:
            self.lost_bytes += lost
        log.warning(
            "The checkpoint's file, rotated to %s, cannot be read (%s): %s bytes after "
            "offset %d are lost. Reading %s from its start.",
            found,
            error.strerror,
            "unknown" if lost is None else lost,
            start.offset,
            self._path,
        )

    def _open_path_from_start(self) -> _OpenFile | None:
        opened = self._open_path()
        if opened is None:
            return None
        return self._wrap(opened[0], opened[1], 0, str(self._path))

    def _open_path(self) -> tuple[int, os.stat_result] | None:
        """Opens the path; the identity is taken from the descriptor, never the name."""
        try:
            fd = os.open(self._path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._log_open_error(exc)
            return None
        self._last_open_error = None
        try:
            return fd, os.fstat(fd)
        except OSError:
            os.close(fd)
            raise

    def _wrap(self, fd: int, status: os.stat_result, offset: int, path: str) -> _OpenFile:
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        splitter = LineSplitter(FileId.of(status), path, offset, self._max_line_bytes)
        return _OpenFile(fd, splitter)

    def _start_of_last_line(self, fd: int, size: int) -> int:
        """Where the last, maybe unfinished, line of the file begins.

        Starting there rather than at the very end (as stock does) reads an
        alert that was half written at start-up once it is complete, instead
        of its second half as a broken line. When that line is already longer
        than the limit, starting inside it still yields it as oversize.
        """
        limit = max(0, size - self._max_line_bytes - 1)
        end = size
        while end > limit:
            begin = max(limit, end - _LOOKBACK_BLOCK_BYTES)
            block = os.pread(fd, end - begin, begin)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return begin + newline + 1
            end = begin
        return limit

    def _log_open_error(self, error: OSError) -> None:
        # Logged once per distinct error, not at every poll.
        text = f"{error.strerror} ({error.errno})"
        if text != self._last_open_error:
            self._last_open_error = text
            log.error("Cannot read %s: %s", self._path, text)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
