"""End-to-end: the real ``wazuh-integrator run`` against real local receivers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    append_alerts,
    slack_block,
    until,
    write_config,
)

HOOK = "/services/T0/B0/secret-token-e2e"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_an_appended_alert_arrives(home: Path, receiver: Receiver) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Enabling integration for: 'slack'.")
        await daemon.wait_for_log("Reading")
        append_alerts(alerts_file(home), range(3))
        await until(lambda: len(receiver.received.get(HOOK, [])) == 3, 15, "3 alerts", daemon)
    finally:
        assert await daemon.stop() == 0
    # Several sends run at once, so arrival order is not guaranteed; each arrives once.
    assert sorted(receiver.ids(HOOK)) == ["1764262800.0", "1764262800.1", "1764262800.2"]
    assert "secret-token-e2e" not in daemon.log()


@pytest.mark.parametrize(("settings", "inotify"), [("", True), ('follow = "poll"\n', False)])
async def test_follow_chooses_inotify_or_the_poll(
    home: Path, receiver: Receiver, settings: str, inotify: bool
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)), settings)
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts_file(home), range(3))
        await until(lambda: len(receiver.received.get(HOOK, [])) == 3, 15, "3 alerts", daemon)
    finally:
        assert await daemon.stop() == 0
    assert (f"Following {alerts_file(home)} with inotify." in daemon.log()) is inotify


async def test_once_delivers_the_file_and_exits(home: Path, receiver: Receiver) -> None:
    write_config(home, slack_block(receiver.url(HOOK), "<level>7</level>"))
    append_alerts(alerts_file(home), range(0, 5), level=3)
    append_alerts(alerts_file(home), range(5, 10), level=12)
    with alerts_file(home).open("ab") as handle:
        handle.write(b"not json at all\n")
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait() == 0
    assert sorted(receiver.ids(HOOK)) == [f"1764262800.{n}" for n in range(5, 10)]
    assert "not a JSON object" in daemon.log()
    assert "run --once: 11 lines read, 1 invalid." in daemon.log()
    assert "slack#0: 5 delivered, 0 parked, 0 dead-lettered; 0 still parked" in daemon.log()


async def test_once_counts_an_oversize_line_once(home: Path, receiver: Receiver) -> None:
    """An oversize line is in the block of lines read already: the summary
    added it a second time ("7 lines read" for 5 lines, 2 of them too long)."""
    write_config(home, slack_block(receiver.url(HOOK)), "max_line_bytes = 1024\n")
    append_alerts(alerts_file(home), range(3))
    with alerts_file(home).open("ab") as handle:
        handle.write(b'{"padding": "' + b"x" * 2000 + b'"}\n')
        handle.write(b'{"padding": "' + b"y" * 2000 + b'"}\n')
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait() == 0
    assert "run --once: 5 lines read, 2 invalid." in daemon.log()


async def test_once_with_the_receiver_down_says_what_is_parked_and_exits_3(home: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    port = receiver.port
    await receiver.stop()  # nothing listens there now: connection refused
    write_config(home, slack_block(f"http://127.0.0.1:{port}{HOOK}"))
    append_alerts(alerts_file(home), range(300))
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait() == 3
    log = daemon.log()
    assert "run --once: 300 lines read, 0 invalid." in log
    assert "300 still parked in the store" in log
    assert "Exit status 3: 300 deliveries are still parked" in log


async def test_once_counts_what_waits_for_a_block_removed_from_the_configuration(
    home: Path, receiver: Receiver
) -> None:
    # Rows parked for slack#0 wait in the store once the block is removed;
    # a --once run said "0 still parked" of the blocks left and exited 0.
    down = Receiver()
    await down.start()
    port = down.port
    await down.stop()
    write_config(home, slack_block(f"http://127.0.0.1:{port}{HOOK}"))
    append_alerts(alerts_file(home), range(20))
    first = Daemon(home, ["--once"])
    await first.start()
    assert await first.wait() == 3
    hook = receiver.url("/shuffle")
    shuffle = f"<integration><name>shuffle</name><hook_url>{hook}</hook_url></integration>"
    write_config(home, shuffle)
    append_alerts(alerts_file(home), range(20, 25))

    second = Daemon(home, ["--once"])
    await second.start()
    assert await second.wait() == 3, second.log()[-2000:]
    assert len(receiver.received["/shuffle"]) == 5
    log = second.log()
    assert "shuffle#0: 5 delivered, 0 parked, 0 dead-lettered; 0 still parked" in log
    assert (
        "slack#0: not in the configuration; 20 still parked in the store,"
        " waiting for a block with that key"
    ) in log
    assert "Exit status 3: 20 deliveries are still parked; 20 of them wait for a block" in log


async def test_a_receiver_down_for_a_while_gets_every_alert(home: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    port = receiver.port
    await receiver.stop()  # nothing listens there now: connection refused
    write_config(home, slack_block(f"http://127.0.0.1:{port}{HOOK}"))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts_file(home), range(20))
        await asyncio.sleep(1.5)
        await receiver.start(port)
        await until(lambda: len(set(receiver.ids(HOOK))) == 20, 30, "20 alerts", daemon)
    finally:
        await daemon.stop()
        await receiver.stop()
    assert sorted(set(receiver.ids(HOOK))) == sorted(f"1764262800.{n}" for n in range(20))


async def test_429_with_retry_after_is_waited_out(home: Path, receiver: Receiver) -> None:
    receiver.script[HOOK] = [(429, {"Retry-After": "2"}), (200, {})]
    write_config(home, slack_block(receiver.url(HOOK)))
    append_alerts(alerts_file(home), range(1))
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait() == 0
    assert receiver.ids(HOOK) == ["1764262800.0"]
    assert receiver.attempts[HOOK] == 2


async def test_a_400_lands_in_the_dead_letters(home: Path, receiver: Receiver) -> None:
    receiver.script[HOOK] = [(400, {})]
    write_config(home, slack_block(receiver.url(HOOK)))
    append_alerts(alerts_file(home), range(2))
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait() == 4  # given up: a person is needed
    assert "slack#0: 0 delivered, 0 parked, 2 dead-lettered" in daemon.log()
    listed = cli(home, "dead-letter", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(letter["alert_id"] for letter in letters) == ["1764262800.0", "1764262800.1"]
    assert all(letter["status"] == 400 for letter in letters)
    assert all("400" in letter["last_error"] for letter in letters)
    assert "secret-token-e2e" not in listed.stdout + daemon.log()


async def test_sigkill_then_restart_loses_nothing(home: Path, receiver: Receiver) -> None:
    receiver.delay_s[HOOK] = 0.01
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home, ["--from-start"])
    await daemon.start()
    await daemon.wait_for_log("Reading")
    append_alerts(alerts_file(home), range(300))
    await until(lambda: len(receiver.received.get(HOOK, [])) >= 50, 20, "50 alerts", daemon)
    await daemon.stop(signal.SIGKILL)
    delivered_before = len(receiver.received.get(HOOK, []))
    assert delivered_before < 300, "the kill must land mid-stream for this test to mean anything"
    restarted = Daemon(home, ["--once"])
    await restarted.start()
    assert await restarted.wait() == 0
    assert set(receiver.ids(HOOK)) == {f"1764262800.{n}" for n in range(300)}


async def test_rotation_while_streaming_loses_nothing(home: Path, receiver: Receiver) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts, range(0, 50))
        # Wazuh rotates by renaming the day's file and creating a new alerts.json.
        rotated = alerts.with_name("ossec-alerts-27.json")
        os.rename(alerts, rotated)
        append_alerts(rotated, range(50, 60))  # late writes to the old file still count
        append_alerts(alerts, range(60, 100))
        await until(lambda: len(set(receiver.ids(HOOK))) == 100, 20, "100 alerts", daemon)
    finally:
        assert await daemon.stop() == 0
    assert sorted(set(receiver.ids(HOOK))) == sorted(f"1764262800.{n}" for n in range(100))


async def test_a_slow_receiver_does_not_slow_another(home: Path, receiver: Receiver) -> None:
    slow, fast = "/slow/T0/B0/x", "/fast/T0/B0/y"
    receiver.delay_s[slow] = 1.0
    write_config(home, slack_block(receiver.url(slow)) + slack_block(receiver.url(fast)))
    append_alerts(alerts_file(home), range(200))
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    await until(lambda: len(receiver.received.get(fast, [])) == 200, 20, "fast receiver", daemon)
    # All 200 reached the fast receiver while the slow one, at one second per
    # answer and a handful of workers, had answered only a few.
    assert len(receiver.received.get(slow, [])) < 100
    await daemon.stop()


async def test_replayed_dead_letters_are_delivered(home: Path, receiver: Receiver) -> None:
    receiver.script[HOOK] = [(400, {}), (400, {}), (200, {})]
    write_config(home, slack_block(receiver.url(HOOK)))
    append_alerts(alerts_file(home), range(2))
    first = Daemon(home, ["--once"])
    await first.start()
    assert await first.wait() == 4
    assert receiver.received.get(HOOK) is None

    replayed = cli(home, "dead-letter", "replay", "--all")
    assert replayed.returncode == 0, replayed.stderr
    assert "2 dead letter(s) queued" in replayed.stdout

    second = Daemon(home, ["--once"])
    await second.start()
    assert await second.wait() == 0
    assert sorted(receiver.ids(HOOK)) == ["1764262800.0", "1764262800.1"]
    listed = cli(home, "dead-letter", "list", "--json")
    assert listed.stdout == ""


async def test_sighup_applies_a_new_configuration_and_refuses_a_bad_one(
    home: Path, receiver: Receiver
) -> None:
    first, second = "/first/T0/B0/a", "/second/T0/B0/b"
    write_config(home, slack_block(receiver.url(first)))
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts, range(0, 2))
        await until(lambda: len(receiver.received.get(first, [])) == 2, 15, "first", daemon)

        write_config(home, slack_block(receiver.url(second)))
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        await daemon.wait_for_log("Disabling integration 'slack'")
        append_alerts(alerts, range(2, 4))
        await until(lambda: len(receiver.received.get(second, [])) == 2, 15, "second", daemon)

        (home / "etc" / "ossec.conf").write_text(
            "<ossec_config><integration><name>slack</name><level>high</level>"
            "</integration></ossec_config>"
        )
        daemon.process.send_signal(signal.SIGHUP)
        await daemon.wait_for_log("New configuration refused")
        append_alerts(alerts, range(4, 5))
        await until(lambda: len(receiver.received.get(second, [])) == 3, 15, "still second", daemon)
    finally:
        assert await daemon.stop() == 0
    assert sorted(receiver.ids(first)) == ["1764262800.0", "1764262800.1"]
    assert sorted(receiver.ids(second)) == ["1764262800.2", "1764262800.3", "1764262800.4"]
    assert "'high' is not a number" in daemon.log()


async def test_metrics_and_health_endpoints(home: Path, receiver: Receiver) -> None:
    probe = Receiver()
    await probe.start()
    metrics_port = probe.port
    await probe.stop()
    write_config(home, slack_block(receiver.url(HOOK)))
    settings = home / "etc" / "integrator.toml"
    settings.write_text(f'metrics_address = "127.0.0.1:{metrics_port}"\n' + settings.read_text())
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home, ["--from-start"])
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts_file(home), range(3))
        await until(lambda: len(receiver.received.get(HOOK, [])) == 3, 15, "3 alerts", daemon)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as answer:
                assert answer.status == 200
                metrics = await answer.text()
            async with session.get(f"http://127.0.0.1:{metrics_port}/health") as answer:
                health = await answer.json()
    finally:
        assert await daemon.stop() == 0
    series = 'wazuh_integrator_deliveries_total{{integration="slack#0",outcome="{}"}} {}'
    assert series.format("delivered", 3) in metrics
    assert series.format("dead_lettered", 0) in metrics, "every label set reads zero from start"
    assert "wazuh_integrator_alerts_read_total 3" in metrics
    assert "wazuh_integrator_up 1" in metrics
    assert "secret-token-e2e" not in metrics
    assert health["status"] == "running"
    assert health["integrations"]["slack#0"]["delivered_total"] == 3


async def test_a_restart_finishes_the_file_rotated_while_it_was_down(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts = alerts_file(home)
    day_file = home / "logs" / "alerts" / "2026" / "Nov" / "ossec-alerts-27.json"
    day_file.parent.mkdir(parents=True)
    append_alerts(day_file, range(0, 10))
    os.link(day_file, alerts)  # alerts.json is a hard link to the day's file, as in Wazuh
    first = Daemon(home, ["--once"])
    await first.start()
    assert await first.wait() == 0
    assert len(receiver.received[HOOK]) == 10

    # While the daemon is down: more alerts for the 27th, then midnight.
    append_alerts(day_file, range(10, 15))
    alerts.unlink()
    next_day = day_file.with_name("ossec-alerts-28.json")
    append_alerts(next_day, range(15, 20))
    os.link(next_day, alerts)

    second = Daemon(home, ["--once"])
    await second.start()
    assert await second.wait() == 0
    # Each alert exactly once: the restart resumed past the first ten.
    assert sorted(receiver.ids(HOOK)) == sorted(f"1764262800.{n}" for n in range(20))
