"""A fingerprint of a file's first bytes, kept with the checkpoint.

A file's identity (device and inode) tells a rotated file from a grown one,
but not everything: a file deleted while the daemon is stopped may leave its
inode number to the next alerts.json, and a file truncated while stopped may
grow back past the checkpoint. Either way the identity matches and reading
would resume in the middle of unrelated data. The first bytes of alerts.json
(its first alert: a timestamp and an id) tell: when they differ from those
seen when the checkpoint was saved, the file is read from its start.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["HEAD_BYTES", "head_fingerprint", "same_head"]

HEAD_BYTES = 256


def head_fingerprint(fd: int, offset: int) -> str | None:
    """``"<n>:<sha256>"`` of the first ``n = min(HEAD_BYTES, offset)`` bytes
    of the open file ``fd``; None when there are none or they cannot be read."""
    size = min(HEAD_BYTES, offset)
    if size <= 0:
        return None
    try:
        head = os.pread(fd, size, 0)
    except OSError:
        return None
    if len(head) < size:
        return None
    return f"{size}:{hashlib.sha256(head).hexdigest()}"


def same_head(fd: int, fingerprint: str) -> bool:
    """Whether the open file ``fd`` still starts with the bytes ``fingerprint`` saw."""
    size_text, _, _ = fingerprint.partition(":")
    try:
        size = int(size_text)
    except ValueError:
        return True  # not one of ours: nothing to compare with
    return head_fingerprint(fd, size) == fingerprint
