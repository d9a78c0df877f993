"""The floods tables of integrator.toml: ``throttle``, ``digest`` and ``filter``
under ``[integrations.<name>]`` or ``[integrations."<name>#<index>"]``.

Strict like the rest of the file: an unknown key, a missing one or a bad value
is an issue naming the file, the line and the dotted key; a regular expression
or a network that does not compile is found here, not at the first alert.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, Final, Protocol

from wazuh_integrator.config.models import (
    DigestSettings,
    FilterSettings,
    ThrottleSettings,
    WhereCondition,
)
from wazuh_integrator.config.values import Invalid
from wazuh_integrator.errors import ConfigIssue

__all__ = ["FLOOD_TABLES", "FloodSettingsReader"]

FLOOD_TABLES: Final = ("throttle", "digest", "filter")
# Integrations that enrich one alert at a time: a digest has nothing to look up.
_NO_DIGEST: Final = frozenset({"virustotal", "maltiverse"})
_FIELD: Final = re.compile(r"[^.\s]+(?:\.[^.\s]+)*")
_HIGHEST_LEVEL: Final = 16
_WHERE_TESTS: Final = ("equals", "in", "regex", "cidr", "exists")
_WHERE_KEYS: Final = ("field", *_WHERE_TESTS, "not")

Table = tuple[str, ...]


class KeyLocator(Protocol):
    def line_of(self, table: Table, key: str) -> int | None: ...

    def table_line(self, table: Table) -> int | None: ...

    def item_line(self, table: Table, key: str, index: int) -> int | None: ...


def _field(value: object) -> str:
    if not isinstance(value, str) or not _FIELD.fullmatch(value):
        raise Invalid(f"{value!r} is not a dotted alert field (like 'rule.id' or 'data.srcip')")
    return value


def _fields(value: object) -> tuple[str, ...]:
    if isinstance(value, str):  # one field needs no brackets
        return (_field(value),)
    if not isinstance(value, list) or not value:
        raise Invalid(f"{value!r} is not a non-empty list of dotted fields (like ['rule.id'])")
    return tuple(_field(item) for item in value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"{value!r} is not a whole number of at least 1")
    return value


def _level(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _HIGHEST_LEVEL:
        raise Invalid(f"{value!r} is not a rule level from 0 to {_HIGHEST_LEVEL}")
    return value


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"{value!r} is not a list of non-empty strings")
    return tuple(value)


def _rule_ids(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"{value!r} is not a list of rule ids (like [5710, 5712])")
    ids = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and item > 0:
            ids.append(str(item))
        elif isinstance(item, str) and item.isdigit():
            ids.append(str(int(item)))
        else:
            raise Invalid(f"{item!r} is not a rule id (a positive number)")
    return tuple(ids)


def _agents(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"{value!r} is not a list of agent ids or names (like ['001', 'web01'])")
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            raise Invalid(f"{item!r}: write agent ids as strings, as Wazuh does ('{item:03d}')")
        if not isinstance(item, str) or not item:
            raise Invalid(f"{item!r} is not an agent id or name")
    return tuple(value)


def _cidrs(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise Invalid(f"{item!r} is not a network (like '10.0.0.0/8')")
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise Invalid(f"{item!r} is not a network: {exc}") from None
    return tuple(items)


def _regex(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{value!r} is not a regular expression string")
    try:
        re.compile(value)
    except re.error as exc:
        raise Invalid(f"{value!r} is not a valid regular expression: {exc}") from None
    return value


def _scalar(value: object) -> object:
    if isinstance(value, dict | list):
        raise Invalid(f"{value!r} is not a single value (use 'in' for a list)")
    return value


class FloodSettingsReader:
    """Reads the three floods tables of one ``[integrations.*]`` table."""

    def __init__(
        self,
        path: str,
        locator: KeyLocator,
        issues: list[ConfigIssue],
        duration: Callable[[object], float],
    ) -> None:
        self._path = path
        self._locator = locator
        self._issues = issues
        self._duration = duration

    def _positive_duration(self, value: object) -> float:
        seconds = self._duration(value)
        if seconds <= 0:
            raise Invalid(f"{value!r} must be longer than zero")
        return seconds

    def read(self, table: Table, name: str, values: dict[str, Any]) -> dict[str, object]:
        """The ``throttle``, ``digest`` and ``filter`` fields found in ``values``."""
        fields: dict[str, object] = {}
        readers = {"throttle": self._throttle, "digest": self._digest, "filter": self._filter}
        for key in FLOOD_TABLES:
            if key not in values:
                continue
            if not isinstance(values[key], dict):
                self._issue(table, key, f"must be a table ([{'.'.join((*table, key))}])")
                continue
            if key == "digest" and name in _NO_DIGEST:
                self._issue(table, key, f"{name} looks up one alert at a time: no digests")
                continue
            fields[key] = readers[key]((*table, key), values[key])
        return fields

    def _issue(self, table: Table, key: str, message: str, line: int | None = None) -> None:
        if line is None:
            line = self._locator.line_of(table, key)
        dotted = ".".join((*table, key))
        self._issues.append(ConfigIssue(self._path, line, None, f"{dotted}: {message}"))

    def _parse(
        self,
        table: Table,
        values: dict[str, Any],
        parsers: dict[str, Callable[[object], object]],
        required: tuple[str, ...] = (),
    ) -> dict[str, object] | None:
        """Each known key parsed; None when any key is unknown, bad or missing."""
        parsed: dict[str, object] = {}
        ok = True
        for key, value in values.items():
            parse = parsers.get(key)
            if parse is None:
                self._issue(table, key, f"unknown key (expected one of: {', '.join(parsers)})")
                ok = False
                continue
            try:
                parsed[key] = parse(value)
            except Invalid as exc:
                self._issue(table, key, str(exc))
                ok = False
        for key in required:
            if key not in values:
                line = self._locator.table_line(table) or self._locator.line_of(
                    table[:-1], table[-1]
                )
                self._issue(table, key, "missing (required)", line)
                ok = False
        return parsed if ok else None

    def _throttle(self, table: Table, values: dict[str, Any]) -> ThrottleSettings | None:
        parsers: dict[str, Callable[[object], object]] = {
            "key": _fields,
            "window": self._positive_duration,
            "limit": _count,
        }
        parsed = self._parse(table, values, parsers, required=("window", "limit"))
        if parsed is None:
            return None
        return ThrottleSettings(
            key=parsed.get("key", ("rule.id", "agent.id")),  # type: ignore[arg-type]
            window_s=parsed["window"],  # type: ignore[arg-type]
            limit=parsed["limit"],  # type: ignore[arg-type]
        )

    def _digest(self, table: Table, values: dict[str, Any]) -> DigestSettings | None:
        parsers: dict[str, Callable[[object], object]] = {
            "group_by": _fields,
            "group_wait": self._duration,
            "group_interval": self._positive_duration,
            "max_alerts": _count,
        }
        parsed = self._parse(table, values, parsers)
        if parsed is None:
            return None
        names = {
            "group_by": "group_by",
            "group_wait": "group_wait_s",
            "group_interval": "group_interval_s",
            "max_alerts": "max_alerts",
        }
        given = {names[key]: value for key, value in parsed.items()}
        given.setdefault("group_by", ("rule.id",))
        return DigestSettings(**given)  # type: ignore[arg-type]

    def _filter(self, table: Table, values: dict[str, Any]) -> FilterSettings | None:
        parsers: dict[str, Callable[[object], object]] = {
            "exclude_rule_ids": _rule_ids,
            "exclude_groups": _texts,
            "agents": _agents,
            "exclude_agents": _agents,
            "min_level": _level,
            "max_level": _level,
            "where": lambda value: value,  # read item by item below, to locate each
        }
        parsed = self._parse(table, values, parsers)
        if parsed is None:
            return None
        low, high = parsed.get("min_level"), parsed.get("max_level")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            self._issue(table, "max_level", f"{high} is below min_level ({low}): nothing passes")
            return None
        where: list[WhereCondition] = []
        if "where" in parsed:
            conditions = self._where(table, parsed.pop("where"))
            if conditions is None:
                return None
            where = conditions
        return FilterSettings(**parsed, where=tuple(where))  # type: ignore[arg-type]

    def _where(self, table: Table, value: object) -> list[WhereCondition] | None:
        if not isinstance(value, list):
            self._issue(table, "where", "must be a list of tables like { field = ..., in = [...] }")
            return None
        conditions = []
        ok = True
        for index, item in enumerate(value):
            line = self._locator.item_line(table, "where", index)
            condition = self._condition(table, index, item, line)
            if condition is None:
                ok = False
            else:
                conditions.append(condition)
        return conditions if ok else None

    def _condition(
        self, table: Table, index: int, item: object, line: int | None
    ) -> WhereCondition | None:
        key = f"where[{index}]"
        if not isinstance(item, dict):
            self._issue(table, key, f"{item!r} is not a table like {{ field = ..., in = [...] }}")
            return None
        unknown = [name for name in item if name not in _WHERE_KEYS]
        if unknown:
            expected = ", ".join(_WHERE_KEYS)
            self._issue(table, f"{key}.{unknown[0]}", f"unknown key (expected: {expected})", line)
            return None
        tests = [name for name in _WHERE_TESTS if name in item]
        if "field" not in item or len(tests) != 1:
            problem = "missing 'field'" if "field" not in item else "needs exactly one test"
            self._issue(table, key, f"{problem} (one of: {', '.join(_WHERE_TESTS)})", line)
            return None
        test = tests[0]
        parsers: dict[str, Callable[[object], object]] = {
            "equals": _scalar,
            "in": lambda value: tuple(_in_list(value)),
            "regex": _regex,
            "cidr": _cidrs,
            "exists": _boolean,
        }
        try:
            field = _field(item["field"])
        except Invalid as exc:
            self._issue(table, f"{key}.field", str(exc), line)
            return None
        try:
            parsed = parsers[test](item[test])
            negate = _boolean(item.get("not", False))
        except Invalid as exc:
            bad = "not" if test in item and "not" in item and _is_bad_not(item) else test
            self._issue(table, f"{key}.{bad}", str(exc), line)
            return None
        attribute = {"in": "any_of"}.get(test, test)
        return WhereCondition(field=field, negate=negate, line=line, **{attribute: parsed})  # type: ignore[arg-type]


def _in_list(value: object) -> list[object]:
    if not isinstance(value, list) or not value:
        raise Invalid(f"{value!r} is not a non-empty list")
    return [_scalar(item) for item in value]


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{value!r} is not true or false")
    return value


def _is_bad_not(item: dict[str, Any]) -> bool:
    return "not" in item and not isinstance(item["not"], bool)
