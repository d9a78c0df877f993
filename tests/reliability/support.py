"""What the fault cases share: a Wazuh home, receivers, the daemon's state and health."""

from __future__ import annotations

import socket
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from tests.e2e import harness
from tests.e2e.harness import Daemon

# The fault_report fixture's type (tests/reliability/conftest.py), named here so
# that the cases do not depend on which conftest defines the fixture.
FaultReport = Callable[..., None]

FAST_RETRIES = 'initial_backoff = "0.05s"\nmax_backoff = "0.5s"\n'


# The harness's fixtures, for the cases to take as ``home = support.home``.
home = harness.home
receiver = harness.receiver


def state_db(home: Path) -> Path:
    return home / "var" / "integrator" / "state.db"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings(*, metrics_port: int | None = None, extra: str = "") -> str:
    """integrator.toml with quick retries for the webhooks, and the metrics endpoint."""
    text = ""
    if metrics_port is not None:
        text += f'metrics_address = "127.0.0.1:{metrics_port}"\n'
    text += extra
    for name in ("slack", "pagerduty", "shuffle"):
        text += f"[integrations.{name}]\n{FAST_RETRIES}"
    return text


async def health(port: int, timeout_s: float = 2.0) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://127.0.0.1:{port}/health") as answer,
    ):
        result: dict[str, Any] = await answer.json()
        return result


def dead_letter_count(home: Path) -> int:
    db = state_db(home)
    if not db.exists():
        return 0
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])


def dead_letter_errors(home: Path) -> list[str]:
    with sqlite3.connect(f"{state_db(home).resolve().as_uri()}?mode=ro", uri=True) as connection:
        return [row[0] for row in connection.execute("SELECT last_error FROM dead_letters")]


def with_file_size_limit(daemon: Daemon, limit_bytes: int) -> None:
    """Run ``daemon`` under RLIMIT_FSIZE: no file it writes grows past ``limit_bytes``
    (Python ignores SIGXFSZ, so a write past it fails with EFBIG)."""
    daemon.launcher = [
        sys.executable,
        "-c",
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes})); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
    ]
