"""Reading an integration's ``<options>`` into typed values, strictly.

For outputs whose options configure the integration rather than being merged
into a payload (email, syslog): an unknown key or a value of the wrong type
is an :class:`OptionsError` whose text names the key, so that ``check-config``
can disable the block with a reason a person can act on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["OptionsError", "OptionsReader"]


class OptionsError(ValueError):
    """An ``<options>`` value that the integration cannot use."""


class OptionsReader:
    """Typed access to one block's options; every read key is remembered so
    that :meth:`reject_unknown` can name the keys nobody asked for."""

    def __init__(self, options: Mapping[str, Any] | None) -> None:
        self._options: Mapping[str, Any] = options or {}
        self._known: set[str] = set()

    def _get(self, key: str) -> Any:
        self._known.add(key)
        return self._options.get(key)

    def text(self, key: str, *, default: str | None = None, required: bool = False) -> str | None:
        value = self._get(key)
        if value is None:
            if required:
                raise OptionsError(f'options: "{key}" is required')
            return default
        if not isinstance(value, str) or not value.strip():
            raise OptionsError(f'options: "{key}" must be a non-empty string')
        return value.strip()

    def required_text(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def flag(self, key: str, *, default: bool = False) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise OptionsError(f'options: "{key}" must be true or false')
        return value

    def text_list(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        """A list of non-empty strings; a single string is a list of one."""
        value = self._get(key)
        if value is None:
            if required:
                raise OptionsError(f'options: "{key}" is required')
            return ()
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(item, str) and item.strip() for item in items)
        ):
            raise OptionsError(f'options: "{key}" must be a string or a list of strings')
        return tuple(item.strip() for item in items)

    def choice(self, key: str, choices: Collection[str], *, default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value.lower() not in choices:
            listed = ", ".join(f'"{choice}"' for choice in choices)
            raise OptionsError(f'options: "{key}" must be one of {listed}')
        return value.lower()

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._options) - self._known)
        if unknown:
            listed = ", ".join(f'"{key}"' for key in unknown)
            known = ", ".join(f'"{key}"' for key in sorted(self._known))
            raise OptionsError(f"options: unknown key {listed} (known: {known})")
