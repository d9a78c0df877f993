"""Scenario 9: cluster mode. The delivery scenario's alerts to the same
webhook, by the single-process daemon and then by one reader feeding 1, 2
and 4 workers through a local redis-server. Each cluster run times from the
reader's start until the receiver has counted every alert."""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from bench.alerts import write_alerts
from bench.common import Check, Context, Outcome, median, per_s
from bench.daemon import Daemon
from bench.home import SLACK_HOOK, BenchHome, slack_block
from bench.receivers import Receiver, fast_receiver
from bench.redis_server import RedisServer, redis_binary
from bench.scenarios.delivery import daemon_once

log = logging.getLogger(__name__)

WORKER_COUNTS = (1, 2, 4)
TIMEOUT_S = 900.0


def cluster_settings(url: str) -> str:
    return f'[cluster]\nredis_url = "{url}"\nnode = "bench"\n'


def cluster_run(
    homes: tuple[BenchHome, BenchHome],
    redis: RedisServer,
    receiver: Receiver,
    workers: int,
    count: int,
    alerts: str,
) -> tuple[float, float]:
    """(seconds until every alert was received, seconds the reader took)."""
    home, reader_home = homes
    redis.flush()
    state = reader_home.root / "var"
    if state.exists():  # no checkpoint: the reader reads the file from its start
        shutil.rmtree(state)
    started_workers = [Daemon(home.root, "--role", "worker").start() for _ in range(workers)]
    try:
        for worker in started_workers:
            worker.wait_for_log("delivering from stream", 60)
        before = receiver.served()
        reader = Daemon(reader_home.root, "--role", "reader", "--once", "--alerts", alerts)
        reader.start()
        started = time.monotonic()
        reader_s = 0.0
        assert reader.process is not None
        while receiver.served() - before < count:
            if reader_s == 0.0 and reader.process.poll() is not None:
                if reader.process.returncode != 0:
                    raise RuntimeError(f"reader exited {reader.process.returncode}")
                reader_s = time.monotonic() - started
            if time.monotonic() - started > TIMEOUT_S:
                raise RuntimeError(f"cluster with {workers} workers: timed out")
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        if reader_s == 0.0:
            reader.process.wait(60)
            reader_s = time.monotonic() - started
        return elapsed, reader_s
    finally:
        for worker in started_workers:
            worker.stop(60)


THROTTLE = '[integrations.slack.throttle]\nkey = ["agent.id"]\nwindow = "1h"\nlimit = 2\n'
DRAIN_ALERTS = 30_000


def acknowledged(client: Any) -> int:
    """Entries of the stream the group has read and acknowledged."""
    try:
        groups = client.xinfo_groups("wazuh-integrator:alerts")
    except RedisError:  # no stream yet
        return 0
    return sum(int(group["entries-read"] or 0) - int(group["pending"]) for group in groups)


def drain_run(
    homes: tuple[BenchHome, BenchHome], redis: RedisServer, count: int, alerts: str
) -> tuple[float, float]:
    """(worker CPU s, Redis CPU s) for one worker, its start-up left out,
    acknowledging ``count`` alerts a reader had appended before it started."""
    home, reader_home = homes
    redis.flush()
    state = reader_home.root / "var"
    if state.exists():
        shutil.rmtree(state)
    Daemon(reader_home.root, "--role", "reader", "--once", "--alerts", alerts).start().finish(
        TIMEOUT_S
    ).checked()
    (home.root / "daemon.log").unlink(missing_ok=True)  # wait for this start's line
    worker = Daemon(home.root, "--role", "worker").start()
    client = Redis.from_url(redis.url)
    try:
        worker.wait_for_log("delivering from stream", 60)
        worker_before, redis_before = worker.cpu_seconds(), redis.cpu_seconds()
        started = time.monotonic()
        while acknowledged(client) < count:
            if time.monotonic() - started > TIMEOUT_S:
                raise RuntimeError("one worker draining the stream: timed out")
            time.sleep(0.02)
        redis_s = redis.cpu_seconds() - redis_before
    finally:
        client.close()
        finished = worker.stop(60)
    return finished.cpu_s - worker_before, redis_s


