"""Which blocks an alert line goes to, remembered by its four filter fields.

A manager's alerts repeat the same combinations of ``rule.level``,
``rule.id``, ``rule.groups`` and ``location`` (a rule fires with the same
level and groups, from the same few log files), while the rest of each line
differs: the benchmark's million alerts hold 17. Once the fast decoder has
read the four values, the blocks they pass are looked up in a dict instead of
going through every block's filters (sregex, ``atoi``, group sets) again.

Only what the fast decoder read is remembered. A line it hands to the full
decoder (a field missing or under another case, a NUL, a level beyond a C
``int``) depends on more than the four values, and is decided afresh each
time, exactly as before. The memo is bounded in entries and in the size of
each key, so hostile input cannot grow it without limit: when full it is
emptied and fills again with what comes next.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Generic, TypeVar

from wazuh_integrator.decode import (
    FieldValues,
    decode_field_values,
    decode_fields_fully,
    trusted_fields,
)
from wazuh_integrator.filters import AlertFilter, FilterFields

__all__ = ["MAX_ENTRIES", "MAX_KEY_CHARS", "Router"]

MAX_ENTRIES: Final = 16_384
# Characters of location, rule id and groups, with each group counted 16 more
# for its string object: real keys are under a hundred. A full memo measured
# 7.5 MB with ordinary keys and 25 MB with the worst that fit (non-ASCII
# characters, many one-character groups).
MAX_KEY_CHARS: Final = 256
_GROUP_WEIGHT: Final = 16

R = TypeVar("R")


class Router(Generic[R]):
    """Decides which of ``routes`` take an alert line; ``filters[i]`` is
    ``routes[i]``'s. Build a new one when the routes change."""

    __slots__ = ("_decided", "_filters", "_max_entries", "_routes")

    def __init__(
        self,
        routes: Sequence[R],
        filters: Sequence[AlertFilter],
        *,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        if len(routes) != len(filters):
            raise ValueError(f"{len(routes)} routes but {len(filters)} filters")
        self._routes = tuple(routes)
        self._filters = tuple(filters)
        self._max_entries = max_entries
        self._decided: dict[FieldValues, tuple[R, ...]] = {}

    @property
    def remembered(self) -> int:
        """How many combinations of filter fields are remembered now."""
        return len(self._decided)

    def routes_for(self, line: bytes) -> tuple[R, ...] | None:
        """The routes whose filters the alert passes, in order; ``None`` for an
        alert without a rule object, which no filter passes.

        Raises :class:`~wazuh_integrator.decode.AlertDecodeError` for a line
        that is not a JSON object.
        """
        values = decode_field_values(line)
        if values is None:
            return self._decide(decode_fields_fully(line))
        decided = self._decided.get(values)
        if decided is not None:
            return decided
        fields = trusted_fields(values)
        if fields is None:
            return self._decide(decode_fields_fully(line))
        decided = self._decide(fields)
        assert decided is not None  # a trusted alert always has a rule
        self._remember(values, decided)
        return decided

    def _decide(self, fields: FilterFields) -> tuple[R, ...] | None:
        if not fields.has_rule:
            return None
        return tuple(
            route
            for route, alert_filter in zip(self._routes, self._filters, strict=True)
            if alert_filter.matches(fields)
        )

    def _remember(self, values: FieldValues, decided: tuple[R, ...]) -> None:
        _, rule_id, groups, location = values
        # trusted_fields() let these through only when none is None.
        assert rule_id is not None and groups is not None and location is not None
        size = len(location) + len(rule_id) + len(groups) * _GROUP_WEIGHT
        if size > MAX_KEY_CHARS or size + sum(map(len, groups)) > MAX_KEY_CHARS:
            return
        if len(self._decided) >= self._max_entries:
            self._decided.clear()
        self._decided[values] = decided
