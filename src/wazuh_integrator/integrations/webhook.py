"""The shape Slack and Shuffle share: POST the previewed body to ``hook_url``."""

from __future__ import annotations

from typing import ClassVar

from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import WEBHOOK_CONCURRENCY, Alert, Integration
from wazuh_integrator.integrations.http import post_json


class WebhookIntegration(Integration):
    """Sends :meth:`preview`'s body as JSON to the block's ``hook_url``; an
    alert whose preview is None (skipped by the integration) sends nothing."""

    required: ClassVar[tuple[str, ...]] = ("hook_url",)
    default_concurrency: ClassVar[int] = WEBHOOK_CONCURRENCY

    async def send(self, alert: Alert) -> None:
        body = self.preview(alert)
        if body is None:
            return
        if self.block.hook_url is None:
            raise Permanent(f"{self.block.name}: no <hook_url> configured")
        await post_json(
            self.context.session(),
            self.block.hook_url.reveal(),
            body,
            timeout_s=self.block.timeout_s,
            secrets=self.block.secrets,
        )
