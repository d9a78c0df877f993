"""The legacy text alert file that custom scripts get without ``alert_format json``.

Seven ``key='value'`` lines, in a fixed order, no newline after the last. The
values are not quoted for a shell: instead the two fields most likely to carry
attacker-controlled text, ``alertlog`` and ``srcip``, are sanitised byte by
byte, so a script that ``source``s the file cannot be made to run anything.
The rules are stock's (REFERENCE.md), so scripts written for stock read the
same values here.

A field missing from the alert becomes an empty value (stock has no sensible
behaviour to copy there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["format_legacy_alert"]

_ELLIPSIS = b"..."
_SPACE = ord(" ")


def _translation_table(keep: range, blanked: str, replaced: Mapping[str, str]) -> bytes:
    """A ``bytes.translate`` table: bytes outside ``keep`` or in ``blanked``
    become spaces, ``replaced`` maps single characters to others."""
    table = bytearray(range(256))
    for byte in range(256):
        if byte not in keep or chr(byte) in blanked:
            table[byte] = _SPACE
    for source, target in replaced.items():
        table[ord(source)] = ord(target)
    return bytes(table)


# The space is kept in srcip although it lies outside 46-122, as stock does.
_ALERTLOG_TABLE = _translation_table(range(32, 123), "'\"`!$", {"\\": "/", ";": ","})
_SRCIP_TABLE = _translation_table(range(46, 123), "'\\`", {" ": " "})


def _text(value: Any) -> str:
    """A field as stock would print it; absent or null is empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _field(alert: Mapping[str, Any], *path: str) -> str:
    node: Any = alert
    for key in path:
        if not isinstance(node, Mapping):
            return ""
        node = node.get(key)
    return _text(node)


def _cut(raw: bytes, max_log: int) -> bytes:
    if len(raw) <= max_log:
        return raw
    return raw[: max_log - len(_ELLIPSIS)] + _ELLIPSIS


def _sanitise(text: str, table: bytes) -> str:
    # Byte-wise like stock: a multi-byte UTF-8 character becomes one space per byte,
    # so the value's length in characters equals its length in bytes.
    return text.encode("utf-8", "surrogateescape").translate(table).decode("ascii")


def format_legacy_alert(alert: Mapping[str, Any], max_log: int) -> str:
    """The legacy text alert file for ``alert``; ``alertlog`` is at most ``max_log`` long."""
    if max_log < len(_ELLIPSIS):
        raise ValueError(f"max_log must be at least {len(_ELLIPSIS)}, not {max_log}")
    full_log = _field(alert, "full_log").encode("utf-8", "surrogateescape")
    alertlog = _cut(full_log, max_log).translate(_ALERTLOG_TABLE).decode("ascii")
    lines = (
        ("alertdate", _field(alert, "timestamp")),
        ("alertlocation", _field(alert, "location")),
        ("ruleid", _field(alert, "rule", "id")),
        ("alertlevel", _field(alert, "rule", "level")),
        ("ruledescription", _field(alert, "rule", "description")),
        ("alertlog", alertlog),
        ("srcip", _sanitise(_field(alert, "data", "srcip"), _SRCIP_TABLE)),
    )
    return "\n".join(f"{key}='{value}'" for key, value in lines)
