"""``wazuh-integrator test --send``: one alert, the real integrations, a real local receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.config.wazuh_home import WazuhHome, integration_block, make_home, ossec_conf, run_command

from wazuh_integrator import __version__

TOKEN = "T0/B0/send-secret-token"


@dataclass
class Receiver:
    port: int = 0
    requests: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, body, request.headers.get("User-Agent", "")))
        if request.path.startswith("/refuse"):
            # Answers that echo the URL exist (Slack quotes the webhook): the token must not show.
            return web.Response(status=403, text=f"invalid_token for {request.path}")
        return web.Response(text='{"ok": true}')


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    return make_home(tmp_path / "ossec")


async def send(home: WazuhHome, *args: str, stdin: str | None = None) -> Any:
    return await asyncio.to_thread(
        run_command, "test", "--send", *args, home=home.root, stdin=stdin
    )


async def test_the_sample_alert_reaches_the_receiver(home: WazuhHome, receiver: Receiver) -> None:
    home.write_config(
        ossec_conf(integration_block("slack", hook_url=receiver.url(f"/ok/{TOKEN}"), level="12"))
    )

    result = await send(home)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "Sending the built-in sample alert.\n"
    [(path, body, agent)] = receiver.requests
    assert path == f"/ok/{TOKEN}"
    assert "test --send" in body["attachments"][0]["title"]
    assert agent == f"wazuh-integrator/{__version__}"
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#0   slack  DELIVERED in ")
    assert lines[1] == "      (sent although its filters would stop this alert: level 10 < 12)"
    assert lines[2] == f"      POST http://127.0.0.1:{receiver.port}/<redacted> -> HTTP 200"
    assert lines[3] == '        {"ok": true}'
    assert result.stdout.endswith("\n1 of 1 integration(s) delivered the alert.\n")
    assert TOKEN not in result.stdout + result.stderr


async def test_a_refusal_is_shown_redacted_and_fails(home: WazuhHome, receiver: Receiver) -> None:
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url=receiver.url(f"/ok/{TOKEN}")),
            integration_block("shuffle", hook_url=receiver.url(f"/refuse/{TOKEN}")),
        )
    )
    alert = {"id": "1.5", "rule": {"id": "5712", "level": 10, "groups": ["sshd"]}}

    result = await send(home, "-", stdin=json.dumps(alert) + "\n")

    assert result.returncode == 1
    assert result.stderr == "Sending the alert of <stdin>:1.\n"
    assert [body["id"] for _, body, _ in receiver.requests if "id" in body] == ["1.5"]
    shuffle = result.stdout.split("#1   shuffle  ", 1)[1]
    assert shuffle.startswith("FAILED (Permanent): HTTP 403")
    assert f"POST http://127.0.0.1:{receiver.port}/<redacted> -> HTTP 403" in shuffle
    assert "\n        invalid_token for <secret>\n" in shuffle
    assert result.stdout.endswith("\n1 of 2 integration(s) delivered the alert.\n")
    assert "send-secret-token" not in result.stdout + result.stderr


async def test_only_the_named_integration_and_a_skip_is_not_a_success(
    home: WazuhHome, receiver: Receiver
) -> None:
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url=receiver.url(f"/ok/{TOKEN}")),
            integration_block("shuffle", hook_url=receiver.url(f"/ok/{TOKEN}")),
        )
    )
    skipped = {"id": "1.6", "rule": {"id": "5710", "level": 10, "groups": ["sshd"]}}

    result = await send(home, "--integration", "shuffle", "-", stdin=json.dumps(skipped))

    assert result.returncode == 1
    assert receiver.requests == []
    assert result.stdout.startswith(
        "#1   shuffle  NOT SENT: skipped by the integration: rule 5710 is in Shuffle's skip list"
    )
    assert "slack" not in result.stdout


async def test_an_unknown_integration_sends_nothing(home: WazuhHome, receiver: Receiver) -> None:
    home.write_config(ossec_conf(integration_block("slack", hook_url=receiver.url("/ok/x"))))

    result = await send(home, "--integration", "nosuch")

    assert result.returncode == 1
    assert "error: no enabled integration matches nosuch: nothing sent" in result.stderr
    assert receiver.requests == []


async def test_an_unreachable_receiver_fails(home: WazuhHome) -> None:
    home.write_config(
        ossec_conf(integration_block("slack", hook_url=f"http://127.0.0.1:1/{TOKEN}"))
    )

    result = await send(home)

    assert result.returncode == 1
    assert "#0   slack  FAILED (Transient): " in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def test_integration_without_send_is_refused(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("slack", hook_url="http://127.0.0.1:1/x")))

    result = run_command("test", "--integration", "slack", home=home.root, stdin="")

    assert result.returncode == 1
    assert "--integration goes with --send" in result.stderr
