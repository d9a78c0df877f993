"""Real receivers and the real daemon in a subprocess, for end-to-end tests.

The ``home`` and ``receiver`` fixtures are defined here once; a test folder's
conftest (or a module) takes them with ``home = harness.home``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

Behaviour = Callable[[web.Request, int], "asyncio.Future[web.StreamResponse] | Any"]


@dataclass
class Receiver:
    """A local HTTP server recording JSON bodies per path.

    ``script[path]`` is a list of (status, headers) answers used in turn for
    that path, the last repeating; ``delay_s[path]`` slows every answer.
    """

    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)
    received: dict[str, list[Any]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A slow answer (delay_s) is not waited for when the test stops the server.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        attempt = self.attempts.get(path, 0)
        self.attempts[path] = attempt + 1
        delay = self.delay_s.get(path, 0.0)
        if delay:
            await asyncio.sleep(delay)
        answers = self.script.get(path, [(200, {})])
        status, headers = answers[min(attempt, len(answers) - 1)]
        body = await request.read()
        if 200 <= status < 300:
            self.received.setdefault(path, []).append(orjson.loads(body) if body else None)
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")

    def ids(self, path: str, key: str = "ts") -> list[Any]:
        return [
            body["attachments"][0][key] if key == "ts" else body[key]
            for body in self.received.get(path, [])
        ]


def short_home() -> Path:
    """A Wazuh home with a short path (AF_UNIX socket paths are limited)."""
    home = Path(tempfile.mkdtemp(prefix="wi-e2e-", dir="/tmp"))
    for sub in ("etc", "logs/alerts", "integrations", "queue/sockets"):
        (home / sub).mkdir(parents=True)
    return home


@pytest.fixture
def home() -> Iterator[Path]:
    """A Wazuh home (:func:`short_home`), removed afterwards."""
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A started :class:`Receiver`, stopped afterwards."""
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def write_config(home: Path, blocks: str, settings: str = "") -> None:
    (home / "etc" / "ossec.conf").write_text(f"<ossec_config>\n{blocks}\n</ossec_config>\n")
    fast_retries = 'initial_backoff = "0.05s"\nmax_backoff = "0.5s"\n'
    base = ""
    for name in ("slack", "pagerduty", "shuffle"):
        base += f"[integrations.{name}]\n{fast_retries}"
    (home / "etc" / "integrator.toml").write_text(settings or base)


def slack_block(url: str, extra: str = "") -> str:
    return (
        "<integration><name>slack</name>"
        f"<hook_url>{url}</hook_url><alert_format>json</alert_format>{extra}</integration>"
    )


def make_alert(number: int, level: int = 10) -> dict[str, Any]:
    return {
        "timestamp": "2026-11-27T17:00:00.000+0000",
        "rule": {
            "level": level,
            "description": f"test alert {number}",
            "id": "5712",
            "groups": ["syslog", "sshd"],
        },
        "agent": {"id": "001", "name": "web01", "ip": "10.0.0.11"},
        "manager": {"name": "wazuh-manager"},
        "id": f"1764262800.{number}",
        "full_log": f"line {number}",
        "location": "/var/log/auth.log",
    }


def append_alerts(path: Path, numbers: range, level: int = 10) -> None:
    with path.open("ab") as handle:
        for number in numbers:
            handle.write(orjson.dumps(make_alert(number, level)) + b"\n")


@dataclass
class Daemon:
    """``wazuh-integrator run`` in a subprocess, its log in a file."""

    home: Path
    args: list[str] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    # What runs ``-m wazuh_integrator ...``: the interpreter, or a wrapper around it.
    launcher: list[str] = field(default_factory=lambda: [sys.executable])
    # In a process group of its own (with its children), as systemd's cgroup is.
    own_process_group: bool = False

    @property
    def log_path(self) -> Path:
        return self.home / "daemon.log"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        log_file = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *self.launcher,
            "-m",
            "wazuh_integrator",
            "--home",
            str(self.home),
            "run",
            *self.args,
            stdout=log_file,
            stderr=log_file,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=self.own_process_group,
        )
        log_file.close()

    async def wait_for_log(self, text: str, timeout_s: float = 15.0) -> None:
        await until(lambda: text in self.log(), timeout_s, f"log line {text!r}", self)

    async def wait(self, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout_s)

    async def reload(self, outcome: str, count: int) -> None:
        """Send SIGHUP and wait for the ``count``-th log line saying ``outcome``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        await until(lambda: self.log().count(outcome) >= count, 20, f"reload #{count}", self)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signum)
        return await self.wait()


async def run_once(home: Path, *args: str, status: int = 0, timeout_s: float = 120.0) -> Daemon:
    """``run --once`` (and ``args``) to its end, which must be exit ``status``
    (3: deliveries were left parked); the log is shown when it is not."""
    daemon = Daemon(home, ["--once", *args])
    await daemon.start()
    assert await daemon.wait(timeout_s) == status, daemon.log()[-3000:]
    return daemon


async def cli(home: Path, *args: str, timeout_s: float = 60.0) -> tuple[int, str, str]:
    """Another command on ``home`` (``check-config``, ``dead-letter list``...):
    its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wazuh_integrator",
        "--home",
        str(home),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def until(
    condition: Callable[[], bool], timeout_s: float, what: str, daemon: Daemon | None = None
) -> None:
    """Poll ``condition``; on time-out fail with what was awaited and the log."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            log = daemon.log()[-3000:] if daemon else ""
            raise AssertionError(f"timed out waiting for {what}\n--- daemon log ---\n{log}")
        await asyncio.sleep(0.05)


async def free_port() -> int:
    """A loopback port that was free a moment ago (a receiver bound it, then let go)."""
    probe = Receiver()
    await probe.start()
    port = probe.port
    await probe.stop()
    return port


def alerts_file(home: Path) -> Path:
    return home / "logs" / "alerts" / "alerts.json"
