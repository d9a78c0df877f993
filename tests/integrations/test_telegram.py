"""Telegram: sendMessage to the chat, the text valid MarkdownV2 whatever the
alert holds, the bot token never shown, and the API base URL replaceable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from outputs_support import ALERT, OUTPUTS, TELEGRAM_TOKEN

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import RateLimited
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.telegram import TelegramIntegration, telegram_retry_after
from wazuh_integrator.secret import Secret

CASE = OUTPUTS["telegram"]
RESERVED = set("_*[]()~`>#+-=|{}.!\\")


class MarkdownV2Error(ValueError):
    pass


def parse_markdownv2(text: str) -> str:
    """The plain text of MarkdownV2 using bold and pre blocks, as Telegram
    reads it; raises where Telegram would refuse the message ("can't parse
    entities"): a reserved character left unescaped outside an entity."""
    plain: list[str] = []
    index, bold, pre = 0, False, False
    while index < len(text):
        if text.startswith("```", index):
            pre = not pre
            index += 3
            continue
        char = text[index]
        if char == "\\":
            following = text[index + 1 : index + 2]
            if not following or (pre and following not in "`\\"):
                raise MarkdownV2Error(f"bad escape at {index}: {text[index : index + 10]!r}")
            plain.append(following)
            index += 2
            continue
        if pre:
            if char == "`":
                raise MarkdownV2Error(f"unescaped ` in a pre block at {index}")
            plain.append(char)
        elif char == "*":
            bold = not bold
        elif char in RESERVED:
            raise MarkdownV2Error(
                f"unescaped {char!r} at {index}: {text[index - 10 : index + 10]!r}"
            )
        else:
            plain.append(char)
        index += 1
    if bold or pre:
        raise MarkdownV2Error("an entity is not closed")
    return "".join(plain)


def preview(context: IntegrationContext, alert: dict[str, Any], **values: Any) -> Any:
    return TelegramIntegration(CASE.block("https://x.invalid", **values), context).preview(alert)


def test_payload_is_a_markdownv2_message_to_the_chat(dry_context: IntegrationContext) -> None:
    payload = preview(dry_context, ALERT)
    assert payload["chat_id"] == -1001234567890
    assert payload["parse_mode"] == "MarkdownV2"
    assert payload["link_preview_options"] == {"is_disabled": True}
    plain = parse_markdownv2(payload["text"])
    assert plain.splitlines() == [
        f"Wazuh alert: {ALERT['rule']['description']}",
        "Level 10 (medium), rule 5712",
        "Agent: 002 web-01",
        "Location: /var/log/auth.log",
        "MITRE ATT&CK: T1110 Brute Force (Credential Access)",
        "",
        ALERT["full_log"],
    ]


NASTY = "_*[]()~`>#+-=|{}.!\\ ``` \\` end"


@pytest.mark.parametrize("field", ["description", "full_log", "location", "agent"])
def test_every_reserved_character_in_the_alert_is_escaped(
    dry_context: IntegrationContext, field: str
) -> None:
    alert: dict[str, Any] = {**ALERT, "rule": dict(ALERT["rule"]), "agent": dict(ALERT["agent"])}
    if field == "description":
        alert["rule"]["description"] = NASTY
    elif field == "agent":
        alert["agent"]["name"] = NASTY
    else:
        alert[field] = NASTY
    plain = parse_markdownv2(preview(dry_context, alert)["text"])
    assert NASTY in plain


def test_extra_send_message_parameters_from_options(dry_context: IntegrationContext) -> None:
    options = {"chat_id": "@soc_alerts", "message_thread_id": 7, "disable_notification": True}
    payload = preview(dry_context, ALERT, options=options)
    assert payload["chat_id"] == "@soc_alerts"
    assert payload["message_thread_id"] == 7
    assert payload["disable_notification"] is True


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (None, 'missing "chat_id", the chat to send to (like {"chat_id": -1001234567890})'),
        ({"chat_id": True}, '"chat_id" must be a number or an "@channelusername"'),
        ({"chat_id": ""}, '"chat_id" must be a number or an "@channelusername"'),
        ({"chat_id": 1, "message_thread_id": "7"}, '"message_thread_id" must be a number'),
        ({"chat_id": 1, "disable_notification": 1}, '"disable_notification" must be true or false'),
        ({"chat_id": 1}, None),
    ],
)
def test_options_problems(
    options: dict[str, Any] | None, problem: str | None, make_block: Any
) -> None:
    found = TelegramIntegration.block_problem(make_block("telegram", options=options))
    assert found == (None if problem is None else f"<options>: {problem}")


