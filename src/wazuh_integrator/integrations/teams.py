"""Microsoft Teams: an Adaptive Card per alert, posted to a Workflows webhook.

``<hook_url>`` is the URL of a Teams Workflows flow "Send webhook alerts to a
channel" (or a classic Incoming Webhook connector, which takes the same body).
The card comes from the shipped ``teams.json.j2``, or the ``template`` of
``[integrations.teams]`` in integrator.toml.
"""

from __future__ import annotations

from typing import Any

from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.integrations.webhook import WebhookIntegration

__all__ = ["DEFAULT_TEMPLATE", "TeamsIntegration"]

DEFAULT_TEMPLATE = "teams.json.j2"


class TeamsIntegration(WebhookIntegration):
    name = "teams"
    template_formats = {"template": "json"}
    default_templates = (DEFAULT_TEMPLATE,)

    def preview(self, alert: Alert) -> Any:
        return self.render_json("template", DEFAULT_TEMPLATE, alert)
