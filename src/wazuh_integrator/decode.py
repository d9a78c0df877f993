"""Decoding alert lines: only the filter fields first, the whole alert on demand.

Most alerts match no integration, so the daemon decodes just ``rule.level``,
``rule.id``, ``rule.groups`` and ``location`` into a typed msgspec struct
(about 2.6 times as fast as a full decode, DESIGN.md) and decodes the whole
alert only for those that match. When the fast decoder meets anything it does
not expect (a level given as a string, a missing field whose name may differ
in case, an embedded NUL), it hands the line to the full decoder and
:meth:`FilterFields.from_alert`, so odd but valid alerts route exactly as they
would have.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import msgspec
import orjson

from wazuh_integrator.filters import FilterFields
from wazuh_integrator.nesting import MAX_NESTING, NestingError, check_nesting

__all__ = [
    "AlertDecodeError",
    "AlertTooDeepError",
    "FieldValues",
    "decode_alert",
    "decode_field_values",
    "decode_fields",
    "decode_fields_fully",
    "trusted_fields",
]


class AlertDecodeError(ValueError):
    """A line that is not a JSON object; the message is short and holds no alert data."""


class AlertTooDeepError(AlertDecodeError):
    """A JSON object nested deeper than :data:`~wazuh_integrator.nesting.MAX_NESTING`."""


class _Rule(msgspec.Struct, gc=False):
    level: int | None = None
    id: str | None = None
    groups: tuple[str, ...] | None = None


class _Alert(msgspec.Struct, gc=False):
    rule: _Rule | None = None
    location: str | None = None


_FIELDS_DECODER: Final = msgspec.json.Decoder(_Alert)


FieldValues: TypeAlias = tuple[int | None, str | None, tuple[str, ...] | None, str | None]
"""``rule.level``, ``rule.id``, ``rule.groups`` and ``location`` as the fast
decoder read them, unchecked: hashable, so that routing can remember what it
decided for them (:mod:`~wazuh_integrator.routing`)."""


def decode_fields(line: bytes) -> FilterFields:
    """The filter fields of one alert line.

    Raises :class:`AlertDecodeError` when the line is not a JSON object.
    """
    values = decode_field_values(line)
    fields = trusted_fields(values) if values is not None else None
    return fields if fields is not None else decode_fields_fully(line)


def decode_field_values(line: bytes) -> FieldValues | None:
    """The four filter fields as the fast decoder reads them, or ``None`` when
    only :func:`decode_fields_fully` can read this line.

    What :func:`trusted_fields` makes of the values depends on nothing else in
    the line. Raises :class:`AlertTooDeepError` for a line nested too deeply
    for the fast decoder.
    """
    try:
        alert = _FIELDS_DECODER.decode(line)
    except RecursionError:
        # msgspec recurses to skip the fields it does not read; a line nested
        # about a thousand levels deep exhausts the stack.
        raise AlertTooDeepError(f"nested more than {MAX_NESTING} levels deep") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        # Valid JSON of a shape the struct does not take (a level given as a
        # string), or invalid UTF-8, which msgspec rejects in the fields it
        # reads and lets pass in those it skips: the full decoder has the last
        # word.
        return None
    rule = alert.rule
    if rule is None:
        return None
    return (rule.level, rule.id, rule.groups, alert.location)


def trusted_fields(values: FieldValues) -> FilterFields | None:
    """The filter fields the fast decoder's ``values`` stand for, or ``None``
    when the line needs :func:`decode_fields_fully` after all."""
    level, rule_id, groups, location = values
    if (
        level is None
        # Beyond a C int, cJSON saturates it: the full path does the same.
        or not -0x8000_0000 <= level <= 0x7FFF_FFFF
        or rule_id is None
        or groups is None
        or location is None
        # Joining is cheaper than a test per group, or a scan of the line.
        or "\x00" in location
        or "\x00" in rule_id
        or "\x00" in "".join(groups)
    ):
        # Missing here may mean present under another case ("Rule"), which
        # the stock daemon accepts, or null, which it does not; a NUL ends a
        # string there. The slow path reads all of that like stock does.
        return None
    return FilterFields.trusted(True, level, rule_id, groups, location)


def decode_fields_fully(line: bytes) -> FilterFields:
    """The filter fields read from the whole decoded alert, the way stock reads
    them (member names in any case, strings cut at a NUL)."""
    return FilterFields.from_alert(decode_alert(line))


def decode_alert(line: bytes) -> dict[str, Any]:
    """The whole alert of one line.

    A line that is JSON but not valid UTF-8 is decoded with the bad bytes
    replaced by U+FFFD rather than lost. Raises :class:`AlertDecodeError` when
    the line is not JSON or not a JSON object, :class:`AlertTooDeepError` when
    it nests deeper than any encoder down the line could write it again.
    """
    try:
        alert = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        alert = _loads_lossy(line, error)
    if not isinstance(alert, dict):
        raise AlertDecodeError(f"not a JSON object but {_json_type(alert)}")
    # Counting brackets is a cheap upper bound on the depth: only a line that
    # could be too deep is walked.
    if line.count(b"{") + line.count(b"[") > MAX_NESTING:
        try:
            check_nesting(alert)
        except NestingError as exc:
            raise AlertTooDeepError(str(exc)) from None
    return alert


def _loads_lossy(line: bytes, error: orjson.JSONDecodeError) -> Any:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return orjson.loads(line.decode("utf-8", "replace"))
        except orjson.JSONDecodeError as lossy_error:
            error = lossy_error
    if "depth" in error.msg or "recursion" in error.msg:
        raise AlertTooDeepError(f"nested more than {MAX_NESTING} levels deep") from None
    # orjson's message names the position, never the content.
    raise AlertDecodeError(f"not JSON: {error.msg} at position {error.pos}") from None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
