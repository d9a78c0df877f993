"""Scenario 5: isolation. Two integrations, one receiver answering after
500 ms, the other at once: the fast one's throughput with the slow one beside
it, against the fast one alone."""

from __future__ import annotations

import logging
import time
from typing import Any

from bench.common import Check, Context, Outcome, median, per_s
from bench.daemon import Daemon
from bench.home import SHUFFLE_HOOK, SLACK_HOOK, BenchHome, shuffle_block, slack_block
from bench.receiver_process import OurReceiver
from bench.receivers import Receiver, fast_receiver

log = logging.getLogger(__name__)

TARGET_KEPT = 0.90
SLOW_DELAY_MS = 500
POLL_S = 0.05
SETTINGS = 'grace_period = "1s"\n'


def time_fast(
    context: Context, fast: Receiver, blocks: list[str], timeout_s: float
) -> dict[str, Any]:
    """Seconds from the daemon's start until the fast receiver got every alert
    (or what it got by ``timeout_s``)."""
    count = context.sizes.isolation_alerts
    with BenchHome() as home:
        home.configure(blocks, SETTINGS)
        before = fast.served()
        daemon = Daemon(
            home.root, "--from-start", "--alerts", str(context.data["isolation"])
        ).start()
        try:
            got = 0
            while time.monotonic() - daemon.started_at < timeout_s:
                got = fast.served() - before
                if got >= count:
                    break
                time.sleep(POLL_S)
            elapsed_s = time.monotonic() - daemon.started_at
            cpu_at_done_s = daemon.cpu_seconds()
        finally:
            finished = daemon.stop()
    finished.checked()
    return {
        "received": got,
        "seconds": elapsed_s,
        "alerts_per_s": per_s(got, elapsed_s),
        "daemon_cpu_s": cpu_at_done_s,
    }


def run(context: Context) -> Outcome:
    sizes = context.sizes
    count = sizes.isolation_alerts
    outcome = Outcome("isolation", "5. Isolation (a 500 ms receiver beside a fast one)")
    alone: list[dict[str, Any]] = []
    beside: list[dict[str, Any]] = []
    with fast_receiver(context.nginx) as fast, OurReceiver(delay_ms=SLOW_DELAY_MS) as slow:
        fast_block = slack_block(fast.url(SLACK_HOOK))
        slow_block = shuffle_block(slow.url(SHUFFLE_HOOK))
        for run_number in range(sizes.runs):
            alone.append(time_fast(context, fast, [fast_block], timeout_s=300))
            # Bounded: a fast integration held back by the slow one would take hours.
            limit_s = max(30.0, 5 * alone[-1]["seconds"])
            beside.append(time_fast(context, fast, [fast_block, slow_block], limit_s))
            log.info("isolation run %d: alone %s, beside %s", run_number + 1, alone[-1], beside[-1])
        slow_served = slow.served()
        kind = fast.kind
    alone_rate = median([r["alerts_per_s"] for r in alone])
    beside_rate = median([r["alerts_per_s"] for r in beside])
    kept = beside_rate / alone_rate
    outcome.figures = {
        "alerts": count,
        "runs": sizes.runs,
        "fast_receiver": kind,
        "fast_alone_alerts_per_s": round(alone_rate),
        "fast_beside_slow_alerts_per_s": round(beside_rate),
        "fast_beside_slow_received": min(r["received"] for r in beside),
        "slow_receiver_requests_total": slow_served,
        "kept": round(kept, 3),
    }
    outcome.checks.append(
        Check(
            "fast integration's throughput kept",
            round(kept, 3),
            "x",
            f"≥ {TARGET_KEPT}",
            kept >= TARGET_KEPT,
        )
    )
    outcome.notes.append(
        f"{count:,} alerts, each matching both a `slack` block ({kind}, answers at once) "
        f"and a `shuffle` block (our receiver, answers after {SLOW_DELAY_MS} ms), default "
        "settings (concurrency 32, queue 256 each). Throughput of the fast one = alerts "
        "it received / seconds from the daemon's start until it had them all, alone "
        "(only the slack block) and beside the slow one; the second is bounded at five "
        "times the first (at least 30 s) and counts what arrived by then."
    )
    return outcome
