"""What one stream entry holds: the alert's line as written in alerts.json,
and the node whose reader appended it."""

from __future__ import annotations

__all__ = ["FIELD_ALERT", "FIELD_NODE"]

FIELD_ALERT = b"alert"
FIELD_NODE = b"node"
