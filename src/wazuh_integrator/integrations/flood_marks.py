"""What the floods stage adds to what integrations receive.

Two shapes, both plain JSON so that a parked or dead-lettered delivery keeps
them through a restart:

- a single alert that follows suppressed ones of its throttle key carries a
  top-level ``"suppressed": {"count": N, "since": "<ISO 8601>"}``;
- a digest is a document of its own: ``{"digest": {"group": ..., "fields":
  {...}, "integration": ...}, "count": N, "alerts": [...], "first": ...,
  "last": ...}``, where ``alerts`` lists at most ``max_alerts`` of the ``N``.

Wazuh alerts have neither a top-level ``suppressed`` nor ``digest`` member.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

__all__ = [
    "DIGEST",
    "SUPPRESSED",
    "Suppressed",
    "digest_lines",
    "digest_of",
    "iso_time",
    "suppressed_of",
]

SUPPRESSED: Final = "suppressed"
DIGEST: Final = "digest"


def iso_time(epoch_s: float) -> str:
    """``epoch_s`` as ISO 8601 in UTC, to the millisecond."""
    moment = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Suppressed:
    """How many alerts of the same throttle key were not sent, since when."""

    count: int
    since: str

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "since": self.since}

    def text(self) -> str:
        plural = "" if self.count == 1 else "s"
        return f"{self.count} similar alert{plural} since {self.since}"


def suppressed_of(alert: Mapping[str, Any]) -> Suppressed | None:
    """The note the floods stage put on ``alert``, if any."""
    note = alert.get(SUPPRESSED)
    if not isinstance(note, Mapping):
        return None
    count, since = note.get("count"), note.get("since")
    if not isinstance(count, int) or not isinstance(since, str):
        return None
    return Suppressed(count, since)


def digest_of(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``digest`` header when ``document`` is a digest, else None."""
    header = document.get(DIGEST)
    if isinstance(header, Mapping) and isinstance(document.get("alerts"), list):
        return header
    return None


def _member(alert: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = alert.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return "?" if value is None else str(value)


def digest_lines(document: Mapping[str, Any]) -> list[str]:
    """One line per listed alert (rule, agent, time, level), then ``and M more``."""
    alerts = [alert for alert in document.get("alerts", []) if isinstance(alert, Mapping)]
    lines = []
    for alert in alerts:
        rule = _member(alert, "rule")
        agent = _member(alert, "agent")
        lines.append(
            f"{_text(alert.get('timestamp'))} rule {_text(rule.get('id'))}"
            f" (level {_text(rule.get('level'))}) agent {_text(agent.get('id'))}"
            f" {_text(agent.get('name'))}: {_text(rule.get('description'))}"
        )
    count = document.get("count")
    if isinstance(count, int) and count > len(alerts):
        lines.append(f"and {count - len(alerts)} more")
    return lines
