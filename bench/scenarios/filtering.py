"""Scenario 1: filtering throughput. A million real-shaped alerts, none of
which match, through ``run --once``, against a bare loop that only decodes
the same lines with orjson."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson

from bench.common import Check, Context, Outcome, median, per_s
from bench.daemon import Daemon, Finished
from bench.home import SHUFFLE_HOOK, SLACK_HOOK, BenchHome, custom_block, shuffle_block, slack_block
from bench.nginx import free_port
from bench.profiling import profiler_command, summarize

log = logging.getLogger(__name__)

TARGET_RATIO = 1.0  # issue 13: the partial decode does less than a full one
# Filters as administrators write them, chosen so that no generated alert
# passes: each block is still evaluated in full for every alert.
NO_MATCH_BLOCKS = (
    ("slack", "<level>12</level><group>authentication_failures,attack</group>"),
    ("shuffle", "<rule_id>100200,100201,100202</rule_id>"),
    ("custom-bench", "<event_location>^/var/log/secure$|^C:\\Windows\\Temp</event_location>"),
)


def orjson_baseline(path: Path) -> float:
    """Seconds for the bare loop: read each line and decode it with orjson."""
    started = time.perf_counter()
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
            count += 1
    return time.perf_counter() - started


def _home(port: int) -> BenchHome:
    home = BenchHome()
    # Nothing listens on ``port``: a delivery would fail loudly, and none may happen.
    url = f"http://127.0.0.1:{port}"
    blocks = {
        "slack": slack_block(url + SLACK_HOOK, NO_MATCH_BLOCKS[0][1]),
        "shuffle": shuffle_block(url + SHUFFLE_HOOK, NO_MATCH_BLOCKS[1][1]),
        "custom-bench": custom_block("custom-bench", NO_MATCH_BLOCKS[2][1]),
    }
    home.configure(list(blocks.values()))
    home.add_script("custom-bench", "#!/bin/sh\nexit 0\n")
    return home


def daemon_once(path: Path, port: int, profiler: list[str] | None = None) -> Finished:
    with _home(port) as home:
        daemon = Daemon(home.root, "--once", "--alerts", str(path), profiler=profiler)
        finished = daemon.start().finish(timeout_s=900)
    finished.checked()
    return finished


def run(context: Context) -> Outcome:
    sizes = context.sizes
    count = sizes.filter_alerts
    path = context.data["backlog"]
    outcome = Outcome("filtering", "1. Filtering throughput (none matching)")
    port = free_port()
    empty = context.work / "empty.json"
    empty.write_bytes(b"")
    startup = [daemon_once(empty, port).wall_s for _ in range(sizes.runs)]
    baseline_s: list[float] = []
    daemon_runs: list[Finished] = []
    for run_number in range(sizes.runs):
        # Interleaved, so that both see the same machine state.
        baseline_s.append(orjson_baseline(path))
        daemon_runs.append(daemon_once(path, port))
        log.info(
            "filtering run %d: baseline %.2fs, daemon %.2fs",
            run_number + 1,
            baseline_s[-1],
            daemon_runs[-1].wall_s,
        )
    for finished in daemon_runs:
        if "Traceback" in finished.log or "ERROR" in finished.log:
            raise RuntimeError(f"filtering run logged an error:\n{finished.log[-3000:]}")
    wall_s = median([f.wall_s for f in daemon_runs])
    base_s = median(baseline_s)
    start_s = median(startup)
    daemon_rate = per_s(count, wall_s)
    baseline_rate = per_s(count, base_s)
    ratio = daemon_rate / baseline_rate
    outcome.figures = {
        "alerts": count,
        "runs": sizes.runs,
        "file_bytes": path.stat().st_size,
        "daemon_wall_s": round(wall_s, 3),
        "daemon_cpu_s": round(median([f.cpu_s for f in daemon_runs]), 3),
        "daemon_max_rss_mb": round(median([f.max_rss_kb for f in daemon_runs]) / 1024, 1),
        "daemon_alerts_per_s": round(daemon_rate),
        "daemon_startup_s": round(start_s, 3),
        "daemon_alerts_per_s_after_startup": round(per_s(count, wall_s - start_s)),
        "orjson_loop_s": round(base_s, 3),
        "orjson_loop_alerts_per_s": round(baseline_rate),
        "ratio": round(ratio, 3),
    }
    outcome.checks.append(
        Check(
            "run --once / bare orjson loop",
            round(ratio, 3),
            "x",
            f"≥ {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
        )
    )
    outcome.notes.append(
        f"{count:,} alerts ({path.stat().st_size / count:.0f} B average), three blocks "
        "(slack, shuffle, custom) whose filters no alert passes. Daemon time is the "
        "whole `run --once` process, start-up included "
        f"(start-up alone, on an empty file: {start_s:.2f} s). The baseline reads the "
        "same file line by line and calls `orjson.loads` on each, in the benchmark's "
        "process, interleaved with the daemon runs."
    )
    if context.profile:
        outcome.figures["profile"] = profile(context, path, port)
    return outcome


def profile(context: Context, path: Path, port: int) -> dict[str, object]:
    output = context.work / "profile-filtering.txt"
    prefix = profiler_command(output)
    if prefix is None:
        return {"error": "py-spy not found"}
    daemon_once(path, port, profiler=prefix)
    summary = summarize(output)
    return summary
