"""Scenario 6: custom scripts. A thousand alerts through a ``custom-`` shell
script, at the default concurrency and one at a time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from bench.common import Check, Context, Outcome, median, per_s
from bench.daemon import Daemon
from bench.home import BenchHome, custom_block
from bench.script_costs import figures as cost_figures
from bench.script_costs import measure as measure_costs

log = logging.getLogger(__name__)

NAME = "custom-bench"
# What a small real script does: read the alert file, hand it on (here: to a file).
SCRIPT = """#!/bin/sh
# argv: alert file, api_key, hook_url, debug, options file, timeout, retries
cat "$1" >> {out}
"""


def one_run(context: Context, concurrency: int | None) -> dict[str, Any]:
    count = context.sizes.script_alerts
    with BenchHome() as home:
        out = home.root / "delivered.log"
        settings = f"[integrations.{NAME}]\nconcurrency = {concurrency}\n" if concurrency else ""
        home.configure([custom_block(NAME)], settings)
        home.add_script(NAME, SCRIPT.format(out=out))
        daemon = Daemon(home.root, "--once", "--alerts", str(context.data["scripts"]))
        finished = daemon.start().finish(timeout_s=600)
        delivered = _lines(out)
    finished.checked()
    return {
        "seconds": finished.wall_s,
        "cpu_s": finished.cpu_s,
        "delivered": delivered,
        "alerts_per_s": per_s(count, finished.wall_s),
    }


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def run(context: Context) -> Outcome:
    sizes = context.sizes
    count = sizes.script_alerts
    outcome = Outcome("scripts", "6. Custom scripts (default concurrency and one at a time)")
    default_runs, serial_runs = [], []
    for run_number in range(sizes.runs):
        default_runs.append(one_run(context, None))
        serial_runs.append(one_run(context, 1))
        log.info(
            "scripts run %d: default %s, serial %s",
            run_number + 1,
            default_runs[-1],
            serial_runs[-1],
        )
    default_rate = median([r["alerts_per_s"] for r in default_runs])
    serial_rate = median([r["alerts_per_s"] for r in serial_runs])
    delivered = min(r["delivered"] for r in default_runs + serial_runs)
    outcome.figures = {
        "alerts": count,
        "runs": sizes.runs,
        "default_concurrency_alerts_per_s": round(default_rate, 1),
        "default_concurrency_wall_s": round(median([r["seconds"] for r in default_runs]), 2),
        "concurrency_1_alerts_per_s": round(serial_rate, 1),
        "concurrency_1_wall_s": round(median([r["seconds"] for r in serial_runs]), 2),
        "speed_up": round(default_rate / serial_rate, 2),
        "delivered_min": delivered,
    }
    costs = cost_figures(asyncio.run(measure_costs(max(50, count // 3), sizes.runs)))
    log.info("script costs per alert: %s", costs)
    outcome.figures["per_alert_costs_ms"] = costs
    outcome.checks.append(
        Check(
            "alerts through the script, every run",
            delivered,
            "",
            f"= {count:,}",
            delivered == count,
        )
    )
    outcome.notes.append(
        f"{count:,} alerts, one `{NAME}` block with no filter (`alert_format json`), the "
        'script `cat "$1" >> delivered.log` under /bin/sh; `run --once`, whole process '
        "timed. Default concurrency (the script integration's default) against "
        f"`[integrations.{NAME}] concurrency = 1`. Deliveries counted as lines written by "
        "the script. No target: both are reported."
    )
    outcome.notes.append(
        "`per_alert_costs_ms`: one alert at a time, in the bench's own process "
        "(bench/script_costs.py): a bare `subprocess.Popen` of a copy of `true` as the "
        "daemon calls it, `os.posix_spawn` of it, the daemon's whole script path "
        "(`ScriptIntegration.send`) running it (state directory on disk and on tmpfs), "
        "running a `/bin/sh` script, a Python script, and a stock-shaped one (a shell "
        "wrapper exec'ing Python that imports `requests`); wall and CPU (with children) "
        "ms per alert, medians over rounds that take each variant in turn."
    )
    return outcome
