"""Jira: an issue created through REST API v2 with basic auth by API token,
summary and description from templates."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from outputs_support import ALERT, JIRA_TOKEN, JIRA_USER, OUTPUTS

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.jira import JiraIntegration

CASE = OUTPUTS["jira"]


def preview(context: IntegrationContext, alert: dict[str, Any], **values: Any) -> Any:
    return JiraIntegration(CASE.block("https://x.invalid", **values), context).preview(alert)


def test_issue_fields(dry_context: IntegrationContext) -> None:
    fields = preview(dry_context, ALERT)["fields"]
    assert fields["project"] == {"key": "SEC"}
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == f"Wazuh: {ALERT['rule']['description']} (level 10, agent web-01)"
    assert fields["description"].splitlines() == [
        "*Rule:* 5712, level 10 (medium)",
        "*Agent:* (002) web-01",
        "*Location:* /var/log/auth.log",
        "*Time:* 2026-11-27T17:00:00.123+0000",
        "*Alert ID:* 1764262800.42",
        "*MITRE ATT&CK:* T1110 Brute Force (Credential Access)",
        "{noformat}",
        ALERT["full_log"],
        "{noformat}",
    ]
    assert set(fields) == {"project", "issuetype", "summary", "description"}


def test_options_set_type_labels_and_other_fields(dry_context: IntegrationContext) -> None:
    options = {
        "project": "OPS",
        "user": JIRA_USER,
        "issue_type": "Bug",
        "labels": ["wazuh", "sshd"],
        "fields": {"priority": {"name": "High"}},
    }
    fields = preview(dry_context, ALERT, options=options)["fields"]
    assert fields["project"] == {"key": "OPS"}
    assert fields["issuetype"] == {"name": "Bug"}
    assert fields["labels"] == ["wazuh", "sshd"]
    assert fields["priority"] == {"name": "High"}


def test_summary_is_one_line_of_at_most_255_characters(
    tmp_path: Path, dry_context: IntegrationContext
) -> None:
    (tmp_path / "summary.j2").write_text("{{ alert.rule.id }}\n\n{{ alert.full_log * 20 }}")
    dry_context.settings = IntegrationSettings(templates={"summary_template": Path("summary.j2")})
    summary = preview(dry_context, ALERT)["fields"]["summary"]
    assert "\n" not in summary
    assert len(summary) == 255
    assert summary.startswith("5712 Nov 27") and summary.endswith("…")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (None, 'missing "project" (like "project": "SEC")'),
        ({"project": "SEC"}, 'missing "user" (like "user": "soc-bot@example.com")'),
        ({"project": "SEC", "user": "u", "issue_type": 1}, '"issue_type" must be a string'),
        (
            {"project": "SEC", "user": "u", "labels": ["two words"]},
            '"labels" must be a list of words without spaces',
        ),
        (
            {"project": "SEC", "user": "u", "fields": []},
            '"fields" must be an object of Jira fields',
        ),
        ({"project": "SEC", "user": "u"}, None),
    ],
)
def test_options_problems(
    options: dict[str, Any] | None, problem: str | None, make_block: Any
) -> None:
    found = JiraIntegration.block_problem(make_block("jira", options=options))
    assert found == (None if problem is None else f"<options>: {problem}")


def test_required() -> None:
    assert JiraIntegration.required == ("hook_url", "api_key")


async def test_creates_the_issue_with_basic_auth(
    receiver: Any, context: IntegrationContext
) -> None:
    receiver.answer(201, b'{"id": "10000", "key": "SEC-1"}')
    await JiraIntegration(CASE.block(receiver.base_url), context).send(ALERT)
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path_qs == "/rest/api/2/issue"
    scheme, _, credentials = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{JIRA_USER}:{JIRA_TOKEN}"
    assert orjson.loads(request.body)["fields"]["project"] == {"key": "SEC"}
