"""sdnotify.py and the daemon's notifications, read from a real Unix datagram socket."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.harness import Daemon, short_home, slack_block, until, write_config

from wazuh_integrator.sdnotify import notify, watchdog_interval_s


@pytest.fixture
def home() -> Iterator[Path]:
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listener(home: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(home / "notify"))
    sock.setblocking(False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_notify_sends_one_datagram(
    home: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(home / "notify"))
    assert notify("READY=1", "STATUS=Delivering.")
    assert received(listener) == ["READY=1\nSTATUS=Delivering."]


def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"wazuh-integrator-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(home / "nobody-listens"))
    assert not notify("READY=1")


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("30000000", "1", None),
        (None, None, None),
        ("0", None, None),
        ("x", None, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_sec(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert watchdog_interval_s() == expected


async def test_the_daemon_says_ready_pings_the_watchdog_and_says_stopping(
    home: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(home, slack_block("http://127.0.0.1:9/services/T/B/x"))
    (home / "logs" / "alerts" / "alerts.json").write_bytes(b"")
    monkeypatch.setenv("NOTIFY_SOCKET", str(home / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    daemon = Daemon(home)
    messages: list[str] = []

    def seen(message: str, times: int = 1) -> bool:
        messages.extend(received(listener))
        return sum(m.split("\n")[0] == message for m in messages) >= times

    await daemon.start()
    try:
        await until(lambda: seen("READY=1"), 15, "READY=1", daemon)
        started = time.monotonic()
        await until(lambda: seen("WATCHDOG=1", 3), 15, "3 pings", daemon)
        assert time.monotonic() - started >= 0.1  # paced, not a burst
    finally:
        assert await daemon.stop() == 0
    await asyncio.sleep(0)
    messages.extend(received(listener))
    assert messages[0].startswith("READY=1\nSTATUS=Delivering to 1 integration(s).")
    assert "STOPPING=1" in messages
    assert messages.index("STOPPING=1") > messages.index("WATCHDOG=1")
