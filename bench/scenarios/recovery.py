"""Scenario 10: recovery after an outage. The receiver answers 500 for 8 s
(then, once, for 60 s) while 500 alerts a second stream into a running
daemon with default settings; how soon after the receiver's return the first
alert arrives, and how soon the whole backlog is in.

The receiver and the measurement are the fault suite's
(tests/reliability/receiver.py and outage.py): the same run that
tests/reliability/test_outages.py checks with looser bounds."""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

from tests.reliability.harness import ReceiverProcess
from tests.reliability.outage import OutageFigures, measure_outage

from bench.common import Check, Context, Outcome, median

log = logging.getLogger(__name__)

RATE_PER_S = 500.0
SHORT_OUTAGE_S = 8.0
LONG_OUTAGE_S = 60.0
TARGET_FIRST_AFTER_SHORT_S = 6.0
TARGET_BACKLOG_AFTER_SHORT_S = 20.0
TARGET_FIRST_AFTER_LONG_S = 35.0


async def _one(outage_s: float) -> OutageFigures:
    homes: list[Path] = []
    try:
        async with ReceiverProcess() as receiver:
            return await measure_outage(receiver, homes, outage_s=outage_s, per_s=RATE_PER_S)
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)


def _seconds(value: float | None) -> float:
    return float("inf") if value is None else round(value, 2)


def run(context: Context) -> Outcome:
    outcome = Outcome("recovery", "10. Recovery after an outage (500 alerts/s, HTTP 500)")
    short_runs = []
    for number in range(context.sizes.runs):
        short_runs.append(asyncio.run(_one(SHORT_OUTAGE_S)))
        log.info("recovery, %g s outage, run %d: %s", SHORT_OUTAGE_S, number + 1, short_runs[-1])
    long_run = asyncio.run(_one(LONG_OUTAGE_S))
    log.info("recovery, %g s outage: %s", LONG_OUTAGE_S, long_run)
    first_short = median([_seconds(r.first_delivery_s) for r in short_runs])
    backlog_short = median([_seconds(r.backlog_drained_s) for r in short_runs])
    first_long = _seconds(long_run.first_delivery_s)
    lost = sum(r.missing + r.dead_lettered for r in [*short_runs, long_run])
    outcome.figures = {
        "rate_per_s": RATE_PER_S,
        "short_outage_s": SHORT_OUTAGE_S,
        "long_outage_s": LONG_OUTAGE_S,
        "runs_short": len(short_runs),
        "first_delivery_after_short_s": first_short,
        "backlog_after_short_s": backlog_short,
        "worst_backlog_after_short_s": max(_seconds(r.backlog_drained_s) for r in short_runs),
        "first_delivery_after_long_s": first_long,
        "backlog_after_long_s": _seconds(long_run.backlog_drained_s),
        "backlog_alerts_long": long_run.backlog,
        "per_run": [asdict(r) for r in [*short_runs, long_run]],
    }
    outcome.checks += [
        Check(
            f"first delivery after {SHORT_OUTAGE_S:g} s down",
            first_short,
            "s",
            f"≤ {TARGET_FIRST_AFTER_SHORT_S:g}",
            first_short <= TARGET_FIRST_AFTER_SHORT_S,
        ),
        Check(
            f"whole backlog after {SHORT_OUTAGE_S:g} s down",
            backlog_short,
            "s",
            f"≤ {TARGET_BACKLOG_AFTER_SHORT_S:g}",
            backlog_short <= TARGET_BACKLOG_AFTER_SHORT_S,
        ),
        Check(
            f"first delivery after {LONG_OUTAGE_S:g} s down",
            first_long,
            "s",
            f"≤ {TARGET_FIRST_AFTER_LONG_S:g}",
            first_long <= TARGET_FIRST_AFTER_LONG_S,
        ),
        Check("alerts lost or given up", lost, "", "0", lost == 0),
    ]
    outcome.notes.append(
        f"A running `run` with one `slack` block and every default (32 sends at once,"
        f" initial_backoff 1 s, max_backoff 5 min); {RATE_PER_S:g} alerts/s written to"
        " alerts.json in bursts of a tenth of a second, so that every send slot is busy"
        " when the receiver starts answering 500 (after 50 ms each). The receiver"
        " (tests/reliability/receiver.py, its own process) times the outage and the"
        " first 200 of each alert; times are from its return. The backlog is every alert"
        f" written before it came back. Medians over {len(short_runs)} runs of the"
        f" {SHORT_OUTAGE_S:g} s outage, one run of the {LONG_OUTAGE_S:g} s one."
    )
    return outcome
