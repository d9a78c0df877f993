"""``check-config --environment`` and ``run``'s start-up checks, as the installed command."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from tests.config.wazuh_home import WazuhHome, integration_block, make_home, ossec_conf, run_command

TOKEN = "T0/B0/env-cli-secret"


@pytest.fixture
async def receiver_port() -> AsyncIterator[int]:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    home = make_home(tmp_path / "ossec")
    (home.root / "logs" / "alerts" / "alerts.json").write_text("")
    return home


async def test_everything_reachable_is_ok(home: WazuhHome, receiver_port: int) -> None:
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url=f"http://127.0.0.1:{receiver_port}/s/{TOKEN}"),
            integration_block("shuffle", hook_url=f"http://127.0.0.1:{receiver_port}/h/{TOKEN}"),
        )
    )

    result = await asyncio.to_thread(run_command, "check-config", "--environment", home=home.root)

    assert result.returncode == 0, result.stdout + result.stderr
    environment = result.stdout.split("\nEnvironment (", 1)[1]
    assert environment.startswith("4 checks)\n")
    assert f"  OK    slack#0 receiver http://127.0.0.1:{receiver_port}: resolves" in environment
    assert f"  OK    shuffle#1 receiver http://127.0.0.1:{receiver_port}: resolves" in environment
    assert "  OK    state directory " in environment
    assert result.stdout.endswith("\nEnvironment: OK.\n")
    assert "env-cli-secret" not in result.stdout


async def test_an_unreachable_receiver_and_a_missing_socket_fail(home: WazuhHome) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url=f"http://127.0.0.1:{port}/s/{TOKEN}"),
            integration_block("virustotal", api_key="vt-key", hook_url=f"http://127.0.0.1:{port}"),
        )
    )

    result = await asyncio.to_thread(run_command, "check-config", "--environment", home=home.root)

    assert result.returncode == 1
    assert "Result: OK: 2 of 2 integrations will run" in result.stdout
    assert (
        f"  FAIL  slack#0 receiver http://127.0.0.1:{port}: cannot connect: Connection refused\n"
        in result.stdout
    )
    socket_line = next(line for line in result.stdout.splitlines() if "analysisd socket" in line)
    assert socket_line.startswith("  FAIL  analysisd socket ")
    assert "(needed by virustotal#1)" in socket_line
    assert result.stdout.endswith("\nEnvironment: NOT OK: 3 checks failed.\n")
    assert "env-cli-secret" not in result.stdout
    assert "vt-key" not in result.stdout


def test_without_the_option_nothing_is_contacted(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("slack", hook_url="http://127.0.0.1:1/x")))

    result = run_command("check-config", home=home.root)

    assert result.returncode == 0
    assert "Environment" not in result.stdout


def test_run_refuses_to_start_with_a_state_dir_it_cannot_create(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("slack", hook_url="http://127.0.0.1:1/x")))
    home.write_settings('state_dir = "/proc/wazuh-integrator-state"\n')

    result = run_command("run", "--once", home=home.root)

    assert result.returncode == 78  # EX_CONFIG: the unit does not restart in a loop
    assert (
        "wazuh-integratord: ERROR: state directory /proc/wazuh-integrator-state: does not exist,"
        f" and {_user()} cannot create it in /proc: "
    ) in result.stderr
    assert "Traceback" not in result.stderr


def _user() -> str:
    import os
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
