"""Jira: one issue per alert, created through the REST API (v2).

``<hook_url>`` is the site's base URL (``https://example.atlassian.net``),
``<api_key>`` an API token, ``<options>`` the project, the account the token
belongs to and optionally the issue type, labels and other fields::

    {"project": "SEC", "user": "soc-bot@example.com", "issue_type": "Bug",
     "labels": ["wazuh"], "fields": {"priority": {"name": "High"}}}

Summary and description come from the shipped templates, or the
``summary_template`` and ``template`` of ``[integrations.jira]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.integrations.base import Alert, options_problem
from wazuh_integrator.integrations.webhook import WebhookIntegration, basic_auth

__all__ = ["ISSUE_PATH", "JiraIntegration", "build_jira_payload"]

ISSUE_PATH = "/rest/api/2/issue"
DEFAULT_ISSUE_TYPE = "Task"
DEFAULT_SUMMARY_TEMPLATE = "jira-summary.txt.j2"
DEFAULT_DESCRIPTION_TEMPLATE = "jira-description.txt.j2"
# Jira refuses a summary longer than this, or one with a line break.
MAX_SUMMARY_CHARS = 255


def one_line_summary(text: str) -> str:
    summary = " ".join(text.split())
    if len(summary) > MAX_SUMMARY_CHARS:
        summary = summary[: MAX_SUMMARY_CHARS - 1] + "…"
    return summary


def build_jira_payload(
    summary: str, description: str, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The create-issue body for a rendered summary and description."""
    fields: dict[str, Any] = {
        "project": {"key": options["project"]},
        "issuetype": {"name": options.get("issue_type", DEFAULT_ISSUE_TYPE)},
        "summary": one_line_summary(summary),
        "description": description,
    }
    if "labels" in options:
        fields["labels"] = list(options["labels"])
    fields.update(options.get("fields") or {})
    return {"fields": fields}


def _options_problem(options: Mapping[str, Any]) -> str | None:
    for key, example in (("project", "SEC"), ("user", "soc-bot@example.com")):
        value = options.get(key)
        if not isinstance(value, str) or not value.strip():
            return f'missing "{key}" (like "{key}": "{example}")'
    if "issue_type" in options and not isinstance(options["issue_type"], str):
        return '"issue_type" must be a string'
    labels = options.get("labels", [])
    if not isinstance(labels, list) or not all(
        isinstance(label, str) and label and " " not in label for label in labels
    ):
        return '"labels" must be a list of words without spaces'
    if not isinstance(options.get("fields", {}), Mapping):
        return '"fields" must be an object of Jira fields'
    return None


class JiraIntegration(WebhookIntegration):
    name = "jira"
    required: ClassVar[tuple[str, ...]] = ("hook_url", "api_key")
    template_formats = {"template": "text", "summary_template": "text"}
    default_templates = (DEFAULT_SUMMARY_TEMPLATE, DEFAULT_DESCRIPTION_TEMPLATE)

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        return options_problem(_options_problem(block.options or {}))

    def preview(self, alert: Alert) -> dict[str, Any]:
        summary = self.render("summary_template", DEFAULT_SUMMARY_TEMPLATE, alert)
        description = self.render("template", DEFAULT_DESCRIPTION_TEMPLATE, alert)
        return build_jira_payload(summary, description, self.block.options or {})

    def target_url(self) -> str:
        return super().target_url().rstrip("/") + ISSUE_PATH

    def auth_header(self) -> str | None:
        options = self.block.options or {}
        assert self.block.api_key is not None  # required
        return basic_auth(str(options.get("user", "")), self.block.api_key.reveal())
