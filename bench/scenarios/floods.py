"""Scenario 7: the floods stage's cost. The delivery scenario's alerts to the
same webhook, with and without a throttle on the block; the throttle's limit
is high enough that every alert is still delivered, so the difference is the
per-alert check (key, window, count) and nothing else."""

from __future__ import annotations

import logging

from bench.common import Check, Context, Outcome, median, per_s
from bench.home import SLACK_HOOK, BenchHome, slack_block
from bench.receivers import fast_receiver
from bench.scenarios.delivery import daemon_once

log = logging.getLogger(__name__)

TARGET_RATIO = 0.9
THROTTLE = """
[integrations.slack.throttle]
key = ["rule.id", "agent.id"]
window = "1h"
limit = 1000000000
"""


def run(context: Context) -> Outcome:
    sizes = context.sizes
    count = sizes.delivery_alerts
    alerts = context.data["delivery"]
    outcome = Outcome("floods", "7. Throughput with a throttle on (Slack webhook on nginx)")
    walls: dict[str, list[float]] = {"without": [], "with": []}
    with fast_receiver(context.nginx) as receiver, BenchHome() as home:
        block = [slack_block(receiver.url(SLACK_HOOK))]
        for run_number in range(sizes.runs):
            # Alternate, so that a machine getting busier hurts both alike.
            for label, settings in (("without", ""), ("with", THROTTLE)):
                home.configure(block, settings)
                before = receiver.served()
                finished = daemon_once(home, alerts)
                served = receiver.served() - before
                if served < count:
                    raise RuntimeError(f"receiver got {served} of {count} alerts ({label})")
                walls[label].append(finished.wall_s)
                log.info("floods run %d %s: %.2fs", run_number + 1, label, finished.wall_s)
    without = per_s(count, median(walls["without"]))
    with_throttle = per_s(count, median(walls["with"]))
    ratio = with_throttle / without
    outcome.figures.update(
        {
            "alerts": count,
            "runs": sizes.runs,
            "without_alerts_per_s": round(without),
            "with_throttle_alerts_per_s": round(with_throttle),
            "ratio": round(ratio, 3),
        }
    )
    outcome.checks.append(
        Check(
            "throughput with a throttle / without",
            round(ratio, 2),
            "x",
            f"≥ {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
        )
    )
    outcome.notes.append(
        f"{count:,} alerts, each matching one `slack` block, `run --once`, median of "
        f"{sizes.runs} alternating runs each way. The throttle keys on rule.id and agent.id "
        "with a limit no alert reaches, so both runs deliver every alert."
    )
    return outcome
