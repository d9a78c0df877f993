"""Scenario 4: memory. A backlog of alerts while the receiver is down
(connection refused), then up: peak RSS, RSS while down, and every alert
delivered once it is back."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from typing import Any

import orjson

from bench.common import Check, Context, Outcome
from bench.daemon import Daemon
from bench.home import SLACK_HOOK, BenchHome, slack_block
from bench.nginx import free_port
from bench.receiver_process import OurReceiver

log = logging.getLogger(__name__)

TARGET_PEAK_MB = 150.0
SAMPLE_S = 0.25
# How long RSS is still sampled once the whole backlog is read with the receiver down.
HOLD_DOWN_S = 10.0
# Short backoffs so that the daemon notices the receiver's return within seconds;
# with the defaults (up to 300 s between probes) the drain would mostly wait.
SETTINGS = """\
metrics_address = "127.0.0.1:{metrics_port}"
grace_period = "2s"

[integrations.slack]
initial_backoff = "0.5s"
max_backoff = "5s"
"""


def health(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            report: dict[str, Any] = orjson.loads(answer.read())
            return report
    except urllib.error.HTTPError as error:
        report = orjson.loads(error.read())
        return report
    except OSError:
        return {}


class Sampler:
    """RSS of the daemon over time, tagged with the phase."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.started = time.monotonic()
        self.samples: list[tuple[float, float, str]] = []
        self._next = 0.0

    def maybe_sample(self, phase: str) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + SAMPLE_S
        rss = self.daemon.memory_kb().get("VmRSS")
        if rss is not None:
            self.samples.append((round(now - self.started, 2), round(rss / 1024, 1), phase))

    def phase(self, name: str) -> list[float]:
        return [rss for _, rss, phase in self.samples if phase == name]


def one_run(context: Context) -> dict[str, Any]:
    sizes = context.sizes
    count = sizes.memory_alerts
    alerts = context.data["memory"]
    size = alerts.stat().st_size
    port, metrics_port = free_port(), free_port()
    with BenchHome() as home:
        home.configure(
            [slack_block(f"http://127.0.0.1:{port}{SLACK_HOOK}")],
            SETTINGS.format(metrics_port=metrics_port),
        )
        daemon = Daemon(home.root, "--from-start", "--alerts", str(alerts)).start()
        sampler = Sampler(daemon)
        try:
            daemon.wait_for_log("Reading")
            down_started = time.monotonic()
            read_all_at = None
            parked = 0
            while time.monotonic() - down_started < sizes.memory_down_max_s:
                sampler.maybe_sample("down")
                report = health(metrics_port)
                offset = (report.get("checkpoint") or {}).get("offset", 0)
                parked = sum(i.get("parked", 0) for i in report.get("integrations", {}).values())
                if read_all_at is None and offset >= size:
                    read_all_at = time.monotonic()
                if read_all_at is not None and time.monotonic() - read_all_at >= HOLD_DOWN_S:
                    break
                time.sleep(SAMPLE_S)
            down_s = time.monotonic() - down_started
            backlog_read_s = (read_all_at - down_started) if read_all_at else None
            hwm_down = daemon.memory_kb().get("VmHWM", 0)
            with OurReceiver(port=port) as receiver:
                up_started = time.monotonic()
                counts = {"requests": 0, "distinct": 0}
                while time.monotonic() - up_started < sizes.memory_up_max_s:
                    sampler.maybe_sample("up")
                    counts = receiver.counts()
                    if counts["distinct"] >= count:
                        break
                    time.sleep(SAMPLE_S)
                drain_s = time.monotonic() - up_started
                hwm = daemon.memory_kb().get("VmHWM", 0)
                finished = daemon.stop()
                counts = receiver.counts()
        finally:
            if not daemon.exited():
                daemon.stop()
    finished.checked()
    down, up = sampler.phase("down"), sampler.phase("up")
    # "Flat" is judged on the steady part: from the first second after start-up on.
    steady_down = [rss for t, rss, phase in sampler.samples if phase == "down" and t >= 2.0]
    return {
        "alerts": count,
        "peak_rss_mb": round(max(hwm, hwm_down) / 1024, 1),
        "peak_rss_mb_while_down": round(hwm_down / 1024, 1),
        "down_rss_min_mb": min(steady_down or down or [0.0]),
        "down_rss_max_mb": max(steady_down or down or [0.0]),
        "up_rss_min_mb": min(up or [0.0]),
        "up_rss_max_mb": max(up or [0.0]),
        "down_s": round(down_s, 1),
        "backlog_read_with_receiver_down_s": round(backlog_read_s, 1) if backlog_read_s else None,
        "parked_when_receiver_came_back": parked,
        "drain_s": round(drain_s, 1),
        "delivered_distinct": counts["distinct"],
        "requests_received": counts["requests"],
        "rss_curve_mb": sampler.samples[:: max(1, len(sampler.samples) // 200)],
    }


def run(context: Context) -> Outcome:
    sizes = context.sizes
    outcome = Outcome("memory", "4. Memory (backlog with the receiver down, then up)")
    runs = []
    for run_number in range(sizes.memory_runs):
        runs.append(one_run(context))
        log.info(
            "memory run %d: %s",
            run_number + 1,
            {k: v for k, v in runs[-1].items() if k != "rss_curve_mb"},
        )
    worst = max(runs, key=lambda r: r["peak_rss_mb"])
    outcome.figures = {**worst, "runs": len(runs)}
    flat_spread = worst["down_rss_max_mb"] - worst["down_rss_min_mb"]
    outcome.checks += [
        Check(
            "peak RSS (VmHWM)",
            worst["peak_rss_mb"],
            "MB",
            f"< {TARGET_PEAK_MB:g}",
            worst["peak_rss_mb"] < TARGET_PEAK_MB,
        ),
        Check(
            "RSS spread while down (max - min)",
            round(flat_spread, 1),
            "MB",
            "flat (< 20)",
            flat_spread < 20,
        ),
        Check(
            "alerts delivered once back",
            min(r["delivered_distinct"] for r in runs),
            "",
            f"= {sizes.memory_alerts:,}",
            all(r["delivered_distinct"] >= sizes.memory_alerts for r in runs),
        ),
    ]
    outcome.notes.append(
        f"{sizes.memory_alerts:,} alerts already in the file, one `slack` block pointing at "
        "a loopback port where nothing listens; `run --from-start` reads the backlog "
        f"(deliveries fail, the circuit opens, alerts are parked in SQLite). RSS "
        f"(VmRSS) sampled every {SAMPLE_S} s; the down phase lasts until the checkpoint "
        f"reaches the end of the file plus {HOLD_DOWN_S:g} s, its min/max ignore the first "
        "2 s (interpreter start-up). Then our receiver starts on that port and counts "
        "distinct alert ids until every one arrived. Peak is VmHWM from /proc. "
        'Settings: `initial_backoff = "0.5s"`, `max_backoff = "5s"` so the daemon '
        "probes the receiver often."
    )
    return outcome
