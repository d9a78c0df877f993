"""Follows alerts.json as analysisd appends to it, across rotations and restarts."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from types import TracebackType

from wazuh_integrator.source.locate import default_search_dirs
from wazuh_integrator.source.opening import Opener, OpenFile
from wazuh_integrator.source.positions import FileId, Line, Position
from wazuh_integrator.source.watch import ChangeWatch

log = logging.getLogger(__name__)

# Big reads keep the syscalls per alert far below one; 256 KiB holds ~250 alerts.
CHUNK_BYTES = 256 * 1024
# With inotify, polling only covers an event that never came (a write on
# another machine to a file shared over NFS, say): it need not be quick.
SAFETY_POLL_S = 1.0


class AlertTailer:
    """Yields the complete lines of alerts.json with their positions.

    Where reading begins: at ``start`` (a checkpoint) when given, even if that
    file has been rotated away since (it is then looked for under
    ``search_dirs`` by its identity); else at the start of the last line of
    the file, or at its very start with ``from_start``. A file that does not
    exist yet, or that appears after a rotation or a deletion, is read from
    its start. ``start_head`` is the fingerprint of the first bytes of the
    checkpoint's file (:mod:`~wazuh_integrator.source.fingerprint`): a file with
    the same identity but other first bytes is read from its start.

    With ``follow`` it runs until :meth:`stop`, and when idle waits for new
    data: woken by inotify (``watch_changes``, where the kernel offers it),
    with a poll every ``safety_poll_s`` in case an event never comes; else
    polling every ``poll_interval_s``. Without ``follow`` it stops at the end
    of the data (after finishing any rotated file it had to read first).
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
        watch_changes: bool = True,
        safety_poll_s: float = SAFETY_POLL_S,
        search_dirs: Sequence[Path] = (),
        start_head: str | None = None,
    ) -> None:
        self._path = path
        self._start = start
        self._start_head = start_head
        self._from_start = from_start
        self._follow = follow
        self._poll_interval_s = poll_interval_s
        self._watch_changes = watch_changes and follow
        self._safety_poll_s = safety_poll_s
        self._watch: ChangeWatch | None = None
        self._opener = Opener(path, max_line_bytes, tuple(search_dirs) or default_search_dirs(path))
        self._resolved = False
        self._file: OpenFile | None = None
        # What replaced the file at the path, opened as soon as it was seen so
        # that a second rotation while we finish the first cannot skip it.
        self._next: OpenFile | None = None
        # Rotated while we were stopped, after the checkpoint's file: read in between.
        self._between: list[OpenFile] = []
        self._stopped = False
        self._waiter: asyncio.Future[None] | None = None
        self._path_missing = False

    # -- public ----------------------------------------------------------

    @property
    def lost_bytes(self) -> int:
        """Bytes known to be lost: the checkpoint's file was found but unreadable."""
        return self._opener.lost_bytes

    @property
    def lost_files(self) -> int:
        """Files whose rest after the checkpoint could not be read, size known or not."""
        return self._opener.lost_files

    def initial_position(self) -> Position | None:
        """Where reading begins; None when the file does not exist yet.

        Opens the file, so that what is read is the file this position names
        even if it is rotated before iteration begins.
        """
        self._resolve()
        return self._file.splitter.checkpoint if self._file is not None else None

    def __aiter__(self) -> AsyncGenerator[Line, None]:
        return self._lines()

    async def batches(self) -> AsyncGenerator[list[Line], None]:
        """The lines, a list per read (one or more lines each)."""
        self._resolve()
        if self._watch_changes and self._watch is None:
            self._watch = ChangeWatch.start(self._path, self._wake)
        try:
            while not self._stopped:
                current = self._file
                if current is None:
                    current = self._file = self._opener.open_from_start()
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
                if self._next is not None or self._between:
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
        self._wake()

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

    async def _lines(self) -> AsyncGenerator[Line, None]:
        async for batch in self.batches():
            for line in batch:
                yield line

    def _more_to_read(self, current: OpenFile) -> bool:
        """At the end of ``current``: looks at the path for growth, truncation or a new file."""
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            # Deleted or between rename and create: whoever still writes to
            # the old file writes to our descriptor too, so keep it.
            if not self._path_missing:
                self._path_missing = True
                log.info(
                    "%s is gone: still reading the old file until a new one appears.",
                    self._path,
                )
            return False
        except OSError as exc:
            self._opener.log_error(exc)
            return False
        self._path_missing = False
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
        replacement = self._opener.open_from_start()
        if replacement is None:
            return False
        if replacement.file_id == current.file_id:  # swapped back between stat and open
            replacement.close()
            return True
        moved_to = self._opener.current_name(current)
        if moved_to is not None:
            current.splitter.renamed(moved_to)
        log.info(
            "%s was rotated: finishing the old file%s (read up to offset %d), then "
            "reading the new one from its start.",
            self._path,
            "" if moved_to is None else f", now {moved_to}",
            fed,
        )
        self._next = replacement
        return True  # read the old file to its end once more before switching

    def _switch_to_next(self, finished: OpenFile) -> Line | None:
        """Ends a rotated file, whose unterminated last line is now complete."""
        last = finished.splitter.flush()
        finished.close()
        if self._between:
            self._file = self._between.pop(0)
        else:
            self._file, self._next = self._next, None
        return last

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _idle(self) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        watched = self._watch is not None and self._watch.complete
        pause_s = self._safety_poll_s if watched else self._poll_interval_s
        timer = loop.call_later(pause_s, _wake, waiter)
        self._waiter = waiter
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _resolve(self) -> None:
        if not self._resolved:
            self._resolved = True
            self._file, self._next = self._opener.open_first(
                self._start, from_start=self._from_start, start_head=self._start_head
            )
            self._between = self._opener.between

    def _close_files(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        for opened in (self._file, *self._between, self._next):
            if opened is not None:
                opened.close()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
