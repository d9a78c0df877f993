"""The email output with its SMTP connection kept between messages, against
one connection per message (what it did before), over a local aiosmtpd.

    .venv/bin/python bench/email_connections.py [--messages 500] [--rounds 3]

Runs the two ways in turn (A/B/A/B) and prints the medians: messages a
second (wall clock) and the sending thread's CPU seconds. aiosmtpd runs in a
thread of its own, so its CPU is not the sender's. Never run by the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller

from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.email import EmailIntegration
from wazuh_integrator.secret import Secret

ALERT: dict[str, Any] = {
    "id": "1764262800.1",
    "timestamp": "2026-11-27T17:00:00.000+0000",
    "rule": {"level": 10, "id": "5712", "description": "sshd: brute force", "groups": ["sshd"]},
    "agent": {"id": "002", "name": "web-01"},
    "location": "/var/log/auth.log",
    "full_log": "Failed password for root from 198.51.100.7 port 22 ssh2",
}
OPTIONS = {"from": "wazuh@example.com", "to": ["soc@example.com"]}


class _Counting:
    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _send_all(port: int, count: int, *, keep: bool, home: Path) -> tuple[float, float]:
    block = IntegrationBlock(
        index=0,
        path="ossec.conf",
        line=1,
        name="email",
        hook_url=Secret(f"smtp://127.0.0.1:{port}"),
        options=OPTIONS,
    )
    context = IntegrationContext(home, home / "state", IntegrationSettings())
    integration = EmailIntegration(block, context)
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        for _ in range(count):
            await integration.send(ALERT)
            if not keep:
                await integration.close()  # QUIT: one connection per message, as before
    finally:
        await integration.close()
    return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    handler = _Counting()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    results: dict[str, list[tuple[float, float]]] = {"kept": [], "one per message": []}
    try:
        for _ in range(args.rounds):
            for name, keep in (("kept", True), ("one per message", False)):
                before = handler.messages
                elapsed = asyncio.run(
                    _send_all(port, args.messages, keep=keep, home=Path("/nonexistent"))
                )
                assert handler.messages - before == args.messages, "messages lost"
                results[name].append(elapsed)
    finally:
        controller.stop()
    print(f"{args.messages} messages, one at a time, {args.rounds} rounds A/B, medians:")
    for name, runs in results.items():
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        print(
            f"  {name:16} {args.messages / wall:8.0f} messages/s"
            f"  {wall:6.2f} s wall  {cpu:6.2f} s sender CPU"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
