"""The Microsoft Teams plugin of examples/teams: loaded the way its README says,
its payload against the golden file, and real sends to a local webhook."""

from __future__ import annotations

import sys
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

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "teams"
HOOK_PATH = "/workflows/abc123/triggers/manual/paths/invoke"
HOOK_QUERY = "api-version=2016-06-01&sig=s3cr3t-signature"


def _read_json(name: str) -> Any:
    return orjson.loads((EXAMPLE_DIR / name).read_bytes())


SAMPLE_ALERT: dict[str, Any] = _read_json("sample-alert.json")
EXPECTED_PAYLOAD: dict[str, Any] = _read_json("expected-payload.json")


@pytest.fixture
def teams(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example module, imported through the registry as in the README:
    ``plugins = ["teams_integration:TeamsIntegration"]`` with the folder on the path."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    registry = Registry(plugins=("teams_integration:TeamsIntegration",), entry_point_plugins=False)
    cls = registry.resolve("custom-teams")
    assert cls is not None
    yield sys.modules[cls.__module__]
    sys.modules.pop("teams_integration", None)


def _block(**values: Any) -> IntegrationBlock:
    return IntegrationBlock(index=0, path="ossec.conf", line=1, name="custom-teams", **values)


def test_class_is_registered_under_its_custom_name(teams: Any) -> None:
    cls = teams.TeamsIntegration
    assert issubclass(cls, Integration)
    assert cls.name == "custom-teams"
    assert cls.required == ("hook_url",)
    assert cls.needs_script is False


def test_sample_alert_gives_the_golden_payload(teams: Any) -> None:
    assert teams.build_teams_payload(SAMPLE_ALERT, None) == EXPECTED_PAYLOAD


def test_options_are_merged_into_the_card(teams: Any) -> None:
    options = {"msteams": {"width": "Default"}, "version": "1.5", "speak": "Wazuh alert"}
    card = teams.build_teams_payload(SAMPLE_ALERT, options)["attachments"][0]["content"]
    expected = {**EXPECTED_PAYLOAD["attachments"][0]["content"], **options}
    assert card == expected


@pytest.mark.parametrize(
    ("level", "color"),
    [(0, "good"), (4, "good"), (5, "warning"), (7, "warning"), (8, "attention"), (16, "attention")],
)
def test_heading_colour_follows_the_level(teams: Any, level: int, color: str) -> None:
    alert = {**SAMPLE_ALERT, "rule": {**SAMPLE_ALERT["rule"], "level": level}}
    heading = teams.build_teams_payload(alert, None)["attachments"][0]["content"]["body"][0]
    assert heading["color"] == color


def test_minimal_alert_has_no_agent_and_no_log(teams: Any) -> None:
    alert = {"rule": {"id": "1002", "level": "oops"}, "location": "journald"}
    body = teams.build_teams_payload(alert, None)["attachments"][0]["content"]["body"]
    assert body == [
        {
            "type": "TextBlock",
            "text": "N/A",
            "size": "Medium",
            "weight": "Bolder",
            "color": "good",
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Rule", "value": "1002 (level 0)"},
                {"title": "Location", "value": "journald"},
                {"title": "Time", "value": ""},
            ],
        },
    ]


def test_a_long_log_is_cut(teams: Any) -> None:
    alert = {**SAMPLE_ALERT, "full_log": "x" * 50_000}
    log = teams.build_teams_payload(alert, None)["attachments"][0]["content"]["body"][2]
    assert log["text"] == "x" * (teams.MAX_LOG_CHARS - 1) + "…"


@dataclass
class Webhook:
    """A local stand-in for the Teams webhook, answering ``status``."""

    base_url: str = ""
    status: int = 202
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)

    @property
    def hook_url(self) -> str:
        return f"{self.base_url}{HOOK_PATH}?{HOOK_QUERY}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.path_qs, request.content_type, body))
        # A failing answer that echoes the request URL, as some proxies do.
        text = "accepted" if self.status < 300 else f"rejected {request.url}"
        return web.Response(status=self.status, text=text)


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post(HOOK_PATH, hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield hook
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


async def test_send_posts_the_card_to_the_webhook(
    teams: Any, webhook: Webhook, context: IntegrationContext
) -> None:
    integration = teams.TeamsIntegration(_block(hook_url=Secret(webhook.hook_url)), context)

    await integration.send(SAMPLE_ALERT)

    assert len(webhook.requests) == 1
    path_qs, content_type, body = webhook.requests[0]
    assert path_qs == f"{HOOK_PATH}?{HOOK_QUERY}"
    assert content_type == "application/json"
    assert orjson.loads(body) == EXPECTED_PAYLOAD


@pytest.mark.parametrize(
    ("status", "error_type"), [(400, Permanent), (429, RateLimited), (500, Transient)]
)
async def test_a_refused_post_raises_a_typed_error_without_the_webhook_secret(
    teams: Any,
    webhook: Webhook,
    context: IntegrationContext,
    status: int,
    error_type: type[DeliveryError],
) -> None:
    webhook.status = status
    integration = teams.TeamsIntegration(_block(hook_url=Secret(webhook.hook_url)), context)

    with pytest.raises(error_type) as caught:
        await integration.send(SAMPLE_ALERT)

    assert caught.value.status == status
    message = str(caught.value)
    for leak in ("s3cr3t-signature", "abc123", HOOK_PATH):
        assert leak not in message


async def test_send_without_a_hook_url_is_permanent(
    teams: Any, context: IntegrationContext
) -> None:
    with pytest.raises(Permanent, match="no <hook_url>"):
        await teams.TeamsIntegration(_block(), context).send(SAMPLE_ALERT)
