"""redis-server with its own port and directory in /tmp, for the cluster scenario."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bench import procfs


def redis_binary() -> str | None:
    """redis-server, installed from Debian's package when missing and run as root."""
    found = shutil.which("redis-server")
    if found is None and shutil.which("apt-get") and _is_root():
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=False)
        found = shutil.which("redis-server")
    return found


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


class RedisServer:
    """Append-only file fsynced every second, as docs/cluster.md recommends."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix="wi-bench-redis-", dir="/tmp"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return procfs.cpu_seconds(self.process.pid)

    def __enter__(self) -> RedisServer:
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--dir", str(self.directory),
                    "--appendonly", "yes",
                    "--appendfsync", "everysec",
                    "--save", "",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"FLUSHALL\r\n")
            conn.recv(16)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
        shutil.rmtree(self.directory, ignore_errors=True)
