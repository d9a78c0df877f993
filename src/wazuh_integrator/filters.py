"""An ``<integration>`` block's filters, compiled once into a predicate.

Semantics are the stock daemon's (REFERENCE.md, "Filters"): every set filter
must pass and, with none set, every alert passes; an alert without a ``rule``
object never passes. Filters are checked in the order ``event_location``,
``level``, ``group``, ``rule_id`` and :meth:`AlertFilter.reason` names the
first that fails, in words an administrator reads (``test`` prints it).

Where the alert has odd types, :meth:`FilterFields.from_alert` reads it the
way the stock daemon's JSON library (cJSON) does where that is well defined:
member names are found ignoring ASCII case, ``rule.level`` is cJSON's
``valueint`` (a number's integer part saturated to a C ``int``, 1 for
``true``, 0 for any other type), strings end at an embedded NUL; ``rule.id``
is read like C's ``atoi``.

Stock compares levels and rule ids as C ``unsigned int``: a negative
``rule.level`` is a huge level that passes every level filter, and a rule id
of 0 is the end of its id list, so it never matches (see :func:`compile_filter`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.sregex import SRegex, ascii_lower, compile_sregex

__all__ = [
    "AlertFilter",
    "FilterFields",
    "c_atoi",
    "c_member",
    "c_string",
    "c_valueint",
    "compile_filter",
]

_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1
_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
_UINT_MASK: Final = 0xFFFF_FFFF
# C's isspace() in the "C" locale, which atoi skips before the number.
_ATOI: Final = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def c_atoi(text: str) -> int | None:
    """The value glibc's ``atoi`` gives ``text``, or ``None`` when it has no number.

    glibc's ``atoi`` is ``(int) strtol(text, NULL, 10)``: leading white space
    and a sign are accepted, reading stops at the first non-digit, the value
    saturates at the bounds of a 64-bit ``long``, and the cast keeps its low
    32 bits. Where C would return 0 for text without digits we return ``None``,
    so that such a ``rule.id`` never equals a listed id.
    """
    if text.isascii() and text.isdigit():
        value = int(text)
    else:
        found = _ATOI.match(text)
        if found is None:
            return None
        value = int(found.group(1))
    return _c_int(value)


def c_string(value: str) -> str:
    """A decoded JSON string as C code sees it: cJSON decodes ``\\u0000`` into
    a NUL byte, where C strings end."""
    return value.split("\x00", 1)[0] if "\x00" in value else value


_MISSING: Final = object()


def c_member(obj: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """``obj[name]`` the way cJSON_GetObjectItem finds it: the first member whose
    name equals ``name`` ignoring ASCII case; ``default`` when there is none."""
    width = len(name)
    for key, value in obj.items():
        if len(key) == width and (key == name or ascii_lower(key) == name):
            return value
    return default


def c_valueint(value: Any) -> int:
    """cJSON's ``valueint`` of a decoded JSON value.

    cJSON parses every number as a double and keeps its integer part,
    saturated to the bounds of a C ``int``; ``true`` is 1 and every other type
    (string, null, false, array, object) is 0.
    """
    if value is True:
        return 1
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value >= _INT_MAX:
            return _INT_MAX
        if value <= _INT_MIN:
            return _INT_MIN
        return int(value)
    return 0


def _c_int(value: int) -> int:
    """``value`` as a C ``int`` after ``atoi``: saturated to a ``long``, low 32 bits kept."""
    if 0 <= value <= _INT_MAX:
        return value
    value = min(max(value, _LONG_MIN), _LONG_MAX) & _UINT_MASK
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def _unsigned_level(level: int) -> int:
    # The stock check is ``(unsigned) valueint < (unsigned) <level>``.
    if 0 <= level <= _INT_MAX:
        return level
    return c_valueint(level) & _UINT_MASK


def _rule_id(value: Any) -> str | None:
    if isinstance(value, str):
        return c_string(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _groups(value: Any) -> tuple[str, ...] | None:
    items: Iterable[Any]
    if isinstance(value, list):
        items = value
    elif isinstance(value, Mapping):
        # cJSON walks an object's members like an array's items.
        items = value.values()
    else:
        return None
    return tuple(c_string(item) for item in items if isinstance(item, str))


@dataclass(frozen=True, slots=True)
class FilterFields:
    """The only parts of an alert that filters read."""

    has_rule: bool
    level: int | None = None
    rule_id: str | None = None
    groups: tuple[str, ...] | None = None
    location: str | None = None

    @classmethod
    def trusted(
        cls,
        has_rule: bool,
        level: int | None,
        rule_id: str | None,
        groups: tuple[str, ...] | None,
        location: str | None,
    ) -> FilterFields:
        """Build from values already of the right types, without the frozen
        dataclass ``__init__``, which costs as much as the rest of the fast
        decoder (it calls ``object.__setattr__`` once per field)."""
        fields = _new_object(cls)
        _set_has_rule(fields, has_rule)
        _set_level(fields, level)
        _set_rule_id(fields, rule_id)
        _set_groups(fields, groups)
        _set_location(fields, location)
        return fields

    @classmethod
    def from_alert(cls, alert: Mapping[str, Any]) -> FilterFields:
        """Read the filter fields of a decoded alert. A present ``rule.level``
        is always a number (cJSON's ``valueint``); another field of the wrong
        type counts as missing."""
        location = c_member(alert, "location")
        location = c_string(location) if isinstance(location, str) else None
        rule = c_member(alert, "rule")
        if not isinstance(rule, Mapping):
            return cls(has_rule=False, location=location)
        level = c_member(rule, "level", _MISSING)
        return cls(
            has_rule=True,
            level=None if level is _MISSING else c_valueint(level),
            rule_id=_rule_id(c_member(rule, "id")),
            groups=_groups(c_member(rule, "groups")),
            location=location,
        )


# The slots' own setters, which a frozen dataclass leaves usable: see trusted().
_new_object: Final = object.__new__
_set_has_rule, _set_level, _set_rule_id, _set_groups, _set_location = (
    vars(FilterFields)[name].__set__
    for name in ("has_rule", "level", "rule_id", "groups", "location")
)


def _quoted(text: str) -> str:
    # Keeps a reason on one line whatever the alert holds.
    return "'" + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text) + "'"


def _listed(items: Iterable[object]) -> str:
    return "[" + ", ".join(str(item) for item in items) + "]"


class AlertFilter:
    """The filters of one ``<integration>`` block. Build with :func:`compile_filter`."""

    __slots__ = ("_group_set", "_groups", "_level", "_location", "_rule_id_set", "_rule_ids")

    def __init__(
        self,
        *,
        location: SRegex | None,
        level: int | None,
        groups: tuple[str, ...],
        rule_ids: tuple[int, ...],
    ) -> None:
        self._location = location
        # Stock keeps <level> in a C unsigned int, where 0 means unset.
        self._level = (_c_int(level) & _UINT_MASK) or None if level is not None else None
        self._groups = groups
        self._group_set = frozenset(groups)
        self._rule_ids = rule_ids
        # Stock ends its id list at the first 0, and overwrites that 0 with the
        # next id it reads: a 0 is never matched, yet a list of only zeros is
        # still a set filter, which no alert passes.
        self._rule_id_set = frozenset(_c_int(rule_id) for rule_id in rule_ids) - {0}

    @property
    def unfiltered(self) -> bool:
        """Whether no filter is set, so every alert with a rule passes."""
        return (
            self._location is None
            and self._level is None
            and not self._groups
            and not self._rule_ids
        )

    def reason(self, fields: FilterFields) -> str | None:
        """Why the alert does not pass, or ``None`` when it passes."""
        if not fields.has_rule:
            return "alert has no rule"
        if self._location is not None:
            location = fields.location
            if location is None:
                return "alert has no location"
            if not self._location.match(location):
                return (
                    f"location {_quoted(location)} does not match {_quoted(self._location.pattern)}"
                )
        if self._level is not None:
            level = fields.level
            if level is None:
                return "alert has no rule.level"
            if _unsigned_level(level) < self._level:
                return f"level {level} < {self._level}"
        if self._groups:
            groups = fields.groups
            if groups is None:
                return "alert has no rule.groups"
            if self._group_set.isdisjoint(groups):
                return f"none of groups {_listed(self._groups)} in rule.groups {_listed(groups)}"
        if self._rule_ids:
            if fields.rule_id is None:
                return "alert has no rule.id"
            rule_id = c_atoi(fields.rule_id)
            if rule_id is None:
                return f"rule.id {_quoted(fields.rule_id)} is not a number"
            if rule_id == 0:
                return "rule.id 0 never matches"
            if rule_id not in self._rule_id_set:
                return f"rule.id {rule_id} not in {_listed(self._rule_ids)}"
        return None

    def matches(self, fields: FilterFields) -> bool:
        """Whether the alert passes every filter: :meth:`reason` without the
        text. Most alerts fail some filter, and formatting why for each one
        cost the daemon a quarter of its time when nothing matched."""
        if not fields.has_rule:
            return False
        if self._location is not None:
            location = fields.location
            if location is None or not self._location.match(location):
                return False
        if self._level is not None:
            level = fields.level
            if level is None or _unsigned_level(level) < self._level:
                return False
        if self._groups:
            groups = fields.groups
            if groups is None or self._group_set.isdisjoint(groups):
                return False
        if self._rule_ids:
            if fields.rule_id is None:
                return False
            rule_id = c_atoi(fields.rule_id)
            if rule_id is None or rule_id not in self._rule_id_set:
                return False
        return True


def compile_filter(block: IntegrationBlock) -> AlertFilter:
    """Compile a block's filters once.

    Raises :class:`~wazuh_integrator.sregex.SRegexError` for an
    ``event_location`` that does not compile (the config reader reports it
    first, with its line).
    """
    location = compile_sregex(block.event_location) if block.event_location is not None else None
    return AlertFilter(
        location=location,
        level=block.level,
        groups=tuple(block.groups),
        rule_ids=tuple(block.rule_ids),
    )
