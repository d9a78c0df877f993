"""Telegram: ``sendMessage`` to a chat, the text in MarkdownV2.

``<api_key>`` is the bot's token, ``<options>`` names the chat
(``{"chat_id": -1001234567890}`` or ``"@channel"``); ``<hook_url>``, when
given, replaces the Bot API's base URL (a proxy or a local Bot API server).
The text comes from the shipped ``telegram.md2.j2``, or the ``template`` of
``[integrations.telegram]``, in which every ``{{ value }}`` is escaped for
MarkdownV2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import Alert, options_problem
from wazuh_integrator.integrations.webhook import WebhookIntegration

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_TEMPLATE",
    "TelegramIntegration",
    "build_telegram_payload",
    "telegram_retry_after",
]

DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_TEMPLATE = "telegram.md2.j2"
# sendMessage parameters an administrator may add in <options>, with their types.
_EXTRA_PARAMETERS: dict[str, type | tuple[type, ...]] = {
    "message_thread_id": int,
    "disable_notification": bool,
    "protect_content": bool,
}


def build_telegram_payload(text: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sendMessage`` body for an already rendered MarkdownV2 ``text``."""
    payload: dict[str, Any] = {
        "chat_id": options["chat_id"],
        "text": text,
        "parse_mode": "MarkdownV2",
        "link_preview_options": {"is_disabled": True},
    }
    payload.update((key, options[key]) for key in _EXTRA_PARAMETERS if key in options)
    return payload


def _options_problem(options: Mapping[str, Any]) -> str | None:
    chat_id = options.get("chat_id")
    if chat_id is None:
        return 'missing "chat_id", the chat to send to (like {"chat_id": -1001234567890})'
    if isinstance(chat_id, bool) or not isinstance(chat_id, int | str) or chat_id == "":
        return '"chat_id" must be a number or an "@channelusername"'
    for key, kind in _EXTRA_PARAMETERS.items():
        value = options.get(key)
        if value is not None and (
            not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        ):
            return f'"{key}" must be {"a number" if kind is int else "true or false"}'
    return None


def telegram_retry_after(body: bytes) -> float | None:
    """Seconds from ``parameters.retry_after`` of a Bot API error answer, or None."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    parameters = answer.get("parameters") if isinstance(answer, dict) else None
    delay = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
        return None
    return float(delay)


class TelegramIntegration(WebhookIntegration):
    name = "telegram"
    required: ClassVar[tuple[str, ...]] = ("api_key",)
    template_formats = {"template": "markdownv2"}
    default_templates = (DEFAULT_TEMPLATE,)

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        return options_problem(_options_problem(block.options or {}))

    def preview(self, alert: Alert) -> dict[str, Any]:
        text = self.render("template", DEFAULT_TEMPLATE, alert)
        return build_telegram_payload(text, self.block.options or {})

    def retry_after_in_body(self, body: bytes) -> float | None:
        # The Bot API's 429 says how long to wait in its JSON answer,
        # {"ok": false, "parameters": {"retry_after": 5}, ...}.
        return telegram_retry_after(body)

    def target_url(self) -> str:
        if self.block.api_key is None:
            raise Permanent("telegram: no <api_key> (the bot token) configured")
        base = self.block.hook_url.reveal() if self.block.hook_url else DEFAULT_API_URL
        return f"{base.rstrip('/')}/bot{self.block.api_key.reveal()}/sendMessage"
