"""Wakes the tailer as soon as alerts.json changes, through Linux's inotify.

An event only says "look again": the tailer then checks the file exactly as
after a poll (growth, truncation, a new file behind the name). Nothing is
taken from the event itself, so a missed or merged event can only cost time,
never an alert; the tailer keeps a slow poll for that case.

Watched: the file, for writes (``IN_MODIFY``, a truncation too), a rename
(``IN_MOVE_SELF``) and its deletion (``IN_DELETE_SELF``); its directory, for
a new file taking the name (``IN_CREATE``, ``IN_MOVED_TO``), after which the
watch moves to the new file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

try:  # Linux only; elsewhere the tailer polls.
    from inotify_simple import INotify, flags, parse_events
except (ImportError, OSError) as _import_error:  # pragma: no cover - not on Linux
    INotify = None
    _UNAVAILABLE: str | None = str(_import_error)
else:
    _UNAVAILABLE = None

_FILE_MASK = 0
_DIRECTORY_MASK = 0
if INotify is not None:
    _FILE_MASK = flags.MODIFY | flags.MOVE_SELF | flags.DELETE_SELF
    _DIRECTORY_MASK = flags.CREATE | flags.MOVED_TO | flags.ONLYDIR
# Room for a few thousand queued events: one read drains a burst.
_READ_BYTES = 64 * 1024


class ChangeWatch:
    """inotify watches on one file and its directory, read on the running event loop.

    ``on_change`` is called from the loop, at most once per wake-up of the
    loop, whenever the file or its name may have changed. :attr:`complete`
    is false while the file itself could not be watched (the watch limit
    reached): the caller should then poll at its fast pace.
    """

    def __init__(
        self, path: Path, inotify: Any, on_change: Callable[[], None], directory_wd: int
    ) -> None:
        self._path = path
        self._inotify = inotify
        self._fd: int = inotify.fileno()
        self._on_change = on_change
        self._directory_wd = directory_wd
        self._file_wd: int | None = None
        self._file_error: str | None = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._on_readable)
        self._watch_file()

    @classmethod
    def start(cls, path: Path, on_change: Callable[[], None]) -> ChangeWatch | None:
        """Watches ``path``; None (logged) where inotify cannot be used: poll then."""
        if INotify is None:
            log.warning("inotify is not available (%s): polling %s.", _UNAVAILABLE, path)
            return None
        try:
            inotify = INotify(nonblocking=True)
        except OSError as exc:
            # EMFILE: fs.inotify.max_user_instances reached.
            log.warning("Cannot start inotify (%s): polling %s instead.", _reason(exc), path)
            return None
        try:
            directory_wd = inotify.add_watch(path.parent, _DIRECTORY_MASK)
            watch = cls(path, inotify, on_change, directory_wd)
        except OSError as exc:
            inotify.close()
            log.warning(
                "Cannot watch %s with inotify (%s): polling it instead.",
                path.parent,
                _reason(exc),
            )
            return None
        log.info("Following %s with inotify.", path)
        return watch

    @property
    def complete(self) -> bool:
        """Whether the file (when it exists) and its directory are both watched."""
        return self._file_error is None

    def close(self) -> None:
        if self._fd >= 0:
            if not self._loop.is_closed():  # an async generator finalized at loop shutdown
                self._loop.remove_reader(self._fd)
            self._inotify.close()
            self._fd = -1

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:  # pragma: no cover - the kernel's own descriptor
            log.error("Reading inotify events failed (%s): polling %s.", _reason(exc), self._path)
            self._file_error = _reason(exc)
            self.close()
            self._on_change()
            return
        events = parse_events(data)
        for event in events:
            if event.wd == self._directory_wd:
                # Another file took the name: follow it from now on.
                self._watch_file()
                break
            if event.wd == self._file_wd and event.mask & flags.IGNORED:
                self._file_wd = None  # deleted and closed: the kernel dropped the watch
        self._on_change()

    def _watch_file(self) -> None:
        previous = self._file_wd
        try:
            self._file_wd = self._inotify.add_watch(self._path, _FILE_MASK)
        except FileNotFoundError:
            # Renamed away or deleted: the old file may still be written to, so
            # keep its watch; the directory's watch says when a new one comes.
            return
        except OSError as exc:
            reason = _reason(exc)
            if reason != self._file_error:
                log.warning(
                    "Cannot watch %s with inotify (%s): polling it until it can be.",
                    self._path,
                    reason,
                )
            self._file_error = reason
            return
        if self._file_error is not None:
            log.info("Watching %s with inotify again.", self._path)
            self._file_error = None
        if previous is not None and previous != self._file_wd:
            # The rotated file is read to its end on this very wake-up; its
            # watch would only wake us for writes no one reads any more.
            with contextlib.suppress(OSError):
                self._inotify.rm_watch(previous)


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "the inotify watch limit is reached: raise fs.inotify.max_user_watches"
    if error.errno == errno.EMFILE:
        return "too many inotify instances: raise fs.inotify.max_user_instances"
    return error.strerror or str(error)
