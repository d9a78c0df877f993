"""Starting and querying :mod:`bench.receiver` from the benchmark."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from bench import procfs

REPO = Path(__file__).resolve().parent.parent


class OurReceiver:
    """``bench.receiver`` in a subprocess; a context manager."""

    kind = "our minimal receiver (bench/receiver.py)"

    def __init__(self, port: int = 0, delay_ms: float = 0.0, record: Path | None = None) -> None:
        self.port = port
        self.delay_ms = delay_ms
        self.record = record
        self._process: subprocess.Popen[str] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> OurReceiver:
        command = [
            sys.executable,
            "-m",
            "bench.receiver",
            "--port",
            str(self.port),
            "--delay-ms",
            str(self.delay_ms),
        ]
        if self.record is not None:
            command += ["--record", str(self.record)]
        self._process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"receiver did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url("/__count"), timeout=10) as answer:
            counts: dict[str, int] = orjson.loads(answer.read())
        return counts

    def served(self) -> int:
        return self.counts()["requests"]

    def cpu_seconds(self) -> float:
        return procfs.cpu_seconds(self._process.pid) if self._process else 0.0

    def stop(self) -> dict[str, Any]:
        """Stop it; what it recorded (when recording)."""
        if self._process is None:
            return {}
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=60)
        self._process = None
        if self.record is not None and self.record.exists():
            recorded: dict[str, Any] = orjson.loads(self.record.read_bytes())
            return recorded
        return {}

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
