"""Teams: the Adaptive Card, checked against the schema's required fields,
and what reaches a real local Workflows stand-in."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from outputs_support import ALERT, OUTPUTS

from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.teams import TeamsIntegration

CASE = OUTPUTS["teams"]

# Required properties per element type, from the Adaptive Card schema
# (adaptivecards.io/schemas/adaptive-card.json, "required" of each definition;
# a top-level card must also say its version).
REQUIRED: dict[str, tuple[str, ...]] = {
    "AdaptiveCard": ("type", "version", "body"),
    "TextBlock": ("type", "text"),
    "FactSet": ("type", "facts"),
    "Container": ("type", "items"),
    "ActionSet": ("type", "actions"),
    "Action.OpenUrl": ("type", "url"),
}
FACT_REQUIRED = ("title", "value")
TEXT_COLORS = {"default", "dark", "light", "accent", "good", "warning", "attention"}


def schema_problems(element: Any, where: str = "card") -> list[str]:
    """Every breach of the schema's required fields and types in ``element``."""
    problems: list[str] = []
    if not isinstance(element, dict):
        return [f"{where}: not an object"]
    kind = element.get("type")
    if kind not in REQUIRED:
        return [f"{where}: unknown type {kind!r}"]
    problems += [f"{where}: {kind} lacks {key}" for key in REQUIRED[kind] if key not in element]
    if kind == "TextBlock":
        if not isinstance(element.get("text"), str) or not element["text"]:
            problems.append(f"{where}: TextBlock text must be a non-empty string")
        if "color" in element and element["color"] not in TEXT_COLORS:
            problems.append(f"{where}: TextBlock color {element['color']!r}")
    if kind == "FactSet":
        for number, fact in enumerate(element.get("facts", [])):
            for key in FACT_REQUIRED:
                if not isinstance(fact.get(key), str):
                    problems.append(f"{where}.facts[{number}]: {key} must be a string")
    if kind == "Action.OpenUrl" and not str(element.get("url", "")).startswith("http"):
        problems.append(f"{where}: Action.OpenUrl url is not a URL")
    for key in ("body", "items", "actions"):
        for number, child in enumerate(element.get(key, [])):
            problems += schema_problems(child, f"{where}.{key}[{number}]")
    return problems


def card_of(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = attachment["content"]
    return card


def preview(dry_context: IntegrationContext, alert: dict[str, Any], **values: Any) -> Any:
    return TeamsIntegration(CASE.block("https://x.invalid", **values), dry_context).preview(alert)


def facts(card: dict[str, Any]) -> dict[str, str]:
    [fact_set] = [item for item in card["body"] if item["type"] == "FactSet"]
    return {fact["title"]: fact["value"] for fact in fact_set["facts"]}


MINIMAL = {"rule": {"level": 3, "id": "1"}, "id": "1.1"}


DIGEST = {
    "digest": {"group": "rule.id=5712", "fields": {}, "integration": "teams"},
    "count": 3,
    "alerts": [ALERT],
    "first": "2026-11-27T17:00:00.000Z",
    "last": "2026-11-27T17:05:00.000Z",
}


@pytest.mark.parametrize("alert", [ALERT, MINIMAL, DIGEST], ids=["full", "minimal", "digest"])
def test_card_meets_the_schema(dry_context: IntegrationContext, alert: dict[str, Any]) -> None:
    card = card_of(preview(dry_context, alert))
    assert schema_problems(card) == []
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"


def test_card_shows_title_agent_location_rule_log_and_link(
    dry_context: IntegrationContext,
) -> None:
    card = card_of(preview(dry_context, ALERT))
    title = card["body"][0]
    assert title["text"] == ALERT["rule"]["description"]
    assert title["color"] == "attention"
    assert facts(card) == {
        "Level": "10 (medium)",
        "Rule": "5712",
        "Agent": "(002) web-01",
        "Location": "/var/log/auth.log",
        "Time": "2026-11-27T17:00:00.123+0000",
        "MITRE ATT&CK": "T1110 Brute Force (Credential Access)",
    }
    assert card["body"][2]["text"] == ALERT["full_log"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open link", "url": ALERT["data"]["url"]}
    ]


def test_no_link_no_log_no_agent_leaves_them_out(dry_context: IntegrationContext) -> None:
    card = card_of(preview(dry_context, MINIMAL))
    assert "actions" not in card
    assert [item["type"] for item in card["body"]] == ["TextBlock", "FactSet"]
    assert card["body"][0]["text"] == "N/A"
    assert "Agent" not in facts(card)


@pytest.mark.parametrize(
    ("level", "color"),
    [(0, "good"), (4, "good"), (5, "warning"), (7, "warning"), (8, "attention"), (16, "attention")],
)
def test_level_is_the_heading_colour(
    dry_context: IntegrationContext, level: int, color: str
) -> None:
    alert = {**ALERT, "rule": {**ALERT["rule"], "level": level}}
    assert card_of(preview(dry_context, alert))["body"][0]["color"] == color


def test_a_long_log_is_cut(dry_context: IntegrationContext) -> None:
    card = card_of(preview(dry_context, {**ALERT, "full_log": "x" * 5000}))
    assert len(card["body"][2]["text"]) == 2000
    assert card["body"][2]["text"].endswith("…")


def test_options_are_merged_into_the_card(dry_context: IntegrationContext) -> None:
    options = {"msteams": {"width": "Default"}, "speak": "Wazuh alert"}
    card = card_of(preview(dry_context, ALERT, options=options))
    assert card["msteams"] == {"width": "Default"}
    assert card["speak"] == "Wazuh alert"


async def test_the_stand_in_receives_the_card(receiver: Any, context: IntegrationContext) -> None:
    await TeamsIntegration(CASE.block(receiver.base_url), context).send(ALERT)
    [request] = receiver.requests
    assert request.path_qs == CASE.path
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert schema_problems(card_of(orjson.loads(request.body))) == []
