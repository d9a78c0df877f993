"""A signed webhook for wazuh-integrator, written as a Python plugin.

Each alert is posted as JSON with two headers that let the receiver prove the
request came from this manager and was not replayed, in the manner of
GitHub's and Stripe's webhooks:

- ``X-Wazuh-Timestamp``: the Unix time of the request;
- ``X-Wazuh-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the
  block's ``<api_key>``, of the timestamp, a dot and the body's bytes.

The built-in ``webhook`` output sends fixed headers and basic or bearer
authentication only: a signature over each body needs code, which is what a
plugin is for. Install it as README.md shows, then select it in ossec.conf
with ``<name>custom-signed-webhook</name>``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson

from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import Alert, Integration
from wazuh_integrator.integrations.http import send_body

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SignedWebhookIntegration", "build_body", "sign"]

SIGNATURE_HEADER = "X-Wazuh-Signature"
TIMESTAMP_HEADER = "X-Wazuh-Timestamp"


def build_body(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The JSON body for ``alert``: the alert whole, under ``alert``, with the
    block's ``<options>`` object merged at the top (a ``source`` name, say)."""
    return {"source": "wazuh", **(options or {}), "alert": alert}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Wazuh-Signature`` value of ``body`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class SignedWebhookIntegration(Integration):
    """``<name>custom-signed-webhook</name>``: one signed POST per alert."""

    name = "custom-signed-webhook"
    required = ("hook_url", "api_key")

    def preview(self, alert: Alert) -> dict[str, Any]:
        return build_body(alert, self.block.options)

    async def send(self, alert: Alert) -> None:
        if self.block.hook_url is None or self.block.api_key is None:
            raise Permanent("custom-signed-webhook: <hook_url> and <api_key> are required")
        body = orjson.dumps(self.preview(alert))
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.block.api_key.reveal(), timestamp, body),
        }
        # send_body raises Transient, RateLimited or Permanent by the answer,
        # with the secrets scrubbed; retries are the daemon's business, not ours.
        await send_body(
            self.context.session(),
            self.block.hook_url.reveal(),
            body,
            timeout_s=self.block.timeout_s,
            headers=headers,
            secrets=self.block.secrets,
        )
