"""Opsgenie: an alert through the Alerts API v2 (``POST {base}/v2/alerts``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.alert_fields import agent_name, dig, digest_alerts, rule_level
from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.integrations.flood_marks import digest_lines, digest_of, suppressed_of
from wazuh_integrator.integrations.webhook import WebhookIntegration

__all__ = [
    "DEFAULT_API_BASE",
    "OpsgenieIntegration",
    "alerts_url",
    "build_opsgenie_digest_payload",
    "build_opsgenie_payload",
    "opsgenie_priority",
]

DEFAULT_API_BASE = "https://api.opsgenie.com"
_ALERTS_PATH = "/v2/alerts"
# The API's own limits: past them it answers 422 (or cuts), so we cut first.
_MESSAGE_CHARS = 130
_ALIAS_CHARS = 512
_DESCRIPTION_CHARS = 15000
_TAG_CHARS = 50
_TAGS = 20
_DETAIL_VALUE_CHARS = 1000


def opsgenie_priority(level: int) -> str:
    """P1 (critical) to P5 (informational), in the same bands as PagerDuty's severity."""
    if level >= 13:
        return "P1"
    if level >= 10:
        return "P2"
    if level >= 7:
        return "P3"
    if level >= 4:
        return "P4"
    return "P5"


def alerts_url(base: str | None) -> str:
    """The create-alert endpoint under an API base URL (a full endpoint is kept)."""
    root = (base or DEFAULT_API_BASE).rstrip("/")
    return root if root.endswith(_ALERTS_PATH) else root + _ALERTS_PATH


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _details(alert: Alert, rule: Mapping[str, Any], level: int) -> dict[str, str]:
    """Opsgenie's custom properties: a flat map of strings."""
    fields = {
        "alert_id": alert.get("id"),
        "rule_id": rule.get("id"),
        "level": level,
        "agent_id": dig(alert, "agent.id"),
        "agent_name": agent_name(alert),
        "agent_ip": dig(alert, "agent.ip"),
        "manager": dig(alert, "manager.name"),
        "location": alert.get("location"),
        "srcip": dig(alert, "data.srcip"),
        "dstip": dig(alert, "data.dstip"),
        "srcuser": dig(alert, "data.srcuser"),
        "dstuser": dig(alert, "data.dstuser"),
        "timestamp": alert.get("timestamp"),
    }
    suppressed = suppressed_of(alert)
    if suppressed is not None:
        fields["suppressed_count"] = suppressed.count
        fields["suppressed_since"] = suppressed.since
    return {
        key: _cut(str(value), _DETAIL_VALUE_CHARS)
        for key, value in fields.items()
        if value is not None and value != ""
    }


def _tags(rule: Mapping[str, Any]) -> list[str]:
    tags = ["wazuh"]
    for group in rule.get("groups") or ():
        tag = _cut(str(group), _TAG_CHARS)
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:_TAGS]


def _description(alert: Alert, rule: Mapping[str, Any], level: int) -> str:
    lines = [
        f"{rule.get('description', 'N/A')}",
        "",
        f"Rule: {rule.get('id')} (level {level})",
    ]
    agent = agent_name(alert)
    if agent:
        lines.append(f"Agent: ({dig(alert, 'agent.id') or '-'}) {agent}")
    lines.append(f"Location: {alert.get('location')}")
    suppressed = suppressed_of(alert)
    if suppressed is not None:
        lines.append(f"Suppressed: {suppressed.text()}")
    if alert.get("full_log"):
        lines += ["", str(alert["full_log"])]
    return _cut("\n".join(lines), _DESCRIPTION_CHARS)


def build_opsgenie_payload(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The create-alert body for ``alert``.

    ``alias`` is the alert id, so that a retried delivery is folded into the
    alert the first attempt opened instead of opening a second one.
    ``options`` are merged at the top level (``responders``, ``tags``,
    ``alias`` for grouping, ``priority``, ...).
    """
    rule: Mapping[str, Any] = alert.get("rule") or {}
    level = rule_level(alert)
    body: dict[str, Any] = {
        "message": _cut(f"[Wazuh] {rule.get('description', 'N/A')}", _MESSAGE_CHARS),
    }
    if alert.get("id") is not None:
        body["alias"] = _cut(f"wazuh-{alert['id']}", _ALIAS_CHARS)
    body["description"] = _description(alert, rule, level)
    body["priority"] = opsgenie_priority(level)
    body["tags"] = _tags(rule)
    body["details"] = _details(alert, rule, level)
    entity = agent_name(alert)
    if entity:
        body["entity"] = entity
    body["source"] = "Wazuh"
    if options:
        body.update(options)
    return body


def digest_alias(integration: str, group: str) -> str:
    """One Opsgenie alert per digest group: each new digest of the group is
    folded into it (Opsgenie counts them) instead of opening another."""
    digest = hashlib.sha256(f"{integration}\0{group}".encode()).hexdigest()[:32]
    return f"wazuh-digest-{digest}"


def build_opsgenie_digest_payload(
    document: Alert, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The create-alert body for a floods digest: one alert for the group."""
    header = digest_of(document) or {}
    alerts = digest_alerts(document)
    level = max((rule_level(alert) for alert in alerts), default=0)
    group = str(header.get("group", "?"))
    count = document.get("count", len(alerts))
    lines = [
        f"{count} Wazuh alerts for {group}",
        f"From {document.get('first')} to {document.get('last')}",
        "",
        *digest_lines(document),
    ]
    details = {
        "digest_group": group,
        "count": count,
        "first": document.get("first"),
        "last": document.get("last"),
        "integration": header.get("integration"),
    }
    body: dict[str, Any] = {
        "message": _cut(f"[Wazuh] {count} alerts for {group}", _MESSAGE_CHARS),
        "alias": digest_alias(str(header.get("integration", "")), group),
        "description": _cut("\n".join(lines), _DESCRIPTION_CHARS),
        "priority": opsgenie_priority(level),
        "tags": ["wazuh", "digest"],
        "details": {
            key: _cut(str(value), _DETAIL_VALUE_CHARS)
            for key, value in details.items()
            if value is not None
        },
        "source": "Wazuh",
    }
    if options:
        body.update(options)
    return body


def _body(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    if digest_of(alert) is not None:
        return build_opsgenie_digest_payload(alert, options)
    return build_opsgenie_payload(alert, options)


class OpsgenieIntegration(WebhookIntegration):
    """Says what Opsgenie gets; the webhook base sends it."""

    name = "opsgenie"
    required: ClassVar[tuple[str, ...]] = ("api_key",)

    def preview(self, alert: Alert) -> dict[str, Any]:
        return _body(alert, self.block.options)

    def target_url(self) -> str:
        return alerts_url(self.block.hook_url.reveal() if self.block.hook_url else None)

    def auth_header(self) -> str | None:
        if self.block.api_key is None:
            raise Permanent("opsgenie: no <api_key> configured")
        return f"GenieKey {self.block.api_key.reveal()}"
