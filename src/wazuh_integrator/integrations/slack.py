"""Slack: one legacy attachment per alert, posted to an incoming webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wazuh_integrator.integrations.alert_fields import rule_level
from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.integrations.flood_marks import digest_lines, digest_of, suppressed_of
from wazuh_integrator.integrations.webhook import (
    JSON_CONTENT_TYPE,
    Body,
    WebhookIntegration,
    json_body,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "SlackIntegration",
    "build_slack_digest_payload",
    "build_slack_payload",
    "slack_color",
]

DEFAULT_TEMPLATE = "slack.json.j2"


def slack_color(level: int) -> str:
    """The attachment's colour bar for a rule level, in stock's three bands."""
    if level <= 4:
        return "good"
    if level <= 7:
        return "warning"
    return "danger"


def _fields(alert: Alert, rule: Mapping[str, Any], level: int) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    agent = alert.get("agent")
    if isinstance(agent, Mapping):
        fields.append({"title": "Agent", "value": f"({agent.get('id')}) - {agent.get('name')}"})
    agentless = alert.get("agentless")
    if isinstance(agentless, Mapping):
        fields.append({"title": "Agentless Host", "value": agentless.get("host")})
    fields.append({"title": "Location", "value": alert.get("location")})
    fields.append({"title": "Rule ID", "value": f"{rule.get('id')} _(Level {level})_"})
    suppressed = suppressed_of(alert)
    if suppressed is not None:
        fields.append({"title": "Suppressed", "value": suppressed.text()})
    return fields


def build_slack_payload(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The webhook body for ``alert``: ``{"attachments": [attachment]}``.

    ``options`` are merged into the attachment, so that an administrator can
    set ``pretext``, ``color``, ``author_name`` and the like.
    """
    rule: Mapping[str, Any] = alert.get("rule") or {}
    level = rule_level(alert)
    attachment: dict[str, Any] = {
        "color": slack_color(level),
        "pretext": "WAZUH Alert",
        "title": rule.get("description", "N/A"),
        "text": alert.get("full_log"),
        "fields": _fields(alert, rule, level),
        "ts": alert.get("id"),
    }
    if options:
        attachment.update(options)
    return {"attachments": [attachment]}


def build_slack_digest_payload(
    document: Alert, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One message for a digest: a line per listed alert, then ``and M more``."""
    header = digest_of(document) or {}
    levels = [rule_level(alert) for alert in document.get("alerts", []) if isinstance(alert, dict)]
    count = document.get("count", len(levels))
    attachment: dict[str, Any] = {
        "color": slack_color(max(levels, default=0)),
        "pretext": "WAZUH Alert digest",
        "title": f"{count} alerts for {header.get('group', '?')}",
        "text": "\n".join(digest_lines(document)),
        "fields": [
            {"title": "From", "value": document.get("first"), "short": True},
            {"title": "To", "value": document.get("last"), "short": True},
        ],
    }
    if options:
        attachment.update(options)
    return {"attachments": [attachment]}


class SlackIntegration(WebhookIntegration):
    """Stock's payload, built in code; a ``template`` in integrator.toml
    replaces it (the shipped ``slack.json.j2`` renders the same bytes)."""

    name = "slack"
    template_formats = {"template": "json"}

    def preview(self, alert: Alert) -> Any:
        if digest_of(alert) is not None:
            return build_slack_digest_payload(alert, self.block.options)
        if self.has_template("template"):
            return self.render_json("template", DEFAULT_TEMPLATE, alert)
        return build_slack_payload(alert, self.block.options)

    def build_body(self, alert: Alert) -> Body:
        if self.has_template("template") and digest_of(alert) is None:
            # The JSON the template wrote, sent as written once it is known to be JSON.
            data = self.render_json_body("template", DEFAULT_TEMPLATE, alert)
            return Body(data, JSON_CONTENT_TYPE)
        return json_body(self.preview(alert))
