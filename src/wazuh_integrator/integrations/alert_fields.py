"""Reading the few alert fields that payload builders interpret (not just copy)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["agent_name", "alert_time", "dig", "digest_alerts", "iso_datetime", "rule_level"]


def rule_level(alert: dict[str, Any]) -> int:
    """``rule.level`` as an integer; 0 when it is missing or not a number.

    analysisd always writes an integer; the fallback keeps a hand-written test
    alert from crashing a payload builder, as it crashes stock's scripts.
    """
    rule = alert.get("rule")
    if not isinstance(rule, dict):
        return 0
    try:
        return int(rule.get("level", 0))
    except (TypeError, ValueError):
        return 0


def dig(alert: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in ``alert``, or None when any step is missing."""
    value: Any = alert
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def alert_time(alert: Mapping[str, Any]) -> datetime | None:
    """The alert's ``timestamp`` (``2024-05-01T10:20:30.123+0000``) as an aware
    datetime, or None when it is missing or unreadable."""
    return iso_datetime(alert.get("timestamp"))


def iso_datetime(text: Any) -> datetime | None:
    """An ISO 8601 time with its offset (``+0000``, ``+00:00`` or ``Z``) as an
    aware datetime, or None."""
    if not isinstance(text, str):
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+0000"
    # strptime's %z reads both "+0000" (analysisd) and "+00:00" on every Python.
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    return None


def agent_name(alert: Mapping[str, Any]) -> str | None:
    """The agent's name, the agentless host, or None."""
    for parent, key in (("agent", "name"), ("agentless", "host")):
        value = dig(alert, f"{parent}.{key}")
        if value:
            return str(value)
    return None


def digest_alerts(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The alerts a floods digest lists (at most its ``max_alerts``)."""
    return [alert for alert in document.get("alerts") or () if isinstance(alert, dict)]
