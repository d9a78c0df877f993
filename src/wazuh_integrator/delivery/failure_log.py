"""Log a repeating failure once, and again only when its text changes.

A receiver that is down answers every alert with the same error; a log line
per alert would bury the one line that matters. Each kind of event (a retry,
a parking, a dead letter, an unexpected exception) remembers the last text it
logged, and a success clears them all so the next failure is logged again.
"""

from __future__ import annotations

import logging

__all__ = ["FailureLog"]


class FailureLog:
    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._last: dict[str, str] = {}

    def failed(self, kind: str, text: str, message: str, *args: object) -> None:
        """Log ``message % args`` at warning level unless ``kind`` last logged ``text``."""
        self._emit(logging.WARNING, kind, text, message, *args)

    def gave_up(self, kind: str, text: str, message: str, *args: object) -> None:
        """Like :meth:`failed`, at error level: an alert was abandoned."""
        self._emit(logging.ERROR, kind, text, message, *args)

    def _emit(self, level: int, kind: str, text: str, message: str, *args: object) -> None:
        if self._last.get(kind) == text:
            return
        self._last[kind] = text
        self._logger.log(level, message, *args)

    def recovered(self) -> bool:
        """Forget every failure; True when there was one to forget."""
        had_failures = bool(self._last)
        self._last.clear()
        return had_failures
