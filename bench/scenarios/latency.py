"""Scenario 3: latency. Alerts appended at a steady rate to a running
``wazuh-integrator run``; the time from each append to its receipt at the
receiver, matched by the alert id, which carries the append time."""

from __future__ import annotations

import itertools
import logging
import os
import time

import orjson

from bench.alerts import alerts
from bench.common import Check, Context, Outcome, median
from bench.daemon import Daemon
from bench.home import SLACK_HOOK, BenchHome, slack_block
from bench.receiver_process import OurReceiver

log = logging.getLogger(__name__)

TARGET_P99_MS = 50.0
# Issue 13's goal, at 1,000 alerts/s.
GOAL_P50_MS = 2.0
GOAL_P99_MS = 10.0
_ID_HOLE = "__BENCH_ID__"
TEMPLATES = 100


def _line_parts() -> list[tuple[bytes, bytes]]:
    """Real-shaped alert lines split around their id, so appending costs a join."""
    parts = []
    for alert in alerts(TEMPLATES, seed=11):
        alert["id"] = _ID_HOLE
        before, after = orjson.dumps(alert).split(_ID_HOLE.encode())
        parts.append((before, after + b"\n"))
    return parts


def append_steadily(path: os.PathLike[str], rate_per_s: int, duration_s: float) -> int:
    """Append ``rate_per_s`` alerts a second for ``duration_s``, one write each, the
    id of each being ``<CLOCK_MONOTONIC ns at the write>.<sequence>``. Returns the count."""
    parts = _line_parts()
    total = int(rate_per_s * duration_s)
    interval_ns = 1_000_000_000 // rate_per_s
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        start_ns = time.monotonic_ns() + 50_000_000
        for sequence, (before, after) in zip(range(total), itertools.cycle(parts)):
            wait_ns = start_ns + sequence * interval_ns - time.monotonic_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
            stamp = time.monotonic_ns()
            os.write(descriptor, b"%s%d.%d%s" % (before, stamp, sequence, after))
    finally:
        os.close(descriptor)
    return total


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def one_run(context: Context, follow: str = "auto") -> dict[str, float]:
    sizes = context.sizes
    record = context.work / "latency-receipts.json"
    with BenchHome() as home, OurReceiver(record=record) as receiver:
        home.configure([slack_block(receiver.url(SLACK_HOOK))], settings=f'follow = "{follow}"\n')
        home.alerts.write_bytes(b"")
        daemon = Daemon(home.root).start()
        try:
            daemon.wait_for_log("Reading")
            total = append_steadily(home.alerts, sizes.latency_rate_per_s, sizes.latency_duration_s)
            deadline = time.monotonic() + 30
            while receiver.served() < total and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            finished = daemon.stop()
        recorded = receiver.stop()
    finished.checked()
    latencies_ms = sorted(
        (received_ns - int(alert_id.split(".")[0])) / 1e6
        for received_ns, alert_id in recorded["receipts"]
    )
    received_ids = {alert_id for _, alert_id in recorded["receipts"]}
    return {
        "appended": total,
        "received": len(received_ids),
        "p50_ms": percentile(latencies_ms, 0.50),
        "p99_ms": percentile(latencies_ms, 0.99),
        "max_ms": latencies_ms[-1],
        "daemon_cpu_s": finished.cpu_s,
    }


def run(context: Context) -> Outcome:
    sizes = context.sizes
    outcome = Outcome("latency", "3. Latency (steady appends to a running daemon)")
    runs = []
    polled = []
    # The 10 ms poll (follow = "poll") as the baseline, run in turn with the
    # default (inotify), so that both see the same load on the machine.
    for run_number in range(sizes.long_runs):
        polled.append(one_run(context, follow="poll"))
        log.info("latency run %d, polling: %s", run_number + 1, polled[-1])
        runs.append(one_run(context))
        log.info("latency run %d, inotify: %s", run_number + 1, runs[-1])
    p50 = median([r["p50_ms"] for r in runs])
    p99 = median([r["p99_ms"] for r in runs])
    lost = sum(r["appended"] - r["received"] for r in runs + polled)
    outcome.figures = {
        "rate_per_s": sizes.latency_rate_per_s,
        "duration_s": sizes.latency_duration_s,
        "runs": len(runs),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(median([r["max_ms"] for r in runs]), 2),
        "worst_max_ms": round(max(r["max_ms"] for r in runs), 2),
        "daemon_cpu_s_per_run": round(median([r["daemon_cpu_s"] for r in runs]), 2),
        "not_received": lost,
        "per_run": [{k: round(v, 2) for k, v in r.items()} for r in runs],
        "poll_p50_ms": round(median([r["p50_ms"] for r in polled]), 2),
        "poll_p99_ms": round(median([r["p99_ms"] for r in polled]), 2),
        "poll_daemon_cpu_s_per_run": round(median([r["daemon_cpu_s"] for r in polled]), 2),
        "poll_per_run": [{k: round(v, 2) for k, v in r.items()} for r in polled],
    }
    outcome.checks += [
        Check(
            "p99 append → receipt", round(p99, 2), "ms", f"< {TARGET_P99_MS:g}", p99 < TARGET_P99_MS
        ),
        Check(
            "p50 append → receipt (goal)",
            round(p50, 2),
            "ms",
            f"≤ {GOAL_P50_MS:g}",
            p50 <= GOAL_P50_MS,
        ),
        Check(
            "p99 append → receipt (goal)",
            round(p99, 2),
            "ms",
            f"≤ {GOAL_P99_MS:g}",
            p99 <= GOAL_P99_MS,
        ),
        Check("alerts not received", lost, "", "0", lost == 0),
    ]
    outcome.notes.append(
        f"{sizes.latency_rate_per_s:,} alerts/s for {sizes.latency_duration_s:g} s, one "
        "`write` per alert to alerts.json (as analysisd appends), to a `run` started "
        "before the first append; one `slack` block with default settings. The receiver "
        "is ours (bench/receiver.py), in its own process, taking the receipt time from "
        "CLOCK_MONOTONIC when a request's body is complete; the append time is "
        "CLOCK_MONOTONIC just before the write, carried in the alert id. Figures are "
        "medians over runs of each run's percentile. `poll_*`: the same runs with "
        '`follow = "poll"` (a check every 10 ms instead of inotify), run in turn with them.'
    )
    return outcome
