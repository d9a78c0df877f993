"""Scenario 2: delivery throughput. A hundred thousand matching alerts to one
Slack-shaped webhook served by nginx, against the stock model: a new process
per alert, one after another."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Check, Context, Outcome, median, per_s
from bench.daemon import Daemon, Finished
from bench.home import SLACK_HOOK, BenchHome, slack_block
from bench.profiling import profiler_command, summarize
from bench.receivers import fast_receiver

log = logging.getLogger(__name__)

TARGET_ALERTS_PER_S = 5_000
TARGET_VS_STOCK = 500
STOCK_SCRIPT = Path(__file__).resolve().parent.parent / "stock_slack.py"


def stock_model(alerts_path: Path, count: int, hook_url: str) -> float:
    """Seconds for ``count`` alerts the stock way: for each, write it to a temporary
    file, run a fresh interpreter on the script, wait for it, remove the file."""
    with alerts_path.open("rb") as handle:
        lines = list(itertools.islice(handle, count))
    started = time.perf_counter()
    for line in lines:
        descriptor, name = tempfile.mkstemp(prefix="wazuh-integrator-stock-")
        try:
            os.write(descriptor, line)
            os.close(descriptor)
            subprocess.run(
                [sys.executable, str(STOCK_SCRIPT), name, "", hook_url],
                check=True,
                timeout=30,
                stdout=subprocess.DEVNULL,
            )
        finally:
            os.unlink(name)
    return time.perf_counter() - started


def daemon_once(home: BenchHome, alerts: Path, profiler: list[str] | None = None) -> Finished:
    state = home.root / "var"
    if state.exists():  # each run starts with no checkpoint
        shutil.rmtree(state)
    daemon = Daemon(home.root, "--once", "--alerts", str(alerts), profiler=profiler)
    finished = daemon.start().finish(timeout_s=900)
    finished.checked()
    return finished


def run(context: Context) -> Outcome:
    sizes = context.sizes
    count = sizes.delivery_alerts
    alerts = context.data["delivery"]
    outcome = Outcome("delivery", "2. Delivery throughput (Slack webhook on nginx)")
    with fast_receiver(context.nginx) as receiver, BenchHome() as home:
        home.configure([slack_block(receiver.url(SLACK_HOOK))])
        runs: list[Finished] = []
        receiver_cpu: list[float] = []
        for run_number in range(sizes.runs):
            before_served, before_cpu = receiver.served(), receiver.cpu_seconds()
            runs.append(daemon_once(home, alerts))
            served = receiver.served() - before_served
            receiver_cpu.append(receiver.cpu_seconds() - before_cpu)
            if served < count:
                raise RuntimeError(f"receiver got {served} of {count} alerts")
            log.info("delivery run %d: %.2fs", run_number + 1, runs[-1].wall_s)
        stock_s = [
            stock_model(alerts, sizes.stock_alerts, receiver.url(SLACK_HOOK))
            for _ in range(sizes.runs)
        ]
        if context.profile:
            outcome.figures["profile"] = profile(context, home, alerts)
        kind = receiver.kind
    wall_s = median([f.wall_s for f in runs])
    rate = per_s(count, wall_s)
    stock_rate = per_s(sizes.stock_alerts, median(stock_s))
    ratio = rate / stock_rate
    outcome.figures.update(
        {
            "alerts": count,
            "runs": sizes.runs,
            "receiver": kind,
            "daemon_wall_s": round(wall_s, 3),
            "daemon_cpu_s": round(median([f.cpu_s for f in runs]), 3),
            "daemon_max_rss_mb": round(median([f.max_rss_kb for f in runs]) / 1024, 1),
            "receiver_cpu_s": round(median(receiver_cpu), 3),
            "daemon_alerts_per_s": round(rate),
            "stock_alerts": sizes.stock_alerts,
            "stock_wall_s": round(median(stock_s), 3),
            "stock_alerts_per_s": round(stock_rate, 2),
            "ratio_vs_stock": round(ratio, 1),
        }
    )
    outcome.checks += [
        Check(
            "run --once throughput",
            round(rate),
            "alerts/s",
            f"≥ {TARGET_ALERTS_PER_S:,}",
            rate >= TARGET_ALERTS_PER_S,
        ),
        Check(
            "against the stock model",
            round(ratio, 1),
            "x",
            f"≥ {TARGET_VS_STOCK}",
            ratio >= TARGET_VS_STOCK,
        ),
    ]
    outcome.notes.append(
        f"{count:,} alerts, every one matching one `slack` block (default settings: "
        f"concurrency 32, no rate limit) posting to {kind} on 127.0.0.1. Daemon time is "
        "the whole `run --once` process, start-up and drain included; every alert was "
        "counted at the receiver. Stock model: per alert, a temporary file, a new "
        f"`{Path(sys.executable).name}` running `bench/stock_slack.py` (requests), "
        f"waited for, one after another; {sizes.stock_alerts} alerts per run."
    )
    return outcome


def profile(context: Context, home: BenchHome, alerts: Path) -> dict[str, object]:
    output = context.work / "profile-delivery.txt"
    prefix = profiler_command(output)
    if prefix is None:
        return {"error": "py-spy not found"}
    daemon_once(home, alerts, profiler=prefix)
    summary = summarize(output)
    return summary
