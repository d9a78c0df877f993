"""End-to-end: what the running daemon reports about itself (/health, status)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    append_alerts,
    free_port,
    make_alert,
    slack_block,
    until,
    write_config,
)

HOOK = "/services/T0/B0/secret-token-health"


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


BAD_HOOK = "/services/T0/B1/secret-token-refused"


def status(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_status_of_a_running_then_stopped_daemon(home: Path, receiver: Receiver) -> None:
    receiver.script[BAD_HOOK] = [(400, {})]
    port = await free_port()
    write_config(home, slack_block(receiver.url(HOOK)) + slack_block(receiver.url(BAD_HOOK)))
    with_metrics(home, port)
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts_file(home), range(3))
        await until(lambda: len(receiver.received.get(HOOK, [])) == 3, 15, "3 alerts", daemon)
        await until(lambda: receiver.attempts.get(BAD_HOOK, 0) == 3, 15, "3 refusals", daemon)
        await until(lambda: "dead letter" in daemon.log(), 15, "dead letters", daemon)
        # The checkpoint is saved a moment after the last settlement: on a loaded
        # machine the first look may still see the lag those saves remove.
        deadline = time.monotonic() + 15
        while True:
            running = await asyncio.to_thread(status, home)
            if "Lag         0 bytes" in running.stdout or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        running_json = await asyncio.to_thread(status, home, "--json")
    finally:
        assert await daemon.stop() == 0
    stopped = await asyncio.to_thread(status, home)

    assert running.returncode == 0, running.stdout + running.stderr
    lines = running.stdout.splitlines()
    assert lines[0].startswith(f"Daemon      running on 127.0.0.1:{port}, up ")
    assert "Lag         0 bytes, 0 alerts" in running.stdout
    table = [line.split() for line in lines[lines.index("") + 1 :] if line]
    assert table[0] == [
        "INTEGRATION", "DELIVERED", "FAILED", "PARKED", "DEAD", "CIRCUIT", "RL", "WAITS", "CACHE"
    ]  # fmt: skip
    assert table[1] == ["slack#0", "3", "0", "0", "0", "closed", "0", "-"]
    assert table[2] == ["slack#1", "0", "3", "0", "3", "closed", "0", "-"]
    assert "Last errors" in running.stdout
    assert "slack#1" in running.stdout.split("Last errors", 1)[1]
    assert "HTTP 400" in running.stdout.split("Last errors", 1)[1]

    document = json.loads(running_json.stdout)
    assert document["daemon"]["status"] == "running"
    assert document["lag"] == {"bytes": 0, "alerts": 0, "rotated": False}
    assert document["integrations"]["slack#1"]["dead_letters"] == 3
    assert document["integrations"]["slack#0"]["delivered_total"] == 3

    assert stopped.returncode == 1
    # As docs/commands.md shows it: the reason, not "([Errno 111] Connection refused)".
    assert stopped.stdout.startswith(
        f"Daemon      NOT RUNNING: no answer on 127.0.0.1:{port} (Connection refused)\n"
    )
    assert "(the figures below come from the state store only)" in stopped.stdout
    stopped_screen = stopped.stdout.split("\nLast errors\n", 1)[0]
    stopped_table = [line.split() for line in stopped_screen.splitlines() if "slack#" in line]
    assert stopped_table == [
        ["slack#0", "-", "-", "0", "0", "-", "-", "-"],
        ["slack#1", "-", "-", "0", "3", "-", "-", "-"],
    ]
    stopped_errors = stopped.stdout.split("\nLast errors\n", 1)[1].splitlines()
    assert [line.split()[0] for line in stopped_errors] == ["slack#1"]
    assert "HTTP 400" in stopped_errors[0], "from the newest dead letter in the store"
    for output in (running.stdout, running_json.stdout, stopped.stdout):
        assert "secret-token" not in output


async def test_status_of_a_hung_daemon_says_it_does_not_answer(
    home: Path, receiver: Receiver
) -> None:
    # A daemon stopped by SIGSTOP (or with its event loop blocked) was shown
    # as NOT RUNNING, sending an admin to start a second one.
    port = await free_port()
    write_config(home, slack_block(receiver.url(HOOK)))
    with_metrics(home, port)
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        os.kill(daemon.pid(), signal.SIGSTOP)
        try:
            hung = await asyncio.to_thread(status, home)
            hung_json = await asyncio.to_thread(status, home, "--json")
        finally:
            os.kill(daemon.pid(), signal.SIGCONT)
        awake = await asyncio.to_thread(status, home)
    finally:
        assert await daemon.stop() == 0

    assert hung.returncode == 1
    assert hung.stdout.startswith(
        f"Daemon      NOT ANSWERING: no answer on 127.0.0.1:{port} within 3 s:"
        " the daemon may be hung or overloaded\n"
    ), hung.stdout
    assert json.loads(hung_json.stdout)["daemon"]["hung"] is True
    assert awake.returncode == 0, awake.stdout
    assert awake.stdout.startswith(f"Daemon      running on 127.0.0.1:{port}")


def test_status_with_an_unusable_integrator_toml_names_its_errors(home: Path) -> None:
    # It said "metrics_address is not set in integrator.toml", for a file
    # that set it and could not be read, and kept quiet about the error.
    write_config(home, slack_block("http://127.0.0.1:9/hook"))
    (home / "etc" / "integrator.toml").write_text(
        'metrics_address = "127.0.0.1:9758"\nstate_dir = 5\n'
    )
    result = status(home)
    assert result.returncode == 1
    assert result.stdout.startswith(
        "Daemon      UNKNOWN: etc/integrator.toml cannot be used (see the errors on stderr):"
        " the daemon's metrics_address is not known\n"
    ), result.stdout
    assert "wazuh-integrator: status: etc/integrator.toml:2: state_dir: 5 is not" in result.stderr
    assert "the figures may not be the daemon's" in result.stderr
    document = json.loads(status(home, "--json").stdout)
    assert document["settings_errors"][0].startswith("etc/integrator.toml:2: state_dir:")


async def test_status_counts_the_lag_in_bytes_and_alerts(home: Path, receiver: Receiver) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    append_alerts(alerts_file(home), range(2))
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait() == 0
    size = alerts_file(home).stat().st_size
    append_alerts(alerts_file(home), range(2, 7))
    behind = alerts_file(home).stat().st_size - size

    result = await asyncio.to_thread(status, home, "--json")

    document = json.loads(result.stdout)
    assert document["lag"] == {"bytes": behind, "alerts": 5, "rotated": False}
    assert document["checkpoint"]["offset"] == size
    assert document["daemon"]["running"] is None
    assert result.returncode == 1


@pytest.mark.long
@pytest.mark.timeout(240)
async def test_health_is_degraded_while_the_reader_is_stuck(home: Path, receiver: Receiver) -> None:
    # alerts.json ends in half a line, as when Wazuh stopped in the middle of
    # writing one: the reader waits for its end with bytes left unread.
    port = await free_port()
    write_config(home, slack_block(receiver.url(HOOK)))
    with_metrics(home, port)
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts, range(3))
        rest = json.dumps(make_alert(3)).encode()
        with alerts.open("ab") as handle:
            handle.write(rest[:40])
        await until(lambda: len(receiver.received.get(HOOK, [])) == 3, 15, "3 alerts", daemon)
        assert (await get_health(port))[1]["status"] == "running"
        started = time.monotonic()
        stuck: dict[str, Any] = {}
        # /health calls the reader stuck after 60 s without progress (READER_STUCK_S).
        while time.monotonic() - started < 120:
            stuck_status, stuck = await get_health(port)
            if stuck["status"] != "running":
                break
            await asyncio.sleep(1)
        waited_s = time.monotonic() - started
        # The line is finished: the reader moves on, and is not stuck any more.
        with alerts.open("ab") as handle:
            handle.write(rest[40:] + b"\n")
        await until(lambda: len(receiver.received.get(HOOK, [])) == 4, 15, "4 alerts", daemon)
        moving = (await get_health(port))[1]
    finally:
        assert await daemon.stop() == 0
    assert stuck_status == 200, "a stuck reader is still alive: a restart would not help"
    assert stuck["status"] == "degraded", stuck
    [problem] = stuck["problems"]
    assert problem.startswith("reader: no progress for ")
    assert problem.endswith(" s with unread alerts")
    assert 60 <= int(problem.split()[4]) <= 60 + waited_s
    assert (moving["status"], moving["problems"]) == ("running", [])
