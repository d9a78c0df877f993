"""In-process plugin integrations for tests.

Enable with ``plugins = ["tests.config.sample_plugin:TicketIntegration"]``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.integrations.base import Alert, Integration


class TicketIntegration(Integration):
    name = "custom-ticket"
    required: ClassVar[tuple[str, ...]] = ("api_key",)

    def preview(self, alert: Alert) -> Any | None:
        rule = alert.get("rule", {})
        return {
            "title": rule.get("description"),
            "alert": alert.get("id"),
            "token": self.block.api_key.reveal() if self.block.api_key else None,
        }

    async def send(self, alert: Alert) -> None:
        raise NotImplementedError("tests only preview")


class BrokenPreviewIntegration(Integration):
    name = "custom-broken"

    def preview(self, alert: Alert) -> Any | None:
        raise KeyError("no such field")

    async def send(self, alert: Alert) -> None:
        raise NotImplementedError("tests only preview")


class PickyIntegration(Integration):
    """Refuses a block without ``options.queue``; its check breaks on ``"queue": 0``."""

    name = "custom-picky"

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        queue = (block.options or {}).get("queue")
        if queue == 0:
            raise ZeroDivisionError(f"broken check for {block.api_key}")
        return None if queue else 'options: "queue" is required'

    async def send(self, alert: dict[str, Any]) -> None:
        return None
