"""A real redis-server for one test: its own loopback port and directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as redis

REDIS_SERVER = shutil.which("redis-server")


def require_redis_server() -> str:
    """redis-server's path; skip without it, except in CI, where it must be there."""
    if REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed: .ci/run must apt-get install redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return REDIS_SERVER


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """redis-server with an append-only file that survives a stop and start."""

    binary: str
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wi-redis-")))
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--protected-mode", "yes",
            stdout=log,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        client = self.client()
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        return
                except (redis.ConnectionError, OSError):
                    await asyncio.sleep(0.05)
            raise AssertionError(f"redis-server did not answer on port {self.port}")
        finally:
            await client.aclose()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    async def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
        self.process = None

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
