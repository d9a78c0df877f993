"""SIGKILL at random moments while alerts stream in and alerts.json rotates:
after the last restart every alert is delivered at least once (at-least-once
allows duplicates, which are counted).

After a restart the daemon reads the checkpoint's file, the dated files
written after it and the current one (docs/source.md). Killed every second or
two under load, the checkpoint can lag a file or more behind the stream (each
restart reads the same backlog again); before the dated files in between were
read, a run rotating every 5 s lost two whole files. The long case rotates
every 1,000 alerts (about every 3 s, far more often than Wazuh's daily
rotation) so that it keeps proving they are.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest
from tests.reliability.conftest import FaultReport
from tests.reliability.harness import (
    AlertStream,
    Daemon,
    ReceiverProcess,
    fault_home,
    wait_accounted,
    wait_serving,
)

pytestmark = pytest.mark.timeout(600)


async def kill_cycles(
    receiver: ReceiverProcess,
    homes: list[Path],
    fault_report: FaultReport,
    *,
    cycles: int,
    rotate_every: int,
) -> None:
    rng = random.Random(cycles)  # the same moments every run, different per size
    home = fault_home(receiver.url())
    homes.append(home)
    # Answers a little slow, so that a kill often finds sends in flight.
    await receiver.fault("status", status=200, delay_s=0.02)
    stream = AlertStream(home, per_s=300.0, burst=30, rotate_every=rotate_every)
    stream.start()
    try:
        for cycle in range(cycles):
            daemon = Daemon(home, ["--from-start"])
            await daemon.start()
            # Anywhere from mid-start-up to well into delivery.
            await asyncio.sleep(rng.uniform(0.3, 3.0))
            code = await daemon.stop(signal.SIGKILL)
            assert code == -signal.SIGKILL, f"cycle {cycle}: {daemon.log()[-2000:]}"
    finally:
        await stream.stop()
    await receiver.fault("ok")
    daemon = Daemon(home, ["--from-start"])
    restarted_at = time.time()
    await daemon.start()
    try:
        await wait_serving(home)
        result = await wait_accounted(home, receiver, stream.written, timeout_s=120, daemon=daemon)
    finally:
        code = await daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log()[-2000:]
    assert result.complete, result.summary()
    assert not result.dead_letters
    assert stream.rotations >= 1
    recovery_s = result.stats.all_delivered_after_s(stream.written, restarted_at)
    fault_report(
        f"SIGKILL at random moments, {cycles} times, while {len(stream.written)} alerts"
        f" streamed and alerts.json rotated {stream.rotations} times",
        f"{len(result.delivered)}/{result.written} delivered at least once, 0 dead letters",
        tries=cycles,
        recovery_s=recovery_s,
        duplicates=result.duplicates,
        section="Crashes",
    )


async def test_a_few_kills_lose_nothing(
    fault_receiver: ReceiverProcess, homes: list[Path], fault_report: FaultReport
) -> None:
    await kill_cycles(fault_receiver, homes, fault_report, cycles=5, rotate_every=2_000)


@pytest.mark.long
async def test_fifty_kills_lose_nothing(
    fault_receiver: ReceiverProcess, homes: list[Path], fault_report: FaultReport
) -> None:
    await kill_cycles(fault_receiver, homes, fault_report, cycles=50, rotate_every=1_000)
