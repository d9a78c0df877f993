"""PagerDuty: an Events API v2 ``trigger`` per alert."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.alert_fields import rule_level
from wazuh_integrator.integrations.base import WEBHOOK_CONCURRENCY, Alert, Integration
from wazuh_integrator.integrations.flood_marks import digest_of
from wazuh_integrator.integrations.http import post_json
from wazuh_integrator.secret import Secret

__all__ = [
    "EVENTS_API_URL",
    "PagerDutyIntegration",
    "build_pagerduty_digest_payload",
    "build_pagerduty_payload",
    "digest_dedup_key",
    "pagerduty_severity",
]

EVENTS_API_URL = "https://events.pagerduty.com/v2/enqueue"
# What a preview shows in place of the routing key: `test` output gets pasted
# into tickets and chats.
PREVIEW_ROUTING_KEY = str(Secret(""))


def pagerduty_severity(level: int) -> str:
    """The Events API severity for a rule level.

    Stock tests ``>= 7`` before ``>= 10`` and ``>= 13``, so it never sends
    ``error`` or ``critical``; these are the bands it meant.
    """
    if level >= 13:
        return "critical"
    if level >= 10:
        return "error"
    if level >= 7:
        return "warning"
    return "info"


def _source(alert: Alert) -> Any:
    """The event's ``source``, which the Events API requires.

    Stock reads ``agent.name`` and crashes without it; an alert without an
    agent falls back to the agentless host, then the manager, then the location.
    """
    for parent, key in (("agent", "name"), ("agentless", "host"), ("manager", "name")):
        value = alert.get(parent)
        if isinstance(value, Mapping) and value.get(key):
            return value[key]
    return alert.get("location") or "wazuh"


def build_pagerduty_payload(
    alert: Alert, options: Mapping[str, Any] | None, routing_key: str
) -> dict[str, Any]:
    """The Events API v2 body for ``alert``.

    ``dedup_key`` is the alert id, so that a retried delivery updates the
    incident it opened instead of opening a second one. ``options`` are merged
    at the top level: ``{"payload": {...}}`` replaces the whole payload and
    ``{"dedup_key": ...}`` this one.
    """
    rule: Mapping[str, Any] = alert.get("rule") or {}
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": "trigger"}
    if alert.get("id") is not None:
        body["dedup_key"] = str(alert["id"])
    payload: dict[str, Any] = {"summary": rule.get("description", "N/A")}
    if alert.get("timestamp") is not None:
        payload["timestamp"] = alert["timestamp"]
    payload["source"] = _source(alert)
    payload["severity"] = pagerduty_severity(rule_level(alert))
    payload["group"] = ", ".join(str(group) for group in rule.get("groups") or ())
    payload["custom_details"] = alert
    body["payload"] = payload
    body["client"] = "Wazuh Monitoring Service"
    body["client_url"] = "https://wazuh.com"
    if options:
        body.update(options)
    return body


def digest_dedup_key(integration: str, group: str) -> str:
    """One incident per digest group: the same key for every digest of it."""
    digest = hashlib.sha256(f"{integration}\0{group}".encode()).hexdigest()[:32]
    return f"wazuh-digest-{digest}"


def build_pagerduty_digest_payload(
    document: Alert, options: Mapping[str, Any] | None, routing_key: str
) -> dict[str, Any]:
    """One trigger per digest, its ``dedup_key`` stable for the group, so
    that each new digest of the group updates the same incident."""
    header = digest_of(document) or {}
    alerts = [alert for alert in document.get("alerts", []) if isinstance(alert, dict)]
    level = max((rule_level(alert) for alert in alerts), default=0)
    group = str(header.get("group", ""))
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": digest_dedup_key(str(header.get("integration", "")), group),
        "payload": {
            "summary": f"{document.get('count', len(alerts))} Wazuh alerts for {group}",
            "timestamp": document.get("last"),
            "source": _source(alerts[0]) if alerts else "wazuh",
            "severity": pagerduty_severity(level),
            "custom_details": document,
        },
        "client": "Wazuh Monitoring Service",
        "client_url": "https://wazuh.com",
    }
    if options:
        body.update(options)
    return body


def _body(alert: Alert, options: Mapping[str, Any] | None, routing_key: str) -> dict[str, Any]:
    if digest_of(alert) is not None:
        return build_pagerduty_digest_payload(alert, options, routing_key)
    return build_pagerduty_payload(alert, options, routing_key)


class PagerDutyIntegration(Integration):
    name = "pagerduty"
    required = ("api_key",)
    default_concurrency: ClassVar[int] = WEBHOOK_CONCURRENCY

    def receiver_url(self) -> str:
        return self.block.hook_url.reveal() if self.block.hook_url else EVENTS_API_URL

    def preview(self, alert: Alert) -> dict[str, Any]:
        return _body(alert, self.block.options, PREVIEW_ROUTING_KEY)

    async def send(self, alert: Alert) -> None:
        if self.block.api_key is None:
            raise Permanent("pagerduty: no <api_key> configured")
        url = self.block.hook_url.reveal() if self.block.hook_url else EVENTS_API_URL
        await post_json(
            self.context.session(),
            url,
            _body(alert, self.block.options, self.block.api_key.reveal()),
            timeout_s=self.block.timeout_s,
            secrets=self.block.secrets,
        )
