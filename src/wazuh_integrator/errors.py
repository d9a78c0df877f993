"""The exception families of the project, each under one root.

Configuration problems are collected as :class:`ConfigIssue` values rather than
raised one at a time, so that ``check-config`` can show every one of them.
Delivery failures are raised by integrations and handled once, by the delivery
layer, according to their type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class IntegratorError(Exception):
    """Root of every error this package raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a configuration file, located to its line."""

    path: str
    line: int | None
    element: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        if self.element:
            text = f"{where}: <{self.element}>: {self.message}"
        else:
            text = f"{where}: {self.message}"
        # One issue, one line: a quoted value's newlines or controls are escaped.
        return _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ConfigError(IntegratorError):
    """A configuration that cannot be used; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class DeliveryError(IntegratorError):
    """Root of the failures an integration reports to the delivery layer.

    Messages must never contain a secret: integrations build them from
    statuses, redacted URLs and the first bytes of an answer body.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Transient(DeliveryError):
    """Worth trying again later: connection refused, time-out, 5xx, 408."""


class Timeout(Transient):
    """The attempt ran out of time (stock reports this as error 408)."""


class RateLimited(Transient):
    """The receiver asked us to slow down, optionally saying for how long."""

    def __init__(
        self, message: str, *, retry_after_s: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class Permanent(DeliveryError):
    """Trying again cannot help (most 4xx answers, a payload too large)."""
