"""The signed-webhook plugin of examples/signed-webhook: loaded the way its
README says, its body against the golden file, and real sends to a local
receiver that checks the signature as the README's receiver does."""

from __future__ import annotations

import hashlib
import hmac
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Transient
from wazuh_integrator.integrations.base import Integration, IntegrationContext
from wazuh_integrator.integrations.registry import Registry
from wazuh_integrator.secret import Secret

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "signed-webhook"
HOOK_PATH = "/hooks/wazuh/p4th-t0ken"
SHARED_SECRET = "s3cr3t-shared-key"


def _read_json(name: str) -> Any:
    return orjson.loads((EXAMPLE_DIR / name).read_bytes())


SAMPLE_ALERT: dict[str, Any] = _read_json("sample-alert.json")
EXPECTED_BODY: dict[str, Any] = _read_json("expected-body.json")


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example module, imported through the registry as in the README:
    ``plugins = ["signed_webhook:SignedWebhookIntegration"]`` with the folder on the path."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    registry = Registry(
        plugins=("signed_webhook:SignedWebhookIntegration",), entry_point_plugins=False
    )
    cls = registry.resolve("custom-signed-webhook")
    assert cls is not None
    yield sys.modules[cls.__module__]
    sys.modules.pop("signed_webhook", None)


def _block(**values: Any) -> IntegrationBlock:
    return IntegrationBlock(
        index=0, path="ossec.conf", line=1, name="custom-signed-webhook", **values
    )


def readme_verified(secret: bytes, timestamp: str, signature: str, body: bytes) -> bool:
    """The receiver's check, as README.md writes it."""
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, "sha256=" + expected)


def test_class_is_registered_under_its_custom_name(plugin: Any) -> None:
    cls = plugin.SignedWebhookIntegration
    assert issubclass(cls, Integration)
    assert cls.name == "custom-signed-webhook"
    assert cls.required == ("hook_url", "api_key")
    assert cls.needs_script is False


def test_sample_alert_gives_the_golden_body(plugin: Any) -> None:
    assert plugin.build_body(SAMPLE_ALERT, None) == EXPECTED_BODY


def test_options_are_merged_at_the_top_and_cannot_replace_the_alert(plugin: Any) -> None:
    body = plugin.build_body(SAMPLE_ALERT, {"source": "wazuh-eu-1", "alert": "no"})
    assert body == {"source": "wazuh-eu-1", "alert": SAMPLE_ALERT}


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body(plugin: Any) -> None:
    # RFC 4231 test case 2's key and data, framed as the example frames them.
    assert plugin.sign("Jefe", 0, b"what do ya want for nothing?") == (
        "sha256=" + hmac.new(b"Jefe", b"0.what do ya want for nothing?", hashlib.sha256).hexdigest()
    )
    assert plugin.sign("Jefe", 1, b"x") != plugin.sign("Jefe", 2, b"x")


@dataclass
class Receiver:
    """A local receiver that checks each request's signature; ``status`` is
    what it answers a verified request."""

    base_url: str = ""
    status: int = 202
    verified: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Wazuh-Timestamp", "0")
        signature = request.headers.get("X-Wazuh-Signature", "")
        if not readme_verified(SHARED_SECRET.encode(), timestamp, signature, body):
            self.refused += 1
            return web.Response(status=401, text="bad signature")
        self.verified.append(orjson.loads(body))
        # A failing answer that echoes the request URL, as some proxies do.
        text = "accepted" if self.status < 300 else f"rejected {request.url}"
        return web.Response(status=self.status, text=text)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    app = web.Application()
    app.router.add_post(HOOK_PATH, server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[IntegrationContext]:
    async with aiohttp.ClientSession() as session:
        yield IntegrationContext(
            home=tmp_path,
            state_dir=tmp_path / "state",
            settings=IntegrationSettings(),
            http=session,
        )


def _integration(plugin: Any, receiver: Receiver, context: IntegrationContext, key: str) -> Any:
    block = _block(hook_url=Secret(receiver.base_url + HOOK_PATH), api_key=Secret(key))
    return plugin.SignedWebhookIntegration(block, context)


async def test_send_posts_a_body_the_receiver_verifies(
    plugin: Any, receiver: Receiver, context: IntegrationContext
) -> None:
    await _integration(plugin, receiver, context, SHARED_SECRET).send(SAMPLE_ALERT)

    assert (receiver.verified, receiver.refused) == ([EXPECTED_BODY], 0)


async def test_a_wrong_key_is_refused_and_permanent_without_the_secrets(
    plugin: Any, receiver: Receiver, context: IntegrationContext
) -> None:
    with pytest.raises(Permanent) as caught:
        await _integration(plugin, receiver, context, "another-key").send(SAMPLE_ALERT)

    assert caught.value.status == 401
    assert (receiver.verified, receiver.refused) == ([], 1)
    assert "another-key" not in str(caught.value)
    assert "p4th-t0ken" not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "error_type"), [(400, Permanent), (429, RateLimited), (500, Transient)]
)
async def test_a_refused_post_raises_a_typed_error_without_the_secrets(
    plugin: Any,
    receiver: Receiver,
    context: IntegrationContext,
    status: int,
    error_type: type[DeliveryError],
) -> None:
    receiver.status = status

    with pytest.raises(error_type) as caught:
        await _integration(plugin, receiver, context, SHARED_SECRET).send(SAMPLE_ALERT)

    assert caught.value.status == status
    message = str(caught.value)
    for leak in (SHARED_SECRET, "p4th-t0ken", HOOK_PATH):
        assert leak not in message


async def test_send_without_a_key_is_permanent(plugin: Any, context: IntegrationContext) -> None:
    with pytest.raises(Permanent, match="<api_key> are required"):
        await plugin.SignedWebhookIntegration(
            _block(hook_url=Secret("http://127.0.0.1:9/")), context
        ).send(SAMPLE_ALERT)
