"""Reading the few alert fields that payload builders interpret (not just copy)."""

from __future__ import annotations

from typing import Any

__all__ = ["rule_level"]


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
