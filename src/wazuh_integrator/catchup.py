"""``run --since``: the alerts of the rotated files, from a time on, before
alerts.json is followed.

No checkpoint is saved until the catch-up is done: a stop or a crash before
then leaves none, and the same ``--since`` does it again (at least once, as
everywhere), never skipping what it had not reached.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from itertools import chain
from pathlib import Path

from wazuh_integrator.source import FileId, Line, Position
from wazuh_integrator.source.archive import (
    ArchiveError,
    archived_alert_files,
    lines_from_first_at_or_after,
    read_lines,
    start_at_or_after,
)

__all__ = ["catch_up_since"]

log = logging.getLogger(__name__)


async def catch_up_since(
    since: datetime,
    alerts_path: Path,
    *,
    max_line_bytes: int,
    route: Callable[[list[Line]], Awaitable[None]],
    settle: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
) -> Position | None:
    """Hand ``route`` the rotated files' lines from the first alert at or
    after ``since`` on, wait for ``settle`` (every delivery settled), and
    return where alerts.json is to be read from: its start when the rotated
    files held such alerts, else its first alert at or after ``since``.

    None once ``stop`` is set (the shutdown parks what is left), or when
    alerts.json does not exist yet (it is read from its start once it appears).
    """
    files = archived_alert_files(alerts_path.parent, since=since, exclude=[alerts_path])
    log.info(
        "Looking for the first alert at or after %s in %d rotated file(s) under %s, then in %s.",
        since.isoformat(),
        len(files),
        alerts_path.parent,
        alerts_path,
    )
    batches = chain.from_iterable(_readable_lines(path, max_line_bytes) for path in files)
    found = 0
    for batch in lines_from_first_at_or_after(batches, since):
        await route(batch)
        found += len(batch)
        await asyncio.sleep(0)
        if stop.is_set():
            return None
    await settle()
    if found:
        log.info("Read %d line(s) from the rotated files; now reading %s.", found, alerts_path)
    try:
        if found:
            return Position(FileId.of(os.stat(alerts_path)), 0, str(alerts_path))
        return start_at_or_after(alerts_path, since)
    except FileNotFoundError:
        return None


def _readable_lines(path: Path, max_line_bytes: int) -> Iterator[list[Line]]:
    """The lines of one rotated file up to any damage, which is logged.

    A damaged archive (a truncated or corrupt ``.gz``) must not keep the
    daemon from starting: every restart would meet it again. Its readable
    alerts are sent, the rest is named in the log for the admin to recover.
    """
    try:
        yield from read_lines(path, max_line_bytes=max_line_bytes)
    except ArchiveError as exc:
        log.error("%s; the rest of that file is skipped, the next files are read.", exc)
