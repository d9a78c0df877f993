"""Where the time of one custom-script alert goes, step by step.

    .venv/bin/python -m bench.script_costs [--alerts 300] [--rounds 3]

Each variant runs one alert at a time (no concurrency, so each figure is the
cost of one alert, not a rate), in this process, in rounds that take every
variant in turn; figures are medians over rounds. Wall-clock ms and CPU ms
(this process's and its children's) per alert:

- ``spawn true``: ``subprocess.Popen`` as the daemon calls it (``close_fds``,
  a new session, output to a pipe) of a copy of ``/bin/true``, then ``wait``:
  the least one process per alert costs from Python.
- ``posix_spawn true``: the same binary through ``os.posix_spawn`` (vfork and
  exec in libc), to see whether Popen's own fork and exec cost more.
- ``ours, true``: the daemon's whole script path (``ScriptIntegration.send``:
  private directory, alert file, spawn, pidfd, output, clean-up) running that
  copy of ``true``; ``ours, true, tmp on tmpfs``: the same with the state
  directory (and so the alert file) on ``/dev/shm``.
- ``ours, sh``: a ``/bin/sh`` script that reads the alert file.
- ``ours, python``: a Python script that reads the alert file (interpreter start).
- ``ours, stock-shaped``: what stock's ``custom-*`` scripts look like, a
  shell wrapper that execs Python on a ``.py`` that imports ``json``, ``sys``
  and ``requests`` and reads the alert (without sending it anywhere).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.script import ScriptIntegration

NAME = "custom-cost"
ALERT = {"id": "1", "rule": {"level": 10, "id": "5712", "description": "sshd: brute force"}}
SH_SCRIPT = '#!/bin/sh\ncat "$1" > /dev/null\n'
PYTHON_SCRIPT = f"#!{sys.executable}\nimport sys\nopen(sys.argv[1], 'rb').read()\n"
STOCK_WRAPPER = '#!/bin/sh\nexec {python} "$(dirname "$0")/{name}.py" "$@"\n'
STOCK_PY = "import json\nimport sys\n\nimport requests\n\njson.load(open(sys.argv[1]))\n"


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Variant:
    def __init__(self, name: str, one: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.one = one
        self.wall_ms: list[float] = []
        self.cpu_ms: list[float] = []

    async def measure(self, count: int) -> None:
        await self.one()  # warm: the first run pays for page cache and imports
        cpu, wall = _cpu_s(), time.perf_counter()
        for _ in range(count):
            await self.one()
        self.wall_ms.append((time.perf_counter() - wall) * 1000 / count)
        self.cpu_ms.append((_cpu_s() - cpu) * 1000 / count)


def _install(home: Path, name: str, text: str | None = None, copy: str | None = None) -> Path:
    path = home / "integrations" / name
    if copy is not None:
        shutil.copy(copy, path)
    else:
        path.write_text(text or "")
    path.chmod(0o750)
    return path


def _integration(home: Path, state_dir: Path, name: str) -> ScriptIntegration:
    block = IntegrationBlock(index=0, path="ossec.conf", line=1, name=name, alert_format="json")
    context = IntegrationContext(
        home=home, state_dir=state_dir, settings=IntegrationSettings(), debug=False
    )
    return ScriptIntegration(block, context)


def _variants(home: Path, shm: Path) -> list[Variant]:
    true = _install(home, f"{NAME}-true", copy=shutil.which("true") or "/bin/true")
    _install(home, f"{NAME}-sh", SH_SCRIPT)
    _install(home, f"{NAME}-python", PYTHON_SCRIPT)
    stock = f"{NAME}-stock"
    _install(home, stock, STOCK_WRAPPER.format(python=sys.executable, name=stock))
    (home / "integrations" / f"{stock}.py").write_text(STOCK_PY)
    state = home / "var" / "integrator"

    def spawn_true() -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            process = subprocess.Popen(
                [str(true)],
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                close_fds=True,
                start_new_session=True,
                cwd=home,
            )
        finally:
            os.close(write_end)
        process.wait()
        os.close(read_end)

    def posix_spawn_true() -> None:
        pid = os.posix_spawn(str(true), [str(true)], os.environ)
        os.waitpid(pid, 0)

    def ours(name: str, state_dir: Path) -> Callable[[], Awaitable[None]]:
        integration = _integration(home, state_dir, name)

        async def one() -> None:
            await integration.send(ALERT)

        return one

    return [
        Variant("spawn true", _blocking(spawn_true)),
        Variant("posix_spawn true", _blocking(posix_spawn_true)),
        Variant("ours, true", ours(true.name, state)),
        Variant("ours, true, tmp on tmpfs", ours(true.name, shm)),
        Variant("ours, sh", ours(f"{NAME}-sh", state)),
        Variant("ours, python", ours(f"{NAME}-python", state)),
        Variant("ours, stock-shaped", ours(stock, state)),
    ]


def _blocking(step: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """A bare baseline, run as the loop's only work: blocking is what it measures."""

    async def one() -> None:
        step()

    return one


async def measure(count: int, rounds: int) -> list[Variant]:
    home = Path(tempfile.mkdtemp(prefix="wi-script-costs-", dir="/var/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="wi-script-costs-", dir="/dev/shm"))
    try:
        (home / "integrations").mkdir()
        variants = _variants(home, shm)
        for _ in range(rounds):
            for variant in variants:
                # Python starts are ~30 times as slow as `true`: fewer of them.
                slow = "python" in variant.name or "stock" in variant.name
                await variant.measure(max(5, count // 10) if slow else count)
        return variants
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


def figures(variants: list[Variant]) -> dict[str, dict[str, float]]:
    return {
        variant.name: {
            "wall_ms": round(statistics.median(variant.wall_ms), 3),
            "cpu_ms": round(statistics.median(variant.cpu_ms), 3),
        }
        for variant in variants
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = figures(asyncio.run(measure(args.alerts, args.rounds)))
    print(f"{'per alert':28} {'wall ms':>9} {'CPU ms':>9}")
    for name, figure in results.items():
        print(f"{name:28} {figure['wall_ms']:9.3f} {figure['cpu_ms']:9.3f}")


if __name__ == "__main__":
    main()