def test_the_bot_token_is_required_not_the_url() -> None:
    assert TelegramIntegration.required == ("api_key",)


async def test_sends_to_the_bot_api_under_the_configured_base(
    receiver: Any, context: IntegrationContext
) -> None:
    block = CASE.block(receiver.base_url + "/proxy/")
    await TelegramIntegration(block, context).send(ALERT)
    [request] = receiver.requests
    assert request.path_qs == f"/proxy/bot{TELEGRAM_TOKEN}/sendMessage"
    assert orjson.loads(request.body)["chat_id"] == -1001234567890


def test_the_public_api_is_the_default(dry_context: IntegrationContext) -> None:
    block = CASE.block("x", hook_url=None, api_key=Secret("1:t"))
    assert TelegramIntegration(block, dry_context).target_url() == (
        "https://api.telegram.org/bot1:t/sendMessage"
    )


def test_a_template_writes_markdownv2_with_values_escaped(
    tmp_path: Path, dry_context: IntegrationContext
) -> None:
    (tmp_path / "t.j2").write_text("*{{ alert.rule.id }}* \\- {{ alert.location }}")
    dry_context.settings = IntegrationSettings(templates={"template": Path("t.j2")})
    text = preview(dry_context, ALERT)["text"]
    assert text == "*5712* \\- /var/log/auth\\.log"


def test_a_digest_is_valid_markdownv2(dry_context: IntegrationContext) -> None:
    digest = {
        "digest": {"group": "rule.id=5712 agent.id=002", "fields": {}, "integration": "x"},
        "count": 4,
        "alerts": [ALERT, ALERT],
        "first": "2026-11-27T17:00:00.000Z",
        "last": "2026-11-27T17:05:00.000Z",
    }
    plain = parse_markdownv2(preview(dry_context, digest)["text"])
    assert plain.splitlines()[0] == "Wazuh: 4 alerts for rule.id=5712 agent.id=002"
    assert plain.splitlines()[-1] == "and 2 more"


FLOOD_ANSWER = orjson.dumps(
    {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 35",
        "parameters": {"retry_after": 35},
    }
)


@pytest.mark.parametrize(
    ("headers", "delay_s"),
    [({}, 35.0), ({"Retry-After": "7"}, 7.0)],
    ids=["only-in-the-body", "the-header-first"],
)
async def test_a_flood_answer_waits_as_long_as_telegram_says(
    receiver: Any, context: IntegrationContext, headers: dict[str, str], delay_s: float
) -> None:
    receiver.answer(429, FLOOD_ANSWER, {"Content-Type": "application/json", **headers})
    with pytest.raises(RateLimited) as info:
        await TelegramIntegration(CASE.block(receiver.base_url), context).send(ALERT)
    assert info.value.retry_after_s == delay_s
    assert info.value.status == 429
    assert TELEGRAM_TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("body", "delay_s"),
    [
        (FLOOD_ANSWER, 35.0),
        (b'{"ok": false, "parameters": {"retry_after": 0}}', 0.0),
        (b'{"ok": false, "error_code": 429, "description": "Too Many Requests"}', None),
        (b'{"ok": false, "parameters": {"retry_after": "soon"}}', None),
        (b'{"ok": false, "parameters": {"retry_after": true}}', None),
        (b'{"ok": false, "parameters": {"retry_after": -3}}', None),
        (b'{"ok": false, "parameters": [35]}', None),
        (b"[35]", None),
        (b"<html>502 Bad Gateway</html>", None),
        (b"", None),
    ],
)
def test_retry_after_is_read_from_the_answers_parameters(
    body: bytes, delay_s: float | None
) -> None:
    assert telegram_retry_after(body) == delay_s
