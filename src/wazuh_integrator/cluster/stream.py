"""What one stream entry holds: the alert's line as written in alerts.json,
the node whose reader appended it, and for a replayed dead letter its block."""

from __future__ import annotations

__all__ = ["FIELD_ALERT", "FIELD_NODE", "FIELD_ONLY"]

FIELD_ALERT = b"alert"
FIELD_NODE = b"node"
# Set by ``dead-letter replay``: the one block key to deliver to, filters skipped.
FIELD_ONLY = b"only"
