"""The HTTP outputs (those built on the webhook base, and PagerDuty), each
configured against a local receiver with secrets worth looking for: shared
by the contract tests that every output must pass and by each output's own
test module."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.integrations.base import Integration
from wazuh_integrator.integrations.discord import DiscordIntegration
from wazuh_integrator.integrations.generic_webhook import GenericWebhookIntegration
from wazuh_integrator.integrations.jira import JiraIntegration
from wazuh_integrator.integrations.opsgenie import OpsgenieIntegration
from wazuh_integrator.integrations.pagerduty import PagerDutyIntegration
from wazuh_integrator.integrations.shuffle import ShuffleIntegration
from wazuh_integrator.integrations.slack import SlackIntegration
from wazuh_integrator.integrations.teams import TeamsIntegration
from wazuh_integrator.integrations.telegram import TelegramIntegration
from wazuh_integrator.integrations.thehive import TheHiveIntegration
from wazuh_integrator.secret import Secret

ALERT: dict[str, Any] = {
    "timestamp": "2026-11-27T17:00:00.123+0000",
    "rule": {
        "level": 10,
        "description": 'sshd: brute force trying "admin" (x.y)',
        "id": "5712",
        "groups": ["syslog", "sshd", "authentication_failures"],
        "mitre": {"id": ["T1110"], "tactic": ["Credential Access"], "technique": ["Brute Force"]},
    },
    "agent": {"id": "002", "name": "web-01", "ip": "10.0.0.12"},
    "manager": {"name": "wazuh-manager"},
    "id": "1764262800.42",
    "full_log": "Nov 27 17:00:00 web-01 sshd[1]: Invalid user admin from 203.0.113.7 `x`_*",
    "location": "/var/log/auth.log",
    "data": {"srcip": "203.0.113.7", "url": "https://intel.example/ip/203.0.113.7"},
}

TEAMS_PATH = "/workflows/abc123/triggers/manual/paths/invoke"
TEAMS_QUERY = "api-version=2016-06-01&sig=teams-SIG-never-logged"
DISCORD_PATH = "/api/webhooks/123456/DISCORD-token-never-logged"
WEBHOOK_PATH = "/in/webhook-path-token-never-logged"
SLACK_TOKENS = ["T0SECRET1", "B0SECRET2", "slack-token-never-logged"]
SLACK_PATH = "/services/" + "/".join(SLACK_TOKENS)
SHUFFLE_TOKEN = "webhook_0f3a8e2c-7d1b-4c55-secret-never-leak"
PAGERDUTY_KEY = "pdRoutingKeyNeverLeak0123456789ab"
PAGERDUTY_TOKEN = "pdHookTokenNeverLeak42"
OPSGENIE_KEY = "ogApiKeyNeverLeak-0123456789"
THEHIVE_KEY = "hiveApiKeyNeverLeak-0123456789"
TELEGRAM_TOKEN = "123456:TELEGRAM-token-never-logged"
JIRA_TOKEN = "JIRA-api-token-never-logged"
JIRA_USER = "soc-bot@example.com"
WEBHOOK_KEY = "webhook-bearer-never-logged"


@dataclass(frozen=True)
class OutputCase:
    """One output, where it sends for a given receiver base URL, and its secrets."""

    name: str
    cls: type[Integration]
    path: str  # the request path (and query) the receiver sees
    hook_url: Callable[[str], str]
    api_key: str | None = None
    options: dict[str, Any] | None = None
    secrets: list[str] = field(default_factory=list)
    # Whether its body says what the floods stage did in the contract's words
    # (stock's payloads stay stock's; TheHive words its digest its own way).
    says_digests: bool = True
    says_suppressed: bool = True

    @property
    def templated(self) -> bool:
        """Whether integrator.toml may give it a ``template``."""
        return "template" in getattr(self.cls, "template_formats", {})

    def block(self, base_url: str, **values: Any) -> IntegrationBlock:
        fields: dict[str, Any] = {
            "hook_url": Secret(self.hook_url(base_url)),
            "options": self.options,
            **values,
        }
        if self.api_key is not None:
            fields.setdefault("api_key", Secret(self.api_key))
        return IntegrationBlock(index=0, path="ossec.conf", line=1, name=self.name, **fields)


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


OUTPUTS: dict[str, OutputCase] = {
    case.name: case
    for case in (
        OutputCase(
            "slack",
            SlackIntegration,
            SLACK_PATH,
            lambda base: base + SLACK_PATH,
            secrets=SLACK_TOKENS,
        ),
        OutputCase(
            "shuffle",
            ShuffleIntegration,
            f"/api/v1/hooks/{SHUFFLE_TOKEN}",
            lambda base: f"{base}/api/v1/hooks/{SHUFFLE_TOKEN}",
            secrets=[SHUFFLE_TOKEN],
            says_digests=False,
            says_suppressed=False,
        ),
        OutputCase(
            "pagerduty",
            PagerDutyIntegration,
            f"/v2/enqueue?token={PAGERDUTY_TOKEN}",
            lambda base: f"{base}/v2/enqueue?token={PAGERDUTY_TOKEN}",
            api_key=PAGERDUTY_KEY,
            secrets=[PAGERDUTY_KEY, PAGERDUTY_TOKEN],
            says_digests=False,
            says_suppressed=False,
        ),
        OutputCase(
            "opsgenie",
            OpsgenieIntegration,
            "/v2/alerts",
            lambda base: base + "/",
            api_key=OPSGENIE_KEY,
            secrets=[OPSGENIE_KEY],
        ),
        OutputCase(
            "thehive",
            TheHiveIntegration,
            "/api/v1/alert",
            lambda base: base + "/",
            api_key=THEHIVE_KEY,
            secrets=[THEHIVE_KEY],
            says_digests=False,
        ),
        OutputCase(
            "webhook",
            GenericWebhookIntegration,
            WEBHOOK_PATH,
            lambda base: base + WEBHOOK_PATH,
            api_key=WEBHOOK_KEY,
            secrets=["webhook-path-token-never-logged", WEBHOOK_KEY],
        ),
        OutputCase(
            "teams",
            TeamsIntegration,
            f"{TEAMS_PATH}?{TEAMS_QUERY}",
            lambda base: f"{base}{TEAMS_PATH}?{TEAMS_QUERY}",
            secrets=["teams-SIG-never-logged"],
        ),
        OutputCase(
            "telegram",
            TelegramIntegration,
            f"/bot{TELEGRAM_TOKEN}/sendMessage",
            lambda base: base,
            api_key=TELEGRAM_TOKEN,
            options={"chat_id": -1001234567890},
            secrets=["TELEGRAM-token-never-logged"],
        ),
        OutputCase(
            "discord",
            DiscordIntegration,
            DISCORD_PATH,
            lambda base: base + DISCORD_PATH,
            secrets=["DISCORD-token-never-logged"],
        ),
        OutputCase(
            "jira",
            JiraIntegration,
            "/rest/api/2/issue",
            lambda base: base + "/",
            api_key=JIRA_TOKEN,
            options={"project": "SEC", "user": JIRA_USER},
            secrets=[JIRA_TOKEN, _basic(JIRA_USER, JIRA_TOKEN)],
        ),
    )
}
