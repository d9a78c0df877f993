"""End-to-end: the webhook, Teams, Telegram, Discord and Jira outputs through
the real ``wazuh-integrator run --once``, against a local stand-in for each
service: delivered (after a retry), parked, dead-lettered, and dead-lettered
with the reason when their template fails on an alert."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from tests.e2e.harness import Daemon, append_alerts

from wazuh_integrator.store import StateStore

SECRET = "e2e-secret-never-logged"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    """A local HTTP server answering each request with the next status of
    ``statuses`` (the last one repeating) and recording every request."""

    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Request(request.method, request.path, dict(request.headers), body))
        status = self.statuses[min(len(self.requests) - 1, len(self.statuses) - 1)]
        return web.Response(status=status, text="ok" if status < 300 else "failed")

    def delivered(self) -> list[Request]:
        ok = [s < 300 for s in self.statuses]
        return [r for n, r in enumerate(self.requests) if ok[min(n, len(ok) - 1)]]


# name -> (the block's elements for a stand-in at {base}, the path it posts to)
OUTPUTS: dict[str, tuple[str, str]] = {
    "webhook": (
        f"<hook_url>{{base}}/in/{SECRET}</hook_url><api_key>{SECRET}</api_key>",
        f"/in/{SECRET}",
    ),
    "teams": (
        f"<hook_url>{{base}}/workflows/abc/invoke?sig={SECRET}</hook_url>",
        "/workflows/abc/invoke",
    ),
    "telegram": (
        f"<hook_url>{{base}}</hook_url><api_key>1:{SECRET}</api_key>"
        '<options>{{"chat_id": -10042}}</options>',
        f"/bot1:{SECRET}/sendMessage",
    ),
    "discord": (
        f"<hook_url>{{base}}/api/webhooks/1/{SECRET}</hook_url>",
        f"/api/webhooks/1/{SECRET}",
    ),
    "jira": (
        f"<hook_url>{{base}}</hook_url><api_key>{SECRET}</api_key>"
        '<options>{{"project": "SEC", "user": "bot@example.com"}}</options>',
        "/rest/api/2/issue",
    ),
}


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    server = StandIn()
    await server.start()
    yield server
    await server.stop()


def configure(home: Path, name: str, base_url: str, extra: str = "", settings: str = "") -> None:
    elements = OUTPUTS[name][0].format(base=base_url)
    (home / "etc" / "ossec.conf").write_text(
        f"<ossec_config><integration><name>{name}</name>{elements}{extra}"
        "<alert_format>json</alert_format></integration></ossec_config>\n"
    )
    (home / "etc" / "integrator.toml").write_text(
        f'[integrations.{name}]\ninitial_backoff = "0.05s"\nmax_backoff = "0.2s"\n{settings}'
    )


async def run_once(home: Path, expect_status: int = 0) -> Daemon:
    """``run --once`` on one alert; it exits 3 when the alert is left parked,
    4 when it was dead-lettered (docs/commands.md)."""
    append_alerts(home / "logs" / "alerts" / "alerts.json", range(1))
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait(60) == expect_status, daemon.log()
    assert SECRET not in daemon.log()
    return daemon


def dead_letters(home: Path) -> list[dict[str, object]]:
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "wazuh_integrator",
            "--home",
            str(home),
            "dead-letter",
            "list",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert SECRET not in listed.stdout + listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def stored(home: Path) -> tuple[int, int]:
    """(parked, dead letters) in the daemon's state store."""
    store = StateStore(home / "var" / "integrator" / "state.db")
    try:
        return store.count_parked(), store.count_dead_letters()
    finally:
        store.close()


@pytest.mark.parametrize("name", list(OUTPUTS))
async def test_delivered_after_a_failed_attempt(home: Path, stand_in: StandIn, name: str) -> None:
    stand_in.statuses = [500, 200]
    configure(home, name, stand_in.base_url)
    await run_once(home)
    assert len(stand_in.requests) == 2, "one failure, one retry"
    [request] = stand_in.delivered()
    assert request.path == OUTPUTS[name][1]
    assert b"test alert 0" in request.body
    assert stored(home) == (0, 0)


@pytest.mark.parametrize("name", list(OUTPUTS))
async def test_parked_when_the_service_keeps_failing(
    home: Path, stand_in: StandIn, name: str
) -> None:
    stand_in.statuses = [503]
    configure(home, name, stand_in.base_url, "<retries>1</retries>")
    await run_once(home, expect_status=3)
    assert len(stand_in.requests) == 2, "the attempt and its one quick retry"
    assert stored(home) == (1, 0)


@pytest.mark.parametrize("name", list(OUTPUTS))
async def test_dead_lettered_when_the_service_refuses(
    home: Path, stand_in: StandIn, name: str
) -> None:
    stand_in.statuses = [400]
    configure(home, name, stand_in.base_url)
    await run_once(home, expect_status=4)
    [letter] = dead_letters(home)
    assert letter["alert_id"] == "1764262800.0"
    assert letter["status"] == 400


@pytest.mark.parametrize("name", ["webhook", "telegram"])
async def test_a_template_failing_on_the_alert_dead_letters_it_with_the_reason(
    home: Path, stand_in: StandIn, name: str
) -> None:
    (home / "etc" / "templates").mkdir()
    (home / "etc" / "templates" / "bad.j2").write_text(
        '{"id": "{{ alert.id }}",\n "x": "{{ alert.data.srcip }}"}'
    )
    configure(home, name, stand_in.base_url, settings='template = "etc/templates/bad.j2"\n')
    daemon = await run_once(home, expect_status=4)
    assert stand_in.requests == []
    [letter] = dead_letters(home)
    assert letter["last_error"] == "template etc/templates/bad.j2:2: alert.data is missing"
    assert "alert.data is missing" in daemon.log()
