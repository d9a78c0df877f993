"""How deep a decoded JSON value nests, found without recursion.

Every JSON encoder we hand an alert or ``<options>`` to recurses (orjson gives
up past 254 levels, the stdlib near Python's recursion limit), and so would
any code walking the value. A value nested deeper than :data:`MAX_NESTING` is
refused where it is read, with a clear message, so that nothing further down
ever meets it. Real alerts nest a dozen levels at most; stock's cJSON refuses
more than 1,000.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["MAX_NESTING", "NestingError", "check_nesting"]

# Far below orjson's encoding limit (254), leaving room for the few levels a
# payload wraps around the alert (PagerDuty's custom_details, Shuffle's body).
MAX_NESTING: Final = 128


class NestingError(ValueError):
    """A value nested deeper than allowed; the message holds no data."""


def check_nesting(value: Any, limit: int = MAX_NESTING) -> None:
    """Raise :class:`NestingError` when ``value`` holds containers more than
    ``limit`` levels deep (a flat object is one level)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            raise NestingError(f"nested more than {limit} levels deep")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
