"""Discord: an embed per alert, posted to a channel's webhook.

``<hook_url>`` is the channel's webhook URL (Server Settings, Integrations,
Webhooks). The message comes from the shipped ``discord.json.j2``, or the
``template`` of ``[integrations.discord]`` in integrator.toml; ``<options>``
may set ``username``, ``avatar_url`` and ``content``.
"""

from __future__ import annotations

from typing import Any

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.integrations.base import Alert, options_problem
from wazuh_integrator.integrations.webhook import WebhookIntegration

__all__ = ["DEFAULT_TEMPLATE", "DiscordIntegration"]

DEFAULT_TEMPLATE = "discord.json.j2"
_TEXT_OPTIONS = ("username", "avatar_url", "content")


class DiscordIntegration(WebhookIntegration):
    name = "discord"
    template_formats = {"template": "json"}
    default_templates = (DEFAULT_TEMPLATE,)

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        options = block.options or {}
        for key in _TEXT_OPTIONS:
            if key in options and not isinstance(options[key], str):
                return options_problem(f'"{key}" must be a string')
        return None

    def preview(self, alert: Alert) -> Any:
        return self.render_json("template", DEFAULT_TEMPLATE, alert)
