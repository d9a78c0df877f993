"""End-to-end: ``run --since`` and the whole cutover from a stock-like daemon."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    slack_block,
    until,
    write_config,
)

HOOK = "/services/T0/B0/cutover-token"
UTC = timezone.utc
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def wazuh_stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def alert_line(number: int, when: datetime) -> bytes:
    alert = {
        "timestamp": wazuh_stamp(when),
        "rule": {"level": 10, "description": f"alert {number}", "id": "5712", "groups": ["a"]},
        "agent": {"id": "001", "name": "web01"},
        "id": str(number),
        "full_log": f"line {number}",
        "location": "/var/log/auth.log",
    }
    return orjson.dumps(alert) + b"\n"


def day_file(home: Path, day: date) -> Path:
    """Where Wazuh keeps a day's alerts: logs/alerts/2026/Nov/ossec-alerts-27.json."""
    month = day.strftime("%b")  # the C locale's names, as Wazuh writes them
    path = home / "logs" / "alerts" / str(day.year) / month / f"ossec-alerts-{day.day:02d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def test_since_reads_a_rotated_gz_file_then_follows_alerts_json(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    # The 26th, rotated and compressed by Wazuh; the 27th is today's, alerts.json.
    yesterday = b"".join(alert_line(n, T0 + timedelta(hours=n)) for n in range(10))
    gz_path = day_file(home, T0.date()).with_suffix(".json.gz")
    gz_path.write_bytes(gzip.compress(yesterday))
    today = day_file(home, T0.date() + timedelta(days=1))
    today.write_bytes(b"".join(alert_line(n, T0 + timedelta(hours=n)) for n in range(10, 20)))
    os.link(today, alerts_file(home))
    since = T0 + timedelta(hours=6)

    daemon = Daemon(home, ["--since", since.isoformat()])
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        with alerts_file(home).open("ab") as handle:
            for n in range(20, 23):
                handle.write(alert_line(n, T0 + timedelta(hours=n)))
        await until(lambda: len(receiver.received.get(HOOK, [])) == 17, 20, "17 alerts", daemon)
    finally:
        assert await daemon.stop() == 0
    assert sorted(int(i) for i in receiver.ids(HOOK)) == list(range(6, 23))
    assert "1 rotated file(s)" in daemon.log()

    # A restart with the same --since resumes from the checkpoint: nothing twice.
    again = Daemon(home, ["--once", "--since", since.isoformat()])
    await again.start()
    assert await again.wait() == 0
    assert len(receiver.received[HOOK]) == 17
    assert "--since" in again.log() and "ignored: a checkpoint exists" in again.log()


