"""Discord: one embed per alert within Discord's limits, posted to the
channel's webhook."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from outputs_support import ALERT, OUTPUTS

from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.discord import DiscordIntegration

CASE = OUTPUTS["discord"]
# Discord's documented embed limits (characters).
LIMITS = {"title": 256, "description": 4096, "field.name": 256, "field.value": 1024}


def preview(context: IntegrationContext, alert: dict[str, Any], **values: Any) -> Any:
    return DiscordIntegration(CASE.block("https://x.invalid", **values), context).preview(alert)


def within_limits(embed: dict[str, Any]) -> bool:
    fields = embed.get("fields", [])
    return (
        len(embed["title"]) <= LIMITS["title"]
        and len(embed.get("description", "")) <= LIMITS["description"]
        and len(fields) <= 25
        and all(len(f["name"]) <= LIMITS["field.name"] for f in fields)
        and all(0 < len(f["value"]) <= LIMITS["field.value"] for f in fields)
    )


def test_embed_carries_the_alert(dry_context: IntegrationContext) -> None:
    [embed] = preview(dry_context, ALERT)["embeds"]
    assert embed["title"] == ALERT["rule"]["description"]
    assert embed["color"] == 15158332
    assert embed["description"] == f"```\n{ALERT['full_log']}\n```"
    assert embed["timestamp"] == "2026-11-27T17:00:00.123000+00:00"
    assert embed["url"] == ALERT["data"]["url"]
    assert embed["footer"] == {"text": "Wazuh alert 1764262800.42"}
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Level": "10 (medium)",
        "Rule": "5712",
        "Agent": "(002) web-01",
        "Location": "/var/log/auth.log",
        "MITRE ATT&CK": "T1110 Brute Force (Credential Access)",
    }
    assert within_limits(embed)


@pytest.mark.parametrize(("level", "color"), [(3, 3066993), (6, 15844367), (12, 15158332)])
def test_colour_follows_the_level(dry_context: IntegrationContext, level: int, color: int) -> None:
    alert = {**ALERT, "rule": {**ALERT["rule"], "level": level}}
    assert preview(dry_context, alert)["embeds"][0]["color"] == color


def test_huge_values_stay_within_discord_limits(dry_context: IntegrationContext) -> None:
    alert = {
        **ALERT,
        "rule": {**ALERT["rule"], "description": "d" * 1000},
        "full_log": "```" + "l" * 10000,
        "location": "p" * 3000,
    }
    [embed] = preview(dry_context, alert)["embeds"]
    assert within_limits(embed)
    assert embed["description"].count("```") == 2, "a log cannot close the code block"


def test_minimal_alert(dry_context: IntegrationContext) -> None:
    [embed] = preview(dry_context, {"rule": {"level": 2}})["embeds"]
    assert embed["title"] == "N/A"
    assert "description" not in embed and "timestamp" not in embed and "url" not in embed
    assert within_limits(embed)


def test_options_name_the_sender(dry_context: IntegrationContext) -> None:
    options = {"username": "Wazuh", "avatar_url": "https://x.example/a.png", "content": "@here"}
    payload = preview(dry_context, ALERT, options=options)
    assert {key: payload[key] for key in options} == options


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"username": 3}, '"username" must be a string'), ({"content": "hi"}, None), (None, None)],
)
def test_options_problems(
    options: dict[str, Any] | None, problem: str | None, make_block: Any
) -> None:
    found = DiscordIntegration.block_problem(make_block("discord", options=options))
    assert found == (None if problem is None else f"<options>: {problem}")


async def test_the_stand_in_receives_the_embed(receiver: Any, context: IntegrationContext) -> None:
    receiver.answer(204, b"")
    await DiscordIntegration(CASE.block(receiver.base_url), context).send(ALERT)
    [request] = receiver.requests
    assert request.path_qs == CASE.path
    assert orjson.loads(request.body)["embeds"][0]["title"] == ALERT["rule"]["description"]
