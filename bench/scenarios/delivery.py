"""Scenario 2: delivery throughput. A hundred thousand matching alerts to one
Slack-shaped webhook served by nginx, and the same alerts spread over four
Slack blocks; against a bare aiohttp POST loop on uvloop (bench/bare_post.py:
the same bodies to the same nginx, 32 in flight, run between the daemon's runs)
and against the stock model: a new process per alert, one after another."""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.common import Check, Context, Outcome, median, per_s
from bench.daemon import Daemon, Finished
from bench.home import SLACK_HOOK, BenchHome, slack_block
from bench.profiling import profiler_command, summarize
from bench.receivers import Receiver, fast_receiver
from wazuh_integrator.integrations.slack import build_slack_payload

log = logging.getLogger(__name__)

TARGET_ALERTS_PER_S = 5_000
TARGET_VS_STOCK = 500
TARGET_VS_BARE_LOOP = 1.0
BLOCKS = 4
# integrator.toml for the daemon's requests sent from its own process.
IN_PROCESS = "http_processes = 0\n"
STOCK_SCRIPT = Path(__file__).resolve().parent.parent / "stock_slack.py"
BARE_SCRIPT = Path(__file__).resolve().parent.parent / "bare_post.py"


def hook(block: int) -> str:
    return SLACK_HOOK if block == 0 else f"{SLACK_HOOK}{block}"


def spread(alerts_path: Path, count: int, blocks: int) -> dict[str, int]:
    """Each rule id of the first ``count`` alerts to one of ``blocks`` blocks,
    the busiest ids first to the least loaded block, so the blocks get about
    as many alerts each and every alert matches exactly one."""
    per_rule: dict[str, int] = {}
    with alerts_path.open("rb") as handle:
        for line in itertools.islice(handle, count):
            rule_id = json.loads(line)["rule"]["id"]
            per_rule[rule_id] = per_rule.get(rule_id, 0) + 1
    loads = [0] * blocks
    owner: dict[str, int] = {}
    for rule_id, seen in sorted(per_rule.items(), key=lambda item: -item[1]):
        block = loads.index(min(loads))
        owner[rule_id] = block
        loads[block] += seen
    return owner


def spread_blocks(receiver: Receiver, owner: dict[str, int], blocks: int) -> list[str]:
    ids: list[list[str]] = [[] for _ in range(blocks)]
    for rule_id, block in owner.items():
        ids[block].append(rule_id)
    return [
        slack_block(receiver.url(hook(n)), f"<rule_id>{','.join(ids[n])}</rule_id>")
        for n in range(blocks)
    ]


def bodies_file(
    alerts_path: Path, count: int, receiver: Receiver, owner: dict[str, int] | None, out: Path
) -> Path:
    """The requests the daemon sends for these alerts, as ``<url>\t<body>`` lines:
    the Slack payload of each alert (options empty, as in the blocks here),
    to the one hook or to its rule's block."""
    with alerts_path.open("rb") as handle, out.open("wb") as written:
        for line in itertools.islice(handle, count):
            alert = orjson.loads(line)
            block = 0 if owner is None else owner[alert["rule"]["id"]]
            url = receiver.url(hook(block))
            written.write(url.encode() + b"\t" + orjson.dumps(build_slack_payload(alert, {})))
            written.write(b"\n")
    return out