async def test_since_over_a_damaged_archive_sends_what_it_can_and_runs_on(
    home: Path, receiver: Receiver
) -> None:
    # A truncated .gz used to stop the daemon with exit 1, before alerts.json
    # was read: every restart met the same file again.
    write_config(home, slack_block(receiver.url(HOOK)))
    day = b"".join(alert_line(n, T0 + timedelta(seconds=n)) for n in range(2000))
    packed = day_file(home, T0.date()).with_suffix(".json.gz")
    whole = gzip.compress(day)
    packed.write_bytes(whole[: len(whole) // 2])
    today = day_file(home, T0.date() + timedelta(days=1))
    today.write_bytes(b"".join(alert_line(n, T0 + timedelta(days=1)) for n in range(5000, 5010)))
    os.link(today, alerts_file(home))

    daemon = Daemon(home, ["--once", "--since", T0.isoformat()])
    await daemon.start()
    assert await daemon.wait(120) == 0, daemon.log()[-3000:]

    got = sorted(int(i) for i in receiver.ids(HOOK))
    assert got[-10:] == list(range(5000, 5010)), "alerts.json is still read"
    archived = got[:-10]
    assert len(archived) > 500 and archived == list(range(len(archived)))
    assert f"ERROR: {packed}: cannot read: the gzip data ends early" in daemon.log()
    assert f"run --once: {len(got):,} lines read, 0 invalid." in daemon.log(), "rotated ones too"


async def test_the_once_summary_counts_the_rotated_files_lines_too(
    home: Path, receiver: Receiver
) -> None:
    """It said "10 lines read" beside 14 delivered: the rotated files' lines
    went uncounted (and so did wazuh_integrator_alerts_read_total)."""
    write_config(home, slack_block(receiver.url(HOOK)))
    rotated = b"".join(alert_line(n, T0 + timedelta(hours=n)) for n in range(10))
    day_file(home, T0.date()).with_suffix(".json.gz").write_bytes(gzip.compress(rotated))
    alerts_file(home).write_bytes(
        b"".join(alert_line(n, T0 + timedelta(hours=n)) for n in range(10, 20))
    )

    daemon = Daemon(home, ["--once", "--since", (T0 + timedelta(hours=6)).isoformat()])
    await daemon.start()

    assert await daemon.wait() == 0
    assert len(receiver.received[HOOK]) == 14
    assert "run --once: 14 lines read, 0 invalid." in daemon.log()


async def test_since_later_than_every_alert_starts_at_the_end(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts_file(home).write_bytes(b"".join(alert_line(n, T0) for n in range(5)))
    daemon = Daemon(home, ["--once", "--since", (T0 + timedelta(days=2)).isoformat()])
    await daemon.start()
    assert await daemon.wait() == 0
    assert receiver.received.get(HOOK, []) == []


async def test_a_since_in_the_future_is_refused_before_a_checkpoint_is_saved(
    home: Path, receiver: Receiver
) -> None:
    # 2027 typed for 2026 started at the end of alerts.json and saved a
    # checkpoint there: the right --since was then ignored, the alerts since
    # the cutover never sent.
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts_file(home).write_bytes(b"".join(alert_line(n, T0) for n in range(5)))
    future = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    daemon = Daemon(home, ["--once", "--since", future])
    await daemon.start()
    assert await daemon.wait() == 2
    assert f"argument --since: '{future}' is in the future" in daemon.log()
    assert not (home / "var" / "integrator" / "state.db").exists()

    again = Daemon(home, ["--once", "--since", T0.isoformat()])
    await again.start()
    assert await again.wait() == 0
    assert sorted(int(i) for i in receiver.ids(HOOK)) == list(range(5))


def test_a_time_that_is_not_iso_8601_is_a_usage_error(home: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), "run", "--since", "noon"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "'noon' is not an ISO 8601 time" in done.stderr


class FakeManager:
    """Appends alerts stamped with the time they are written, as analysisd does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0

    async def write(self, count: int, pause_s: float = 0.002) -> None:
        for _ in range(count):
            with self.path.open("ab") as handle:
                handle.write(alert_line(self.written, datetime.now(UTC)))
            self.written += 1
            await asyncio.sleep(pause_s)


class StockLikeSender:
    """Stock's model: reads alerts.json from its end when it starts, sends each
    new alert as it comes, and is stopped at a moment T: what it read before T
    it has sent, nothing written after T.

    T is where its last read happens, on a whole millisecond (alerts are stamped
    to the millisecond): an alert written before the read is stamped before T,
    one written after it at T or later, so ``--since T`` takes over exactly
    there however loaded the machine is.
    """

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url
        self.stopped_at: datetime | None = None
        self._stopping = asyncio.Event()
        self._offset = path.stat().st_size if path.exists() else 0

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                stopping = self._stopping.is_set()
                if stopping:
                    self.stopped_at = _next_whole_millisecond()
                with self.path.open("rb") as handle:
                    handle.seek(self._offset)
                    data = handle.read()
                complete = data[: data.rfind(b"\n") + 1]
                self._offset += len(complete)
                for line in complete.splitlines():
                    alert = orjson.loads(line)
                    body = {"attachments": [{"ts": alert["id"]}]}
                    async with http.post(self.url, json=body) as answer:
                        assert answer.status == 200
                if stopping:
                    return
                with contextlib.suppress(asyncio.TimeoutError):  # not TimeoutError: 3.10
                    await asyncio.wait_for(self._stopping.wait(), 0.05)

    def stop(self) -> None:
        self._stopping.set()


def _next_whole_millisecond() -> datetime:
    """The next whole millisecond, once the clock has passed it. It waits less
    than a millisecond without yielding, so nothing is written meanwhile."""
    now = datetime.now(UTC)
    mark = now.replace(microsecond=0) + timedelta(milliseconds=now.microsecond // 1000 + 1)
    while datetime.now(UTC) < mark:
        pass
    return mark


@pytest.mark.timeout(150)
async def test_the_whole_cutover_loses_nothing_and_doubles_nothing(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts = alerts_file(home)
    today = day_file(home, datetime.now(UTC).date())
    today.write_bytes(b"")
    os.link(today, alerts)
    manager = FakeManager(alerts)
    await manager.write(20)  # before the stock sender started: neither sends these

    stock = StockLikeSender(alerts, receiver.url(HOOK))
    stock_task = asyncio.create_task(stock.run())
    writer = asyncio.create_task(manager.write(400))
    await until(lambda: manager.written >= 150, 30, "the manager writing")

    # Stop the stock daemon at T (everything it read before T is sent),
    stock.stop()
    await asyncio.wait_for(stock_task, 30)
    assert stock.stopped_at is not None
    cutover_at = stock.stopped_at
    first_after = manager.written
    # then, some time later, start ours with --since T.
    await until(lambda: manager.written >= first_after + 50, 30, "alerts after T")
    ours = Daemon(home, ["--since", cutover_at.isoformat()])
    await ours.start()
    try:
        await writer
        with alerts.open("ab") as handle:  # midnight: the 27th's file rotates
            handle.write(alert_line(manager.written, datetime.now(UTC)))
        manager.written += 1
        alerts.unlink()
        next_day = day_file(home, datetime.now(UTC).date() + timedelta(days=1))
        next_day.write_bytes(b"")
        os.link(next_day, alerts)
        await manager.write(30)
        await until(
            lambda: len(receiver.received.get(HOOK, [])) >= manager.written - 20,
            60,
            "every alert",
            ours,
        )
        await asyncio.sleep(0.5)  # a double would arrive now
    finally:
        assert await ours.stop() == 0
    sent: list[Any] = receiver.ids(HOOK)
    assert len(sent) == len(set(sent)), "an alert was sent twice"
    assert sorted(int(i) for i in sent) == list(range(20, manager.written)), "an alert was lost"
    assert "secret" not in ours.log()
