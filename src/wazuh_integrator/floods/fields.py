"""Dotted alert fields (``rule.id``, ``data.srcip``), read the same way by
the throttle, the digest and the richer filters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson

__all__ = ["MISSING", "FieldPath", "describe", "key_function", "key_text", "shown"]


class _Missing:
    """A field the alert does not have: a value of its own for keys and groups."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "(missing)"


MISSING: Final = _Missing()


class FieldPath:
    """One dotted field, split once."""

    __slots__ = ("dotted", "parts")

    def __init__(self, dotted: str) -> None:
        self.dotted = dotted
        self.parts = tuple(dotted.split("."))

    def read(self, alert: Mapping[str, Any]) -> Any:
        """The value at this path, or :data:`MISSING`."""
        value: Any = alert
        for part in self.parts:
            # dict first: decoded alerts are dicts, and the ABC check costs ten times more.
            if not isinstance(value, dict) and not isinstance(value, Mapping):
                return MISSING
            value = value.get(part, MISSING)
            if value is MISSING:
                return MISSING
        return value


def shown(value: Any) -> str:
    """A field's value as a key part and in reasons: strings as they are."""
    if value is MISSING:
        return "(missing)"
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def key_text(paths: Sequence[FieldPath], alert: Mapping[str, Any]) -> str:
    """``rule.id=5712 agent.id=001``: the key an alert falls under."""
    return key_function(paths)(alert)


def key_function(paths: Sequence[FieldPath]) -> Callable[[Mapping[str, Any]], str]:
    """:func:`key_text` for one list of fields, made once: the throttle calls
    it for every alert, so each ``path=`` prefix is built here and the common
    case (dicts all the way down) is read without a call per field."""
    steps = tuple((f"{path.dotted}=", path.parts, path) for path in paths)

    def key(alert: Mapping[str, Any]) -> str:
        texts = []
        for prefix, parts, path in steps:
            value: Any = alert
            for part in parts:
                if type(value) is not dict:
                    value = path.read(alert)  # a Mapping, or not one: the general reader
                    break
                value = value.get(part, MISSING)
            texts.append(prefix + (value if type(value) is str else shown(value)))
        return " ".join(texts)

    return key


def describe(paths: Sequence[FieldPath], alert: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a key as a JSON object (missing ones as null)."""
    values = {}
    for path in paths:
        value = path.read(alert)
        values[path.dotted] = None if value is MISSING else value
    return values