def drain_figures(
    homes: tuple[BenchHome, BenchHome], redis: RedisServer, block: list[str], alerts: str
) -> dict[str, float]:
    """CPU per alert of one worker and of Redis, delivering and throttling
    (interleaved, medians of 3): the model in docs/cluster.md."""
    home, _ = homes
    runs: dict[str, list[tuple[float, float]]] = {"delivered": [], "throttled": []}
    for _ in range(3):
        for kind in runs:
            extra = THROTTLE if kind == "throttled" else ""
            home.configure(block, cluster_settings(redis.url) + extra)
            runs[kind].append(drain_run(homes, redis, DRAIN_ALERTS, alerts))
    figures = {}
    for kind, measured in runs.items():
        figures[f"worker_cpu_us_per_alert_{kind}"] = round(
            median([worker for worker, _ in measured]) / DRAIN_ALERTS * 1e6
        )
        figures[f"redis_cpu_us_per_alert_{kind}"] = round(
            median([redis_s for _, redis_s in measured]) / DRAIN_ALERTS * 1e6, 1
        )
    return figures


def run(context: Context) -> Outcome:
    sizes = context.sizes
    count = sizes.delivery_alerts
    alerts = context.data["delivery"]
    outcome = Outcome("cluster", "11. Cluster mode: 1, 2 and 4 workers on one machine")
    binary = redis_binary()
    if binary is None:
        outcome.notes.append("Not run: redis-server is not installed.")
        return outcome
    single: list[float] = []
    by_workers: dict[int, list[float]] = {n: [] for n in WORKER_COUNTS}
    reader_runs: list[float] = []
    with (
        fast_receiver(context.nginx) as receiver,
        BenchHome() as home,
        BenchHome() as reader_home,
        RedisServer(binary) as redis,
    ):
        block = [slack_block(receiver.url(SLACK_HOOK))]
        reader_home.configure(block, cluster_settings(redis.url))
        for run_number in range(sizes.runs):
            home.configure(block)
            single.append(daemon_once(home, alerts).wall_s)
            home.configure(block, cluster_settings(redis.url))
            for workers in WORKER_COUNTS:
                elapsed, reader_s = cluster_run(
                    (home, reader_home), redis, receiver, workers, count, str(alerts)
                )
                by_workers[workers].append(elapsed)
                reader_runs.append(reader_s)
                log.info("cluster run %d, %d workers: %.2fs", run_number + 1, workers, elapsed)
        kind = receiver.kind
        drain_alerts = reader_home.root / "drain-alerts.json"
        write_alerts(drain_alerts, DRAIN_ALERTS)
        drained = drain_figures((home, reader_home), redis, block, str(drain_alerts))
    single_rate = per_s(count, median(single))
    outcome.figures.update(
        {
            "alerts": count,
            "runs": sizes.runs,
            "receiver": kind,
            "single_process_alerts_per_s": round(single_rate),
            "reader_alone_alerts_per_s": round(per_s(count, median(reader_runs))),
            **{
                f"workers_{n}_alerts_per_s": round(per_s(count, median(by_workers[n])))
                for n in WORKER_COUNTS
            },
            **drained,
        }
    )
    for workers in WORKER_COUNTS:
        rate = per_s(count, median(by_workers[workers]))
        outcome.checks.append(
            Check(f"{workers} worker(s), against one process", round(rate / single_rate, 2), "x",
                  "reported", True)
        )  # fmt: skip
    outcome.notes.append(
        f"{count:,} alerts, each matching one `slack` block posting to {kind}; the single "
        "process is `run --once`; a cluster run is one `run --role reader --once` feeding "
        "N `run --role worker` through redis-server (AOF, fsync every second) on this "
        "machine, timed from the reader's start to the last alert counted at the receiver. "
        "Reader, workers, Redis and the receiver share the machine's cores, so more workers "
        "than cores only add contention here; see docs/cluster.md for the model across "
        "machines."
    )
    outcome.notes.append(
        f"CPU per alert: one worker draining {DRAIN_ALERTS:,} alerts a reader appended "
        "before it started (its start-up left out), delivering them to the receiver, or "
        "throttled to 2 per agent per hour (6 deliveries); Redis's CPU over the same "
        "time. Medians of 3, the two kinds interleaved."
    )
    return outcome
