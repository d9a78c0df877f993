"""``wazuh-integrator run`` in a subprocess: timed to its exit (``--once``), or
followed while it runs, with its CPU time and memory from /proc and rusage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procfs


@dataclass(frozen=True)
class Finished:
    """A daemon run that ended: wall time, CPU time and peak RSS."""

    exit_code: int
    wall_s: float
    cpu_s: float
    max_rss_kb: int
    log: str

    def checked(self) -> Finished:
        """This run, or a RuntimeError with the log's tail when it failed."""
        if self.exit_code != 0:
            raise RuntimeError(f"daemon exited {self.exit_code}:\n{self.log[-3000:]}")
        return self


def command(home: Path, *args: str, profiler: list[str] | None = None) -> list[str]:
    base = [sys.executable, "-m", "wazuh_integrator", "--home", str(home), "run", *args]
    return [*profiler, *base] if profiler else base


class Daemon:
    """One daemon process; ``log`` collects its stderr in the home."""

    def __init__(self, home: Path, *args: str, profiler: list[str] | None = None) -> None:
        self.home = home
        self.args = args
        self.profiler = profiler
        self.log_path = home / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Daemon:
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                command(self.home, *self.args, profiler=self.profiler),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if time.monotonic() > deadline or self.exited():
                raise RuntimeError(f"daemon never logged {text!r}:\n{self.log()[-3000:]}")
            time.sleep(0.02)

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def finish(self, timeout_s: float, signum: int | None = None) -> Finished:
        """Wait for the exit (after sending ``signum``, if given); kill past ``timeout_s``."""
        assert self.process is not None
        if signum is not None and self.process.poll() is None:
            self.process.send_signal(signum)
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.process.kill()
                pid, status, usage = os.wait4(self.process.pid, 0)
                break
            time.sleep(0.01)
        wall_s = time.monotonic() - self.started_at
        self.process.returncode = os.waitstatus_to_exitcode(status)
        return Finished(
            exit_code=self.process.returncode,
            wall_s=wall_s,
            cpu_s=usage.ru_utime + usage.ru_stime,
            max_rss_kb=usage.ru_maxrss,
            log=self.log(),
        )

    def stop(self, timeout_s: float = 60.0) -> Finished:
        return self.finish(timeout_s, signal.SIGTERM)

    def memory_kb(self) -> dict[str, int]:
        return procfs.memory_kb(self.pid)

    def cpu_seconds(self) -> float:
        return procfs.cpu_seconds(self.pid)


def run_once(home: Path, *args: str, timeout_s: float) -> Finished:
    """``run --once``: process the file, wait for every delivery, exit."""
    return Daemon(home, "--once", *args).start().finish(timeout_s)
