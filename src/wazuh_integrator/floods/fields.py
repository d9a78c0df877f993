"""Dotted alert fields (``rule.id``, ``data.srcip``), read the same way by
the throttle, the digest and the richer filters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

__all__ = ["MISSING", "FieldPath", "describe", "key_text", "shown"]


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
    """``rule.id=5712 agent.id=001``: the key an alert falls under. On the
    per-alert path: a list, not a generator, and strings as they are."""
    parts = []
    for path in paths:
        value = path.read(alert)
        parts.append(f"{path.dotted}={value if type(value) is str else shown(value)}")
    return " ".join(parts)


def describe(paths: Sequence[FieldPath], alert: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a key as a JSON object (missing ones as null)."""
    values = {}
    for path in paths:
        value = path.read(alert)
        values[path.dotted] = None if value is MISSING else value
    return values
