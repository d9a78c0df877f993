"""Finds a rotated alerts file by its identity.

Wazuh keeps ``logs/alerts/alerts.json`` as a hard link to the day's
``logs/alerts/YYYY/Mon/ossec-alerts-DD.json``. After a rotation the old
alerts.json name is gone but the dated name still points at the same inode,
until Wazuh compresses it (the compressed copy is a new file we cannot
match, so it is not looked for).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path

from wazuh_integrator.source.positions import FileId

log = logging.getLogger(__name__)

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
# alerts/ → YYYY/ → Mon/: deep enough for Wazuh's tree, shallow enough to stay cheap.
_MAX_DEPTH = 2


def default_search_dirs(alerts_path: Path) -> tuple[Path, ...]:
    """alerts.json's folder, whose ``YYYY/Mon/`` subfolders hold the dated files."""
    return (alerts_path.parent,)


def find_file(
    file_id: FileId, search_dirs: Sequence[Path], *, hint: Path | None = None
) -> Path | None:
    """The path of an uncompressed ``.json`` file with this identity, or None.

    ``hint`` (where the file was when the checkpoint was taken) is tried
    first; then each folder and its subfolders, newest first.
    """
    hinted = () if hint is None else (hint,)
    searched = (_json_files(directory, _MAX_DEPTH) for directory in search_dirs)
    for candidate in chain(hinted, chain.from_iterable(searched)):
        try:
            status = os.stat(candidate)
        except OSError:
            continue
        if FileId.of(status) == file_id:
            return candidate
    return None


def rotated_after(
    found: Path, search_dirs: Sequence[Path], *, exclude: Sequence[FileId] = ()
) -> list[Path]:
    """The uncompressed ``.json`` files rotated after ``found``, oldest first.

    After two rotations while the daemon was stopped, these are the days in
    between: written after the checkpoint's file (a later modification time),
    neither it nor the current alerts.json (``exclude``: identities), each
    listed once however many names it has.
    """
    try:
        since = os.stat(found)
    except OSError:
        return []
    skip = {FileId.of(since), *exclude}
    later: dict[FileId, tuple[int, str, Path]] = {}
    searched = (_json_files(directory, _MAX_DEPTH) for directory in search_dirs)
    for candidate in chain.from_iterable(searched):
        try:
            status = os.stat(candidate)
        except OSError:
            continue
        identity = FileId.of(status)
        if identity in skip or status.st_mtime_ns <= since.st_mtime_ns:
            continue
        # One file under two names (a dated name and alerts.json): listed once.
        later.setdefault(identity, (status.st_mtime_ns, str(candidate), candidate))
    return [path for _, _, path in sorted(later.values())]


def _json_files(directory: Path, depth: int) -> Iterator[Path]:
    """Regular ``.json`` files of ``directory``, then of its subfolders, newest first."""
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError as exc:
        log.debug("Cannot list %s while looking for a rotated alerts file: %s", directory, exc)
        return
    files = sorted(
        (e for e in entries if e.name.endswith(".json") and e.is_file(follow_symlinks=False)),
        key=lambda entry: entry.name,
        reverse=True,
    )
    for entry in files:
        yield Path(entry.path)
    if depth <= 0:
        return
    folders = [e for e in entries if e.is_dir(follow_symlinks=False)]
    folders.sort(key=lambda entry: _newest_first_key(entry.name), reverse=True)
    for folder in folders:
        yield from _json_files(Path(folder.path), depth - 1)


def _newest_first_key(name: str) -> tuple[int, int, str]:
    """Orders years and month names by time, and anything else after them."""
    if name.isdigit():
        return (2, int(name), name)
    month = _MONTHS.get(name.lower())
    if month is not None:
        return (2, month, name)
    return (1, 0, name)