def bare_loop(bodies: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the bare loop's sending (its start-up and the
    reading of the bodies excluded: the daemon's figures include both)."""
    done = subprocess.run(
        [sys.executable, str(BARE_SCRIPT), str(bodies)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    figures = json.loads(done.stdout)
    return float(figures["wall_s"]), float(figures["cpu_s"])


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
    owner = spread(alerts, count, BLOCKS)
    with fast_receiver(context.nginx) as receiver, BenchHome() as home:
        one_block = [slack_block(receiver.url(SLACK_HOOK))]
        four_blocks = spread_blocks(receiver, owner, BLOCKS)
        bodies_one = bodies_file(alerts, count, receiver, None, context.work / "bodies-1.txt")
        bodies_four = bodies_file(alerts, count, receiver, owner, context.work / "bodies-4.txt")
        runs: list[Finished] = []
        runs_four: list[Finished] = []
        runs_in_process: list[Finished] = []
        bare: list[tuple[float, float]] = []
        bare_four: list[tuple[float, float]] = []
        receiver_cpu: list[float] = []
        for run_number in range(sizes.runs):
            # A/B/A/B: each daemon run beside a bare loop of the same requests.
            home.configure(one_block)
            before_served, before_cpu = receiver.served(), receiver.cpu_seconds()
            runs.append(daemon_once(home, alerts))
            served = receiver.served() - before_served
            receiver_cpu.append(receiver.cpu_seconds() - before_cpu)
            if served < count:
                raise RuntimeError(f"receiver got {served} of {count} alerts")
            bare.append(bare_loop(bodies_one))
            # The same with the HTTP requests sent from the daemon's own process.
            home.configure(one_block, IN_PROCESS)
            before_served = receiver.served()
            runs_in_process.append(daemon_once(home, alerts))
            if receiver.served() - before_served < count:
                raise RuntimeError("receiver missed alerts (requests sent in process)")
            home.configure(four_blocks)
            before_served = receiver.served()
            runs_four.append(daemon_once(home, alerts))
            served = receiver.served() - before_served
            if served < count:
                raise RuntimeError(f"receiver got {served} of {count} alerts (four blocks)")
            bare_four.append(bare_loop(bodies_four))
            log.info(
                "delivery run %d: %.2fs (bare loop %.2fs, in process %.2fs), "
                "four blocks %.2fs (bare loop %.2fs)",
                run_number + 1,
                runs[-1].wall_s,
                bare[-1][0],
                runs_in_process[-1].wall_s,
                runs_four[-1].wall_s,
                bare_four[-1][0],
            )
        home.configure(one_block)
        stock_s = [
            stock_model(alerts, sizes.stock_alerts, receiver.url(SLACK_HOOK))
            for _ in range(sizes.runs)
        ]
        if context.profile:
            outcome.figures["profile"] = profile(context, home, alerts)
        kind = receiver.kind
    wall_s = median([f.wall_s for f in runs])
    rate = per_s(count, wall_s)
    four_rate = per_s(count, median([f.wall_s for f in runs_four]))
    bare_rate = per_s(count, median([wall for wall, _ in bare]))
    bare_four_rate = per_s(count, median([wall for wall, _ in bare_four]))
    stock_rate = per_s(sizes.stock_alerts, median(stock_s))
    ratio = rate / stock_rate
    cpu_s = median([f.cpu_s for f in runs])
    bare_cpu_s = median([cpu for _, cpu in bare])
    in_process_wall_s = median([f.wall_s for f in runs_in_process])
    in_process_cpu_s = median([f.cpu_s for f in runs_in_process])
    outcome.figures.update(
        {
            "alerts": count,
            "runs": sizes.runs,
            "receiver": kind,
            "daemon_wall_s": round(wall_s, 3),
            "daemon_cpu_s": round(cpu_s, 3),
            "daemon_cpu_us_per_alert": round(cpu_s / count * 1e6, 1),
            "daemon_max_rss_mb": round(median([f.max_rss_kb for f in runs]) / 1024, 1),
            "receiver_cpu_s": round(median(receiver_cpu), 3),
            "in_process_daemon_wall_s": round(in_process_wall_s, 3),
            "in_process_daemon_cpu_s": round(in_process_cpu_s, 3),
            "in_process_daemon_cpu_us_per_alert": round(in_process_cpu_s / count * 1e6, 1),
            "in_process_daemon_alerts_per_s": round(per_s(count, in_process_wall_s)),
            "in_process_ratio_vs_bare_loop": round(per_s(count, in_process_wall_s) / bare_rate, 2),
            "daemon_alerts_per_s": round(rate),
            "bare_loop_wall_s": round(median([wall for wall, _ in bare]), 3),
            "bare_loop_cpu_s": round(bare_cpu_s, 3),
            "bare_loop_cpu_us_per_alert": round(bare_cpu_s / count * 1e6, 1),
            "bare_loop_alerts_per_s": round(bare_rate),
            "ratio_vs_bare_loop": round(rate / bare_rate, 2),
            "four_blocks_daemon_wall_s": round(median([f.wall_s for f in runs_four]), 3),
            "four_blocks_daemon_cpu_s": round(median([f.cpu_s for f in runs_four]), 3),
            "four_blocks_daemon_alerts_per_s": round(four_rate),
            "four_blocks_bare_loop_alerts_per_s": round(bare_four_rate),
            "four_blocks_ratio_vs_bare_loop": round(four_rate / bare_four_rate, 2),
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
            "against a bare aiohttp loop on uvloop, one block",
            round(rate / bare_rate, 2),
            "x",
            f"≥ {TARGET_VS_BARE_LOOP}",
            rate / bare_rate >= TARGET_VS_BARE_LOOP,
        ),
        Check(
            f"against a bare aiohttp loop on uvloop, {BLOCKS} blocks",
            round(four_rate / bare_four_rate, 2),
            "x",
            f"≥ {TARGET_VS_BARE_LOOP}",
            four_rate / bare_four_rate >= TARGET_VS_BARE_LOOP,
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
        f"concurrency 32, no rate limit) posting to {kind} on 127.0.0.1; then the same "
        f"alerts spread over {BLOCKS} `slack` blocks by `<rule_id>` (each alert matches one). "
        "Daemon time is the whole `run --once` process, start-up and drain included, and its "
        'CPU includes its HTTP transport process (`http_processes = "auto"`, the default: '
        "one on this machine); the `in_process_*` figures are the same one-block run with "
        "`http_processes = 0`, run after each default one. Every "
        "alert was counted at the receiver. Bare loop (`bench/bare_post.py`): one aiohttp "
        "session on uvloop, 32 POSTs in flight, the same bodies to the same URLs, built in "
        "advance; its time is the sending alone. Each daemon run is followed by a bare loop "
        "run of the same requests. Stock model: per alert, a temporary file, a new "
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
