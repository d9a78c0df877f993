"""The legacy text alert file that custom scripts get without ``alert_format json``.

Seven ``key='value'`` lines, in a fixed order, no newline after the last. The
values are not quoted for a shell: instead the two fields most likely to carry
attacker-controlled text, ``alertlog`` and ``srcip``, are sanitised byte by
byte, so a script that ``source``s the file cannot be made to run anything.
The rules are stock's (REFERENCE.md), so scripts written for stock read the
same values here.

Fields are read as stock reads them with cJSON: a field that is there but not
a string is printed ``(null)``, as glibc prints a NULL string, and the level
is cJSON's ``valueint``. A field missing from the alert becomes an empty
value: stock crashes there, which we do not copy. Sanitising works on bytes,
so a multi-byte UTF-8 character becomes one space per byte, and the value's
length in characters is its length in bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from wazuh_integrator.filters import c_member, c_string, c_valueint

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


_MISSING: Final = object()
# What glibc's printf writes for a NULL "%s": stock prints a field that is
# there but not a string (cJSON's valuestring is then NULL) this way.
_C_NULL: Final = "(null)"


def _member(node: Any, name: str) -> Any:
    if not isinstance(node, Mapping):
        return _MISSING
    return c_member(node, name, _MISSING)


def _string(value: Any) -> str:
    """A ``%s`` field. Stock crashes on a missing one: we write it empty."""
    if value is _MISSING:
        return ""
    return c_string(value) if isinstance(value, str) else _C_NULL


def _number(value: Any) -> str:
    """A ``%d`` field: cJSON's valueint. Missing, it is empty (stock crashes)."""
    return "" if value is _MISSING else str(c_valueint(value))


def _sanitised_input(value: Any) -> bytes:
    # Stock sanitises the string in place; a missing or non-string one
    # crashes it, and is empty here.
    if not isinstance(value, str):
        return b""
    return c_string(value).encode("utf-8", "surrogateescape")


def _cut(raw: bytes, max_log: int) -> bytes:
    # Stock stops when it has counted max_log bytes and ends the text with
    # "...", so a text of exactly max_log bytes gets its ellipsis too.
    if len(raw) < max_log:
        return raw
    return raw[: max_log - len(_ELLIPSIS)] + _ELLIPSIS


def format_legacy_alert(alert: Mapping[str, Any], max_log: int) -> str:
    """The legacy text alert file for ``alert``; ``alertlog`` is at most ``max_log`` long.

    Members are found like stock's cJSON finds them (ignoring ASCII case, the
    first of a kind).
    """
    if max_log < len(_ELLIPSIS):
        raise ValueError(f"max_log must be at least {len(_ELLIPSIS)}, not {max_log}")
    rule = _member(alert, "rule")
    full_log = _sanitised_input(_member(alert, "full_log"))
    srcip = _sanitised_input(_member(_member(alert, "data"), "srcip"))
    lines = (
        ("alertdate", _string(_member(alert, "timestamp"))),
        ("alertlocation", _string(_member(alert, "location"))),
        ("ruleid", _string(_member(rule, "id"))),
        ("alertlevel", _number(_member(rule, "level"))),
        ("ruledescription", _string(_member(rule, "description"))),
        ("alertlog", _cut(full_log, max_log).translate(_ALERTLOG_TABLE).decode("ascii")),
        ("srcip", srcip.translate(_SRCIP_TABLE).decode("ascii")),
    )
    return "\n".join(f"{key}='{value}'" for key, value in lines)
