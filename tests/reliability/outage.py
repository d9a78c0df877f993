"""An outage measured in time, under a steady stream of alerts: the scenario
that ``test_outages`` checks and ``bench/scenarios/recovery.py`` reports.

The daemon runs with every default (the Slack block's 32 sends at once,
``initial_backoff`` 1 s, ``max_backoff`` 5 min). Alerts are written ``per_s``
a second in bursts of a tenth of a second, so that every send slot is busy
when the receiver starts failing; it answers 500 after ``fail_delay_s`` for
``outage_s`` seconds (timed in the receiver's process), then 200 again.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.harness import (
    AlertStream,
    Daemon,
    ReceiverProcess,
    delivery_attempts,
    fault_home,
    wait_accounted,
)

__all__ = ["OutageFigures", "measure_outage"]


@dataclass(frozen=True)
class OutageFigures:
    outage_s: float
    per_s: float
    written: int
    delivered: int
    dead_lettered: int
    missing: int
    duplicates: int
    backlog: int  # alerts written before the receiver came back
    failed_attempts: int
    first_delivery_s: float | None  # from the receiver's return to the first 200
    backlog_drained_s: float | None  # from the receiver's return until the backlog was all in
    exit_code: int


async def measure_outage(
    receiver: ReceiverProcess,
    homes: list[Path],
    *,
    outage_s: float,
    per_s: float = 500.0,
    before_s: float = 2.0,
    after_s: float = 5.0,
    fail_delay_s: float = 0.05,
    drain_timeout_s: float = 120.0,
) -> OutageFigures:
    home = fault_home(receiver.url())
    homes.append(home)
    stream = AlertStream(home, per_s=per_s, burst=max(1, int(per_s / 10)))
    daemon = Daemon(home, ["--from-start"])
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading", timeout_s=30)
        stream.start()
        await asyncio.sleep(before_s)
        await receiver.fault("status", status=500, for_s=outage_s, delay_s=fail_delay_s)
        # The receiver ends the outage itself; wait for that, then stream on a while.
        while (await receiver.stats()).fault_ended_at is None:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.1)
        await asyncio.sleep(after_s)
        await stream.stop()
        result = await wait_accounted(
            home, receiver, stream.written, timeout_s=drain_timeout_s, daemon=daemon
        )
        attempts = await delivery_attempts(home)
    finally:
        await stream.stop()
        code = await daemon.stop(signal.SIGTERM)
    stats = result.stats
    assert stats.fault_ended_at is not None
    backlog = stream.written_before(stats.fault_ended_at)
    return OutageFigures(
        outage_s=outage_s,
        per_s=per_s,
        written=result.written,
        delivered=len(result.delivered),
        dead_lettered=len(result.dead_letters),
        missing=len(result.missing),
        duplicates=result.duplicates,
        backlog=len(backlog),
        failed_attempts=attempts - len(result.delivered),
        first_delivery_s=stats.first_delivery_after_s(stats.fault_ended_at),
        backlog_drained_s=stats.all_delivered_after_s(backlog, stats.fault_ended_at),
        exit_code=code,
    )
