"""The fault suite's parts: a receiver process on cue, an alert stream, and the
accounting that says where every alert went.

Each case runs the real ``wazuh-integrator run`` in a subprocess (see
:class:`tests.e2e.harness.Daemon`) against :mod:`tests.reliability.receiver`
in another, writes alerts into a real ``alerts.json`` (rotated the way Wazuh
does), and at the end asks the receiver what it got and the real
``dead-letter list`` what was given up.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from tests.e2e.harness import Daemon, make_alert, short_home, slack_block, until

from wazuh_integrator import compat
from wazuh_integrator.store import StateReader, StoreError

__all__ = [
    "HOOK",
    "Accounting",
    "AlertStream",
    "Daemon",
    "ReceiverProcess",
    "account",
    "delivery_attempts",
    "fault_home",
    "short_home",
    "until",
    "wait_accounted",
    "wait_serving",
]

REPO = Path(__file__).resolve().parent.parent.parent
HOOK = "/services/T0/B0/fault-suite-token"


@dataclass
class Stats:
    """What the receiver saw (see ``tests.reliability.receiver.Record``)."""

    requests: int
    statuses: dict[str, int]
    first_accepted_at: dict[str, float]
    processed: dict[str, int]
    fault_started_at: float | None
    fault_ended_at: float | None

    def first_delivery_after_s(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first alert accepted after it."""
        after = [t for t in self.first_accepted_at.values() if t >= moment]
        return min(after) - moment if after else None

    def all_delivered_after_s(self, ids: list[str], moment: float) -> float | None:
        """Seconds from ``moment`` until every one of ``ids`` had been accepted."""
        times = [self.first_accepted_at.get(alert_id) for alert_id in ids]
        if any(t is None for t in times):
            return None
        return max(0.0, max(t for t in times if t is not None) - moment)


class ReceiverProcess:
    """:mod:`tests.reliability.receiver` in a subprocess; an async context manager."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self.hook_port = 0
        self.control_port = 0

    def url(self, path: str = HOOK) -> str:
        return f"http://127.0.0.1:{self.hook_port}{path}"

    async def __aenter__(self) -> ReceiverProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.reliability.receiver",
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = (await asyncio.wait_for(self._process.stdout.readline(), 30)).decode()
        if not line.startswith("listening "):
            raise RuntimeError(f"the fault receiver did not start: {line!r}")
        _, hook, control = line.split()
        self.hook_port, self.control_port = int(hook), int(control)
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.close()
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 30)
            except compat.TIMEOUT_ERRORS:
                self._process.kill()
                await self._process.wait()

    async def fault(self, kind: str, **fields: Any) -> None:
        """Answer this way from now on (see ``tests.reliability.receiver.Fault``)."""
        await self._control("POST", "/fault", {"kind": kind, **fields})

    async def stats(self) -> Stats:
        return Stats(**await self._control("GET", "/stats"))

    async def _control(self, method: str, path: str, body: Any = None) -> Any:
        assert self._http is not None
        url = f"http://127.0.0.1:{self.control_port}{path}"
        async with self._http.request(method, url, json=body) as answer:
            answer.raise_for_status()
            return await answer.json()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def metrics_port(home: Path) -> int:
    return int((home / "metrics.port").read_text())


async def delivery_attempts(home: Path) -> int:
    """The daemon's own count of send attempts (its /metrics endpoint)."""
    url = f"http://127.0.0.1:{metrics_port(home)}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        text = await answer.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("wazuh_integrator_delivery_attempts_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def wait_serving(home: Path, timeout_s: float = 30.0) -> None:
    """Until the daemon answers /health: by then its signal handlers are in
    place, so a SIGTERM is a clean stop and not a kill."""
    url = f"http://127.0.0.1:{metrics_port(home)}/health"
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as answer:
                    if answer.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the daemon did not serve {url} within {timeout_s:g} s")
            await asyncio.sleep(0.1)


def fault_home(
    hook_url: str, *, timeout_s: int = 10, retries: int | None = None, settings: str = ""
) -> Path:
    """A Wazuh home with one Slack block (json alert format), metrics on a
    free loopback port, and ``settings`` for the block in ``integrator.toml``
    (nothing: every default)."""
    home = short_home()
    port = free_port()
    (home / "metrics.port").write_text(str(port))
    extra = f"<timeout>{timeout_s}</timeout>"
    if retries is not None:
        extra += f"<retries>{retries}</retries>"
    (home / "etc" / "ossec.conf").write_text(
        f"<ossec_config>\n{slack_block(hook_url, extra)}\n</ossec_config>\n"
    )
    toml = f'metrics_address = "127.0.0.1:{port}"\n'
    if settings:
        toml += f"[integrations.slack]\n{settings}\n"
    (home / "etc" / "integrator.toml").write_text(toml)
    return home


