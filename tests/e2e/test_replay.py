"""End-to-end: ``wazuh-integrator replay`` against a real local receiver."""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import os
import pty
import resource
import struct
import sys
import termios
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
from tests.e2e.harness import Daemon, Receiver, slack_block, write_config

from wazuh_integrator.store import StateStore

HOOK = "/services/T0/B0/replay-token"
UTC = timezone.utc
T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def alert_line(number: int) -> bytes:
    when = T0 + timedelta(hours=number)
    alert = {
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "rule": {"level": 10, "description": f"alert {number}", "id": "5712", "groups": ["a"]},
        "agent": {"id": "001", "name": "web01"},
        "id": str(number),
        "full_log": f"line {number}",
        "location": "/var/log/auth.log",
    }
    return orjson.dumps(alert) + b"\n"


def archive(home: Path) -> tuple[Path, Path]:
    """The 26th compressed, the 27th plain, as Wazuh leaves them."""
    folder = home / "logs" / "alerts" / "2026" / "Nov"
    folder.mkdir(parents=True, exist_ok=True)
    packed = folder / "ossec-alerts-26.json.gz"
    packed.write_bytes(gzip.compress(b"".join(alert_line(n) for n in range(24))))
    plain = folder / "ossec-alerts-27.json"
    plain.write_bytes(b"".join(alert_line(n) for n in range(24, 48)))
    return packed, plain


async def replay(home: Path, *args: str, stderr: int | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wazuh_integrator",
        "--home",
        str(home),
        "replay",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr if stderr is not None else asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), (err or b"").decode()


def checkpoint(home: Path) -> object:
    with StateStore.open_readonly(home / "var" / "integrator" / "state.db") as state:
        return state.load_checkpoint()


async def test_replay_sends_the_window_once_and_leaves_the_checkpoint(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    packed, plain = archive(home)
    (home / "logs" / "alerts" / "alerts.json").write_bytes(alert_line(99))
    daemon = Daemon(home, ["--once"])  # a live checkpoint to leave alone
    await daemon.start()
    assert await daemon.wait() == 0
    before = checkpoint(home)
    receiver.received.clear()

    since, until = (T0 + timedelta(hours=20)).isoformat(), (T0 + timedelta(hours=30)).isoformat()
    status, out, err = await replay(
        home, str(packed), str(plain), "--integration", "slack", "--since", since, "--until", until
    )

    assert status == 0, out + err
    assert sorted(int(i) for i in receiver.ids(HOOK)) == list(range(20, 30))
    assert checkpoint(home) == before
    assert f"{packed}: 24 line(s), 4 in the time window" in err  # plain lines: no terminal
    assert f"{plain}: 24 line(s), 6 in the time window" in err
    assert "Replayed 2 file(s): 48 line(s), 10 in the time window." in out
    assert "slack#0          10 delivered, 0 parked, 0 dead-lettered" in out
    assert out.endswith("Result: OK: 10 delivered, none failed.\n")


async def test_what_cannot_be_delivered_is_dead_lettered_and_the_exit_status_says_so(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    receiver.script[HOOK] = [(400, {})]
    packed, _ = archive(home)

    status, out, _ = await replay(home, str(packed), "--integration", "slack#0")

    assert status == 1
    assert "24 dead-lettered" in out
    assert "Result: NOT OK: 24 dead-lettered (wazuh-integrator dead-letter list)." in out
    assert "replay-token" not in out


async def test_an_unknown_integration_or_file_is_refused_before_sending(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    packed, _ = archive(home)

    status, _, err = await replay(home, str(packed), "--integration", "pagerduty")
    assert status == 2
    assert "no enabled integration is named 'pagerduty' (enabled: slack#0)" in err

    status, _, err = await replay(home, str(home / "nope.json.gz"), "--integration", "slack")
    assert status == 1
    assert "nope.json.gz: no such file" in err
    assert receiver.received.get(HOOK) is None


async def test_a_window_that_takes_nothing_is_not_ok(home: Path, receiver: Receiver) -> None:
    # It said "Result: OK: 0 delivered, none failed." and exited 0.
    write_config(home, slack_block(receiver.url(HOOK)))
    packed, _ = archive(home)
    status, out, _ = await replay(
        home, str(packed), "--integration", "slack", "--until", "2020-01-01T00:00:00Z"
    )
    assert status == 1
    assert out.endswith(
        "Result: NOTHING SENT: none of the 24 line(s) read is in the time window;"
        " check --since and --until.\n"
    )
    assert receiver.received.get(HOOK) is None


async def test_a_since_in_the_future_is_a_usage_error(home: Path, receiver: Receiver) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    packed, _ = archive(home)
    future = (datetime.now(timezone.utc) + timedelta(days=365)).isoformat()
    status, _, err = await replay(home, str(packed), "--integration", "slack", "--since", future)
    assert status == 2
    assert f"argument --since: '{future}' is in the future" in err
    assert receiver.received.get(HOOK) is None


def _limit_file_size() -> None:
    # A full disk, for the replay only: writes past 40 kB fail with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


async def test_a_state_database_that_cannot_be_written_is_in_the_verdict(
    home: Path, receiver: Receiver
) -> None:
    # A replay has no checkpoint to read its alerts again from: 600 refused
    # alerts were reported "600 dead-lettered" while none was stored, and the
    # log promised they would be "read again at the next start".
    receiver.script[HOOK] = [(400, {})]
    write_config(home, slack_block(receiver.url(HOOK)))
    (home / "logs" / "alerts" / "alerts.json").write_bytes(b"")
    daemon = Daemon(home, ["--once"])  # the state database, as a daemon leaves it
    await daemon.start()
    assert await daemon.wait() == 0
    day = home / "logs" / "alerts" / "2026" / "Nov" / "ossec-alerts-26.json"
    day.parent.mkdir(parents=True)
    day.write_bytes(b"".join(alert_line(n) for n in range(600)))

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "wazuh_integrator", "--home", str(home), "replay", str(day)),
        *("--integration", "slack"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_limit_file_size,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)

    assert process.returncode == 1
    with StateStore.open_readonly(home / "var" / "integrator" / "state.db") as state:
        stored = sum(state.dead_letter_counts().values())
    assert stored < 600, "the limit did not bite: the test proves nothing"
    assert "Result: NOT OK: the state database could not be written (" in out.decode()
    assert "replay the same files and window again" in out.decode()
    assert "read again at the next start" not in err.decode()


async def test_a_truncated_gz_file_is_reported_and_the_others_still_sent(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    packed, plain = archive(home)
    packed.write_bytes(packed.read_bytes()[:-20])

    status, out, err = await replay(home, str(packed), str(plain), "--integration", "slack")

    assert status == 1
    assert "STOPPED:" in err and "ossec-alerts-26.json.gz: cannot read" in err
    assert "1 file(s) not read to the end" in out
    assert set(range(24, 48)) <= {int(i) for i in receiver.ids(HOOK)}


async def test_a_terminal_gets_a_progress_bar(home: Path, receiver: Receiver) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    packed, _ = archive(home)
    controller, terminal = pty.openpty()
    # A terminal 80 columns wide: with none set, tqdm draws a bar of width 0.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        status, out, _ = await replay(home, str(packed), "--integration", "slack", stderr=terminal)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert status == 0, out
    text = shown.decode(errors="replace")
    assert "ossec-alerts-26.json.gz" in text
    assert "%|" in text or "B/s" in text  # tqdm's bar
