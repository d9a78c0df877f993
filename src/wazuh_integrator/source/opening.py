"""Opens alerts.json, or the file a checkpoint names, at the right offset."""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from wazuh_integrator.source.fingerprint import same_head
from wazuh_integrator.source.locate import find_file, rotated_after
from wazuh_integrator.source.positions import FileId, Position
from wazuh_integrator.source.splitter import LineSplitter

log = logging.getLogger(__name__)

_LOOKBACK_BLOCK_BYTES = 64 * 1024
# O_NONBLOCK: opening a FIFO (or a device) put where alerts.json belongs would
# otherwise block the event loop until a writer came; no regular file cares.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class NotRegularFileError(OSError):
    """The path names something other than a regular file: a FIFO, a device, a directory."""


def open_regular(path: Path | str) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading without blocking, and refuse anything but a
    regular file. The identity is taken from the descriptor, never the name."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotRegularFileError(
                errno.EINVAL, f"not a regular file but {_kind(status.st_mode)}"
            )
    except OSError:
        os.close(fd)
        raise
    return fd, status


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


class OpenFile:
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


class Opener:
    """Opens the files to read, and counts what a checkpoint could not reach."""

    def __init__(self, path: Path, max_line_bytes: int, search_dirs: Sequence[Path]) -> None:
        self._path = path
        self._max_line_bytes = max_line_bytes
        self._search_dirs = search_dirs
        self.lost_bytes = 0
        self.lost_files = 0
        # Files to read between the checkpoint's rotated file and the current one.
        self.between: list[OpenFile] = []
        self._last_open_error: str | None = None

    def open_first(
        self, start: Position | None, *, from_start: bool, start_head: str | None = None
    ) -> tuple[OpenFile | None, OpenFile | None]:
        """The file to read first, and the one to read once it is finished, if known.

        The second is the current alerts.json when the first is the
        checkpoint's file, rotated away while we were stopped.
        """
        if start is not None:
            return self._open_checkpoint(start, start_head)
        opened = self._open_path()
        if opened is None:
            return None, None
        fd, status = opened
        offset = 0 if from_start else self._start_of_last_line(fd, status.st_size)
        return self._wrap(fd, status, offset, str(self._path)), None

    def current_name(self, rotated: OpenFile) -> str | None:
        """Where ``rotated`` is now, or None when it cannot be found. A
        warning about one of its lines then names a file that holds the line,
        and a checkpoint in it names the first place a restart looks."""
        try:
            name = os.readlink(f"/proc/self/fd/{rotated.fd}")
        except OSError:  # no /proc
            name = ""
        if name.startswith("/") and not name.endswith(" (deleted)"):
            return name
        # Unlinked from its old name but kept under another (Wazuh links the
        # dated file): /proc says "deleted", so look for it by identity.
        found = find_file(rotated.file_id, self._search_dirs)
        return None if found is None else str(found)

    def _open_checkpoint(
        self, start: Position, start_head: str | None
    ) -> tuple[OpenFile | None, OpenFile | None]:
        opened = self._open_path()
        if opened is not None and FileId.of(opened[1]) == start.file_id:
            fd, status = opened
            offset = start.offset
            if start_head is not None and not same_head(fd, start_head):
                log.warning(
                    "%s has the checkpoint's device and inode but not its first bytes: it "
                    "was replaced (its inode number reused) or truncated and written again "
                    "while we were stopped. Reading it from its start; what the old file "
                    "held after offset %d could not be read.",
                    self._path,
                    offset,
                )
                offset = 0
            elif offset > status.st_size:
                log.warning(
                    "%s is shorter (%d bytes) than the checkpoint (offset %d): it was "
                    "truncated while we were stopped; reading it from its start.",
                    self._path,
                    status.st_size,
                    offset,
                )
                offset = 0
            return self._wrap(fd, status, offset, str(self._path)), None
        current = None if opened is None else self._wrap(opened[0], opened[1], 0, str(self._path))
        rotated = self._open_rotated(start)
        if rotated is None:
            return current, None
        self.between = self._open_between(rotated, current)
        return rotated, current

    def _open_between(self, rotated: OpenFile, current: OpenFile | None) -> list[OpenFile]:
        """The files of the days between the checkpoint's and today's, when the
        daemon was stopped across more than one rotation, opened from their start."""
        exclude = [current.file_id] if current is not None else []
        between = []
        for path in rotated_after(Path(rotated.splitter.path), self._search_dirs, exclude=exclude):
            try:
                fd, status = open_regular(path)
            except OSError as exc:
                log.warning("Cannot read %s, rotated while we were stopped: %s", path, exc)
                continue
            between.append(self._wrap(fd, status, 0, str(path)))
        if between:
            log.info(
                "Rotated more than once while we were stopped: reading %s too, from their start.",
                ", ".join(opened.splitter.path for opened in between),
            )
        return between

    def _open_rotated(self, start: Position) -> OpenFile | None:
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
            fd, status = open_regular(found)
        except OSError as exc:
            self._count_unreadable(found, start, exc)
            return None
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

    def open_from_start(self) -> OpenFile | None:
        opened = self._open_path()
        if opened is None:
            return None
        return self._wrap(opened[0], opened[1], 0, str(self._path))

    def _open_path(self) -> tuple[int, os.stat_result] | None:
        """Opens the path; the identity is taken from the descriptor, never the name."""
        try:
            opened = open_regular(self._path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.log_error(exc)
            return None
        self._last_open_error = None
        return opened

    def _wrap(self, fd: int, status: os.stat_result, offset: int, path: str) -> OpenFile:
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        splitter = LineSplitter(FileId.of(status), path, offset, self._max_line_bytes)
        return OpenFile(fd, splitter)

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

    def log_error(self, error: OSError) -> None:
        # Logged once per distinct error, not at every poll.
        if isinstance(error, NotRegularFileError):
            text = f"{error.strerror}: refused, waiting for a regular file"
        else:
            text = f"{error.strerror} ({error.errno})"
        if text != self._last_open_error:
            self._last_open_error = text
            level = logging.WARNING if isinstance(error, NotRegularFileError) else logging.ERROR
            log.log(level, "Cannot read %s: %s", self._path, text)
