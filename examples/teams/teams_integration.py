"""A Microsoft Teams integration for wazuh-integrator, written as a Python plugin.

It posts each alert as an Adaptive Card to a Teams webhook: a Workflows
("Post to a channel when a webhook request is received") URL, or a classic
Incoming Webhook connector URL. Both accept the same message body.

Install it as README.md shows, then select it in ossec.conf with
``<name>custom-teams</name>`` and the webhook URL in ``<hook_url>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import Alert, Integration
from wazuh_integrator.integrations.http import post_json

__all__ = ["TeamsIntegration", "build_teams_payload", "level_color"]

ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"
# Teams refuses messages above about 28 KB; a log line is cut well before that.
MAX_LOG_CHARS = 2000


def level_color(level: int) -> str:
    """The heading colour, in the same three bands as the Slack integration."""
    if level <= 4:
        return "good"
    if level <= 7:
        return "warning"
    return "attention"


def _level(rule: Mapping[str, Any]) -> int:
    try:
        return int(rule.get("level", 0))
    except (TypeError, ValueError):
        return 0


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _facts(alert: Alert, rule: Mapping[str, Any], level: int) -> list[dict[str, str]]:
    facts = [{"title": "Rule", "value": f"{_text(rule.get('id'))} (level {level})"}]
    agent = alert.get("agent")
    if isinstance(agent, Mapping):
        facts.append(
            {"title": "Agent", "value": f"({_text(agent.get('id'))}) {_text(agent.get('name'))}"}
        )
    facts.append({"title": "Location", "value": _text(alert.get("location"))})
    facts.append({"title": "Time", "value": _text(alert.get("timestamp"))})
    groups = rule.get("groups")
    if isinstance(groups, list) and groups:
        facts.append({"title": "Groups", "value": ", ".join(_text(g) for g in groups)})
    return facts


def _log_block(full_log: str) -> dict[str, Any]:
    if len(full_log) > MAX_LOG_CHARS:
        full_log = full_log[: MAX_LOG_CHARS - 1] + "…"
    return {"type": "TextBlock", "text": full_log, "wrap": True, "fontType": "Monospace"}


def build_teams_payload(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The webhook body for ``alert``: a message carrying one Adaptive Card.

    ``options`` (the block's ``<options>`` JSON object) are merged into the
    card itself, so that an administrator can set ``msteams``, ``version`` or
    a whole ``body`` of their own.
    """
    found = alert.get("rule")
    rule: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    level = _level(rule)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _text(rule.get("description")) or "N/A",
            "size": "Medium",
            "weight": "Bolder",
            "color": level_color(level),
            "wrap": True,
        },
        {"type": "FactSet", "facts": _facts(alert, rule, level)},
    ]
    full_log = alert.get("full_log")
    if isinstance(full_log, str) and full_log:
        body.append(_log_block(full_log))
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if options:
        card.update(options)
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


class TeamsIntegration(Integration):
    """``<name>custom-teams</name>``: one Adaptive Card per alert."""

    name = "custom-teams"
    required = ("hook_url",)

    def preview(self, alert: Alert) -> dict[str, Any]:
        return build_teams_payload(alert, self.block.options)

    async def send(self, alert: Alert) -> None:
        if self.block.hook_url is None:
            raise Permanent("custom-teams: no <hook_url> configured")
        # post_json raises Transient, RateLimited or Permanent by the answer,
        # with the URL redacted; retries are the daemon's business, not ours.
        await post_json(
            self.context.session(),
            self.block.hook_url.reveal(),
            self.preview(alert),
            timeout_s=self.block.timeout_s,
            secrets=self.block.secrets,
        )
