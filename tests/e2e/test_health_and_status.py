"""End-to-end: what the running daemon reports about itself (/health, status)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.e2e.harness import (
    Daemon,
    Receiver,
    append_alerts,
    short_home,
    slack_block,
    write_config,
)

HOOK = "/services/T0/B0/secret-token-health"


@pytest.fixture
def home() -> Iterator[Path]:
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def free_port() -> int:
    probe = Receiver()
    await probe.start()
    port = probe.port
    await probe.stop()
    return port


def alerts_file(home: Path) -> Path:
    return home / "logs" / "alerts" / "alerts.json"


def with_metrics(home: Path, port: int) -> None:
    settings = home / "etc" / "integrator.toml"
    settings.write_text(f'metrics_address = "127.0.0.1:{port}"\n' + settings.read_text())


async def get_health(port: int) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/health") as answer,
    ):
        return answer.status, await answer.json()


async def test_health_is_degraded_while_a_circuit_is_open(home: Path, receiver: Receiver) -> None:
    receiver.script[HOOK] = [(500, {})]
    port = await free_port()
    write_config(home, slack_block(receiver.url(HOOK)))
    with_metrics(home, port)
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        assert (await get_health(port))[1]["status"] == "running"
        append_alerts(alerts_file(home), range(8))
        await daemon.wait_for_log("failures in a row", timeout_s=30)
        status, health = await get_health(port)
        # The receiver comes back: the next probe closes the circuit.
        receiver.script[HOOK] = [(200, {})]
    finally:
        assert await daemon.stop() == 0
    assert status == 200, "degraded is still alive: a restart would not help"
    assert health["status"] == "degraded"
    assert health["problems"] == ["slack#0: circuit open, the receiver keeps failing"]
    assert health["integrations"]["slack#0"]["circuit_open"] == 1
    assert "secret-token-health" not in str(health)


async def test_the_metrics_address_is_logged_as_host_and_port(
    home: Path, receiver: Receiver
) -> None:
    port = await free_port()
    write_config(home, slack_block(receiver.url(HOOK)))
    with_metrics(home, port)
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log(f"Metrics and health served on 127.0.0.1:{port}.")
    finally:
        assert await daemon.stop() == 0


async def test_a_busy_metrics_port_names_the_setting(home: Path, receiver: Receiver) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    with_metrics(home, receiver.port)  # the receiver holds that port
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    status = await daemon.wait(30)
    assert status == 1
    assert (
        f"metrics_address 127.0.0.1:{receiver.port}: cannot listen there: Address already in use"
        in daemon.log()
    )
    assert "error::" not in daemon.log()
