"""End-to-end: the real ``wazuh-integrator run`` with throttles and digests
against a real local receiver, restarts included."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.e2e import harness
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    make_alert,
    run_once,
    until,
    write_config,
)

SLACK = "/services/T0/B0/secret-token-floods"
SHUFFLE = "/api/v1/hooks/webhook_floods"
AGENTS = ("001", "002", "003")
THROTTLE = """
[integrations.slack]
initial_backoff = "0.05s"
max_backoff = "0.5s"
[integrations.slack.throttle]
key = ["rule.id", "agent.id"]
window = "{window}"
limit = 2
"""
DIGEST = """
[integrations.shuffle.digest]
group_by = ["rule.id"]
group_wait = "{wait}"
group_interval = "1m"
max_alerts = 10
"""


home = harness.home
receiver = harness.receiver


def append_burst(home: Path, numbers: range) -> None:
    lines = []
    for number in numbers:
        alert = make_alert(number)
        alert["agent"] = {"id": AGENTS[number % 3], "name": f"web{number % 3}"}
        lines.append(orjson.dumps(alert))
    with alerts_file(home).open("ab") as handle:
        handle.write(b"\n".join(lines) + b"\n")


def blocks(receiver: Receiver, *, slack: bool = True, shuffle: bool = False) -> str:
    text = ""
    if slack:
        text += (
            f"<integration><name>slack</name><hook_url>{receiver.url(SLACK)}</hook_url>"
            "<alert_format>json</alert_format></integration>"
        )
    if shuffle:
        text += (
            f"<integration><name>shuffle</name><hook_url>{receiver.url(SHUFFLE)}</hook_url>"
            "<alert_format>json</alert_format></integration>"
        )
    return text


def slack_bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [body["attachments"][0] for body in receiver.received.get(SLACK, [])]


def suppressed_field(attachment: dict[str, Any]) -> str | None:
    for field in attachment["fields"]:
        if field["title"] == "Suppressed":
            return str(field["value"])
    return None


async def test_a_burst_of_10000_alerts_of_3_keys_makes_6_deliveries(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, blocks(receiver), THROTTLE.format(window="1h"))
    append_burst(home, range(10_000))
    daemon = await run_once(home)
    agents = sorted(body["fields"][0]["value"][:5] for body in slack_bodies(receiver))
    assert agents == ["(001)", "(001)", "(002)", "(002)", "(003)", "(003)"]
    assert "secret-token-floods" not in daemon.log()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
async def test_a_restart_during_the_burst_sends_no_more(
    home: Path, receiver: Receiver, signum: int
) -> None:
    write_config(home, blocks(receiver), THROTTLE.format(window="1h"))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_burst(home, range(5_000))
        await until(lambda: len(slack_bodies(receiver)) >= 6, 30, "6 deliveries", daemon)
        # The throttle's counts are saved with the checkpoint: a kill before that
        # save sends the unsaved ones again (at least once). Wait for the save, as
        # a fixed sleep did not on a loaded machine.
        size = alerts_file(home).stat().st_size
        await until(lambda: committed_offset(home) >= size, 60, "the burst checkpointed", daemon)
    finally:
        await daemon.stop(signum)
    append_burst(home, range(5_000, 10_000))
    await run_once(home)
    assert len(slack_bodies(receiver)) == 6


def committed_offset(home: Path) -> int:
    """The checkpoint's offset as committed in the state database, read as
    another process would; -1 before there is one."""
    for database in home.rglob("state.db"):
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1.0)
            ) as connection:
                row = connection.execute("SELECT MAX(offset) FROM checkpoint").fetchone()
        except sqlite3.Error:
            return -1
        return int(row[0]) if row and row[0] is not None else -1
    return -1


async def test_with_a_short_window_the_next_delivery_carries_the_exact_count(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, blocks(receiver), THROTTLE.format(window="2s"))
    append_burst(home, range(3_000))
    await run_once(home)
    first_run = len(slack_bodies(receiver))
    assert first_run >= 6
    await asyncio.sleep(2.1)
    append_burst(home, range(3_000, 3_003))  # one more per key, in a new window
    await run_once(home)
    bodies = slack_bodies(receiver)
    assert len(bodies) == first_run + 3
    # The burst may straddle windows: per key, what was sent plus what the
    # notes counted is every alert of that key, 1,001 each.
    accounted: dict[str, int] = {}
    for attachment in bodies:
        agent = attachment["fields"][0]["value"][1:4]
        note = suppressed_field(attachment)
        counted = int(note.split()[0]) if note else 0
        accounted[agent] = accounted.get(agent, 0) + 1 + counted
    assert accounted == {"001": 1_001, "002": 1_001, "003": 1_001}
    assert all(" similar alerts since " in (suppressed_field(b) or "") for b in bodies[-3:])


async def test_500_alerts_of_one_rule_make_one_digest_counting_all(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, blocks(receiver, slack=False, shuffle=True), DIGEST.format(wait="2s"))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_burst(home, range(500))
        await until(lambda: bool(receiver.received.get(SHUFFLE)), 30, "a digest", daemon)
        await asyncio.sleep(1.0)  # nothing else is due before the interval
    finally:
        assert await daemon.stop() == 0
    (body,) = receiver.received[SHUFFLE]
    assert body["count"] == 500
    assert len(body["alerts"]) == 10
    assert body["digest"]["group"] == "rule.id=5712"


async def test_alerts_held_for_a_digest_survive_a_crash(home: Path, receiver: Receiver) -> None:
    write_config(home, blocks(receiver, slack=False, shuffle=True), DIGEST.format(wait="1h"))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_burst(home, range(500))
        await asyncio.sleep(2.0)  # read, collected, checkpoint saved past them
    finally:
        await daemon.stop(signal.SIGKILL)
    assert not receiver.received.get(SHUFFLE)
    await run_once(home)  # sends what is pending at the end of the file
    (body,) = receiver.received[SHUFFLE]
    assert body["count"] == 500
