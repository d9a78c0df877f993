"""Shuffle: the alert and a short summary, posted to a Shuffle webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wazuh_integrator.integrations.alert_fields import rule_level
from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.integrations.flood_marks import SUPPRESSED, digest_of, suppressed_of
from wazuh_integrator.integrations.webhook import WebhookIntegration

__all__ = ["SKIPPED_RULE_IDS", "ShuffleIntegration", "build_shuffle_payload", "is_skipped"]

# Rules that Shuffle's own Docker containers trigger when they start and stop:
# forwarding their alerts to Shuffle would start more containers, in a loop.
SKIPPED_RULE_IDS = frozenset(
    {
        "87924",
        "87900",
        "87901",
        "87902",
        "87903",
        "87904",
        "86001",
        "86002",
        "86003",
        "87932",
        "80710",
        "87929",
        "87928",
        "5710",
    }
)


def shuffle_severity(level: int) -> int:
    """Shuffle's 1-3 severity for a rule level, in stock's three bands."""
    if level <= 4:
        return 1
    if level <= 7:
        return 2
    return 3


def is_skipped(alert: Alert) -> bool:
    """True for alerts of the rules in :data:`SKIPPED_RULE_IDS`.

    The id is compared as written in the alert, a string, exactly as stock
    compares it: analysisd always writes ``"5710"``, and an alert written by
    hand with the number ``5710`` (or ``"05710"``) is forwarded, as stock does.
    """
    rule = alert.get("rule")
    rule_id = rule.get("id") if isinstance(rule, dict) else None
    return isinstance(rule_id, str) and rule_id in SKIPPED_RULE_IDS


def build_shuffle_payload(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The webhook body for ``alert``; ``options`` are merged at the top level.

    Builds a body even for a skipped alert: skipping is the integration's
    decision (see :func:`is_skipped`), not the payload's.
    """
    rule: Mapping[str, Any] = alert.get("rule") or {}
    body: dict[str, Any] = {
        "severity": shuffle_severity(rule_level(alert)),
        "pretext": "WAZUH Alert",
        "title": rule.get("description", "N/A"),
        "text": alert.get("full_log"),
        "rule_id": rule.get("id"),
        "timestamp": alert.get("timestamp"),
        "id": alert.get("id"),
        "all_fields": alert,
    }
    suppressed = suppressed_of(alert)
    if suppressed is not None:
        body[SUPPRESSED] = suppressed.as_json()
    if options:
        body.update(options)
    return body


class ShuffleIntegration(WebhookIntegration):
    name = "shuffle"

    def would_skip(self, alert: Alert) -> str | None:
        if not is_skipped(alert):
            return None
        rule_id = alert["rule"]["id"]
        return f"rule {rule_id} is in Shuffle's skip list (alerts of Shuffle's own containers)"

    def preview(self, alert: Alert) -> dict[str, Any] | None:
        if digest_of(alert) is not None:
            # A digest goes as it is: {"digest": ..., "count": N, "alerts": [...]}.
            return {**alert, **(self.block.options or {})}
        if is_skipped(alert):
            return None
        return build_shuffle_payload(alert, self.block.options)
