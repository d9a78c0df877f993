"""Answers no test receiver built on aiohttp can give, because aiohttp writes
correct HTTP: raw bytes on a loopback socket, read by the real daemon.

Each case checks that the daemon reads the answer as the receiver's, not as a
failure of its own ("unexpected error ... a bug"), and still delivers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from tests.e2e.harness import alerts_file, append_alerts, run_once
from tests.integrations.test_http1 import RawServer
from tests.reliability.harness import HOOK, fault_home
from tests.reliability.support import FAST_RETRIES

pytestmark = pytest.mark.timeout(120)


class FailingThenOk:
    """Answers the first ``failures`` requests with ``failure`` (raw bytes),
    then 200; remembers the alert ids it accepted. Served by a RawServer."""

    def __init__(self, failure: bytes, failures: int) -> None:
        self.failure = failure
        self.failures = failures
        self.requests = 0
        self.accepted: list[str] = []

    async def answer(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        self.requests += 1
        if self.requests <= self.failures:
            writer.write(self.failure)
        else:
            self.accepted.append(str(orjson.loads(body)["attachments"][0]["ts"]))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        return True


# Latin-1 bytes that str.isdigit() calls digits ("²", "³") and float() refuses.
SUPERSCRIPT_RETRY_AFTER = (
    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: \xb2\xb3\r\nContent-Length: 4\r\n\r\nslow"
)


async def test_a_retry_after_of_superscript_digits_is_an_unreadable_delay(
    homes: list[Path],
) -> None:
    receiver = FailingThenOk(SUPERSCRIPT_RETRY_AFTER, failures=3)
    async with RawServer(receiver.answer) as server:
        home = fault_home(server.url(HOOK), settings=FAST_RETRIES)
        homes.append(home)
        append_alerts(alerts_file(home), range(3))
        daemon = await run_once(home, "--from-start")
    log = daemon.log()
    # Read as a 429 without a usable delay (the backoff stands), not as a bug of ours.
    assert "unexpected error" not in log, log
    assert "HTTP 429" in log, log
    assert receiver.requests > 3
    assert sorted(receiver.accepted) == [f"1764262800.{n}" for n in range(3)]