class AlertStream:
    """Writes alerts into ``<home>/logs/alerts/alerts.json`` as analysisd does:
    ``per_s`` a second in bursts of ``burst``; every ``rotate_every`` alerts
    (0: never) the day changes: ``alerts.json`` is pointed at a new dated
    file under ``YYYY/Mon/``, the old one keeping its dated name."""

    def __init__(
        self, home: Path, *, per_s: float = 500.0, burst: int = 50, rotate_every: int = 0
    ) -> None:
        self.home = home
        self.per_s = per_s
        self.burst = burst
        self.rotate_every = rotate_every
        self.written: list[str] = []
        self.written_at: list[float] = []  # wall-clock time of each alert's write
        self.rotations = 0
        self._task: asyncio.Task[None] | None = None
        self._day = 1
        self._folder = home / "logs" / "alerts" / "2026" / "Nov"
        self._folder.mkdir(parents=True, exist_ok=True)
        self._new_day()

    @property
    def alerts_path(self) -> Path:
        return self.home / "logs" / "alerts" / "alerts.json"

    def _new_day(self) -> None:
        dated = self._folder / f"ossec-alerts-{self._day:02d}.json"
        dated.touch()
        temporary = self.alerts_path.with_suffix(".new")
        os.link(dated, temporary)
        os.replace(temporary, self.alerts_path)  # the name moves in one step, like Wazuh's
        self._dated = dated

    def write(self, count: int) -> None:
        now = time.time()
        self.written_at.extend([now] * count)
        lines = []
        for _ in range(count):
            number = len(self.written)
            alert = make_alert(number)
            self.written.append(alert["id"])
            lines.append(orjson.dumps(alert) + b"\n")
            if self.rotate_every and (number + 1) % self.rotate_every == 0:
                self._append(b"".join(lines))
                lines = []
                self._day += 1
                self.rotations += 1
                self._new_day()
        self._append(b"".join(lines))

    def _append(self, data: bytes) -> None:
        if data:
            with self._dated.open("ab") as handle:
                handle.write(data)

    def written_before(self, moment: float) -> list[str]:
        return [a for a, t in zip(self.written, self.written_at, strict=True) if t < moment]

    def start(self) -> None:
        self._task = asyncio.create_task(self._stream())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _stream(self) -> None:
        # Paced against the clock, not by sleeps alone: a loaded machine that
        # wakes late writes a bigger burst, and the rate holds on average.
        started = time.monotonic()
        while True:
            due = int((time.monotonic() - started) * self.per_s) - len(self.written)
            if due > 0:
                self.write(due)
            await asyncio.sleep(self.burst / self.per_s)


@dataclass
class Accounting:
    """Where every written alert went."""

    written: int
    delivered: set[str]
    dead_letters: dict[str, str]  # alert id -> the reason kept with it
    missing: list[str]
    duplicates: int
    stats: Stats
    parked_left: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing

    def summary(self) -> str:
        return (
            f"{self.written} written, {len(self.delivered)} delivered,"
            f" {len(self.dead_letters)} dead-lettered, {len(self.missing)} missing,"
            f" {self.duplicates} duplicates"
        )


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def _state_database(home: Path) -> Path | None:
    return next(home.rglob("state.db"), None)


def count_dead_letters(home: Path) -> int:
    database = _state_database(home)
    if database is None:
        return 0
    try:
        with StateReader(database) as reader:
            return reader.count_dead_letters()
    except StoreError:  # the daemon is creating it right now
        return 0


def dead_letters(home: Path) -> dict[str, str]:
    """Alert id -> reason, as the real ``dead-letter list --json`` shows them."""
    if _state_database(home) is None:
        return {}
    listed = cli(home, "dead-letter", "list", "--json", "--limit", "0")
    if listed.returncode != 0:
        return {}
    letters = {}
    for line in listed.stdout.splitlines():
        record = orjson.loads(line)
        letters[str(record["alert_id"])] = str(record["last_error"])
    return letters


async def account(home: Path, receiver: ReceiverProcess, written: list[str]) -> Accounting:
    stats = await receiver.stats()
    letters = await asyncio.to_thread(dead_letters, home)
    delivered = {alert_id for alert_id in written if alert_id in stats.first_accepted_at}
    missing = [a for a in written if a not in delivered and a not in letters]
    duplicates = sum(max(0, count - 1) for count in stats.processed.values())
    return Accounting(
        written=len(written),
        delivered=delivered,
        dead_letters=letters,
        missing=missing,
        duplicates=duplicates,
        stats=stats,
    )


async def wait_accounted(
    home: Path,
    receiver: ReceiverProcess,
    written: list[str],
    *,
    timeout_s: float,
    daemon: Daemon | None = None,
) -> Accounting:
    """Poll until every written alert is delivered or dead-lettered; fail
    with the accounting and the daemon's log when it does not happen in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = await receiver.stats()
        delivered = sum(1 for alert_id in written if alert_id in stats.first_accepted_at)
        if delivered == len(written):
            return await account(home, receiver, written)
        if delivered + count_dead_letters(home) >= len(written):
            result = await account(home, receiver, written)
            if result.complete:
                return result
        if time.monotonic() > deadline:
            result = await account(home, receiver, written)
            if result.complete:
                return result
            log = daemon.log()[-3000:] if daemon is not None else ""
            raise AssertionError(
                f"not every alert accounted for after {timeout_s:g} s: {result.summary()}"
                f" (first missing: {result.missing[:5]})\n--- daemon log ---\n{log}"
            )
        await asyncio.sleep(0.2)
