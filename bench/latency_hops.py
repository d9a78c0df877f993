"""Where the time between an alert's write and its arrival goes, hop by hop.

    .venv/bin/python -m bench.latency_hops [--rate 1000] [--seconds 10] [--follow auto|poll]

Runs the latency scenario's set-up (steady appends, one Slack block, our
receiver in its own process) against a daemon started through this module,
which wraps five of the daemon's functions to stamp CLOCK_MONOTONIC for each
alert as it passes: read (the tailer yields its line), submitted (routed and
handed to the deliverer), taken (a worker takes it from the queue), sending
(the HTTP request starts) and answered (the answer is read). The write and
the receipt (which comes before "answered") are stamped as in the scenario.
A measuring build, not the product: the wrappers cost a few microseconds a
hop, which is why the scenario itself runs the daemon unwrapped.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

# The write's stamp: the alert's id in a line, Slack's "ts" in a body.
_STAMP = re.compile(rb'"(?:id|ts)":"(\d+)\.')
HOPS = ("read", "submitted", "taken", "sending", "answered")


def _daemon_main(record: Path) -> None:
    """In the daemon's process: wrap the hops, then run the command line."""
    from wazuh_integrator import cli
    from wazuh_integrator.delivery import deliverer, intake
    from wazuh_integrator.integrations import webhook
    from wazuh_integrator.source import tailer

    stamps: dict[str, dict[str, int]] = {hop: {} for hop in HOPS}

    def stamp(hop: str, raw: bytes) -> None:
        match = _STAMP.search(raw)
        if match:
            stamps[hop][match.group(1).decode()] = time.monotonic_ns()

    original_batches = tailer.AlertTailer.batches

    async def batches(self: Any) -> Any:
        async for batch in original_batches(self):
            for line in batch:
                stamp("read", line.data)
            yield batch

    original_submit = deliverer.Deliverer.submit

    async def submit(self: Any, delivery: Any) -> None:
        stamp("submitted", delivery.raw)
        await original_submit(self, delivery)

    original_take = intake.Intake.take

    async def take(self: Any) -> Any:
        delivery = await original_take(self)
        stamp("taken", delivery.raw)
        return delivery

    original_send_body = webhook.send_body

    async def send_body(session: Any, url: str, data: bytes, **options: Any) -> None:
        stamp("sending", data)
        await original_send_body(session, url, data, **options)
        stamp("answered", data)

    tailer.AlertTailer.batches = batches  # type: ignore[method-assign]
    deliverer.Deliverer.submit = submit  # type: ignore[method-assign]
    intake.Intake.take = take  # type: ignore[method-assign]
    webhook.send_body = send_body  # type: ignore[assignment]
    collections: list[tuple[int, int]] = []  # (generation, ns) of each garbage collection
    started: list[int] = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.monotonic_ns()
        else:
            collections.append((info["generation"], time.monotonic_ns() - started[0]))

    gc.callbacks.append(on_gc)
    atexit.register(lambda: record.write_bytes(orjson.dumps({"stamps": stamps, "gc": collections})))
    sys.exit(cli.main(sys.argv[1:]))


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def measure(rate_per_s: int, duration_s: float, follow: str) -> dict[str, tuple[float, float]]:
    """p50 and p99 in ms of each hop, from the write to the receiver's receipt."""
    from bench.daemon import Daemon
    from bench.home import SLACK_HOOK, BenchHome, slack_block
    from bench.receiver_process import OurReceiver
    from bench.scenarios.latency import append_steadily

    work = Path(tempfile.mkdtemp(prefix="wi-hops-"))
    receipts_file, stamps_file = work / "receipts.json", work / "stamps.json"
    with BenchHome() as home, OurReceiver(record=receipts_file) as receiver:
        home.configure([slack_block(receiver.url(SLACK_HOOK))], f'follow = "{follow}"\n')
        home.alerts.write_bytes(b"")
        wrapped = [sys.executable, "-m", "bench.latency_hops", "--daemon"]
        daemon = Daemon(home.root, profiler=wrapped)
        os.environ["WI_HOPS_RECORD"] = str(stamps_file)
        daemon.start()
        try:
            daemon.wait_for_log("Reading")
            total = append_steadily(home.alerts, rate_per_s, duration_s)
            deadline = time.monotonic() + 30
            while receiver.served() < total and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            daemon.stop()
        recorded = receiver.stop()
    recorded_in_daemon = orjson.loads(stamps_file.read_bytes())
    stamps = recorded_in_daemon["stamps"]
    for generation in (0, 1, 2):
        pauses = [ns / 1e6 for gen, ns in recorded_in_daemon["gc"] if gen == generation]
        if pauses:
            print(
                f"follow = {follow!r}: {len(pauses)} collections of generation {generation}, "
                f"longest {max(pauses):.2f} ms, {sum(pauses):.1f} ms in all"
            )
    received = {alert_id.split(".")[0]: ns for ns, alert_id in recorded["receipts"]}
    steps: dict[str, list[float]] = {}
    for written, arrived in received.items():
        # The receiver stamps a body before it answers: the receipt comes
        # before "answered", which is only the way back.
        times = [int(written)] + [stamps[hop].get(written) for hop in HOPS]
        times.insert(len(HOPS), arrived)
        if None in times:
            continue
        names = ["write", *HOPS[:-1], "receipt", HOPS[-1]]
        for (before, start), (after, end) in zip(
            zip(names, times, strict=True), zip(names[1:], times[1:], strict=True), strict=False
        ):
            steps.setdefault(f"{before} → {after}", []).append((end - start) / 1e6)
        steps.setdefault("write → receipt", []).append((arrived - int(written)) / 1e6)
    return {step: _percentiles(values) for step, values in steps.items()}


def main() -> None:
    if sys.argv[1:2] == ["--daemon"]:
        # Started as bench.daemon's "profiler": what follows is
        # `python -m wazuh_integrator <arguments>`.
        sys.argv[1:] = sys.argv[5:]
        _daemon_main(Path(os.environ["WI_HOPS_RECORD"]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--follow", default="auto", choices=("auto", "poll"))
    parser.add_argument("--rounds", type=int, default=1, help="runs, poll and auto in turn")
    args = parser.parse_args()
    threading.current_thread().name = "hops"
    follows = [args.follow] if args.rounds == 1 else ["poll", "auto"] * args.rounds
    results: dict[str, list[dict[str, tuple[float, float]]]] = {}
    for follow in follows:
        results.setdefault(follow, []).append(measure(args.rate, args.seconds, follow))
    for follow, runs in results.items():
        print(f"\nfollow = {follow!r}: {len(runs)} run(s), medians of each run's p50 / p99 (ms)")
        for step in runs[0]:
            p50 = statistics.median(run[step][0] for run in runs)
            p99 = statistics.median(run[step][1] for run in runs)
            print(f"  {step:24} {p50:8.3f} {p99:8.3f}")


if __name__ == "__main__":
    main()
