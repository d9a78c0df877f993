"""Receivers that misbehave: each case runs the real daemon against the fault
receiver, then checks that every alert was delivered at least once or kept as
a dead letter with its reason."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.conftest import FaultReport
from tests.reliability.harness import (
    Accounting,
    AlertStream,
    Daemon,
    ReceiverProcess,
    delivery_attempts,
    fault_home,
    wait_accounted,
    wait_serving,
)

ALERTS = 200

pytestmark = pytest.mark.timeout(180)


@dataclass
class Case:
    name: str
    fault: dict[str, Any]
    timeout_s: int = 10
    # Expect the faulty answers to have ended by themselves (so a recovery time exists).
    ends: bool = True
    # Whether the fault makes attempts fail (a 200 with a garbage body does not).
    fails: bool = True
    settings: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("connection refused for 3 s", {"kind": "refuse", "for_s": 3.0}),
    *(
        Case(
            f"HTTP {status} for 2 s{' with Retry-After: 1' if retry_after else ''}",
            {"kind": "status", "status": status, "for_s": 2.0, "retry_after": retry_after},
        )
        for status in (500, 502, 503)
        for retry_after in (None, "1")
    ),
    Case(
        "HTTP 429 with Retry-After: 1 on every 7th request",
        {"kind": "status", "status": 429, "every": 7, "retry_after": "1"},
        ends=False,
    ),
    Case(
        "HTTP 429 without Retry-After on every 7th request",
        {"kind": "status", "status": 429, "every": 7},
        ends=False,
    ),
    Case("TCP reset mid-answer, 20 times", {"kind": "reset", "count": 20}),
    Case(
        "answer 3 s late with <timeout>1</timeout>, 10 times",
        {"kind": "slow", "delay_s": 3.0, "count": 10},
        timeout_s=1,
    ),
    Case(
        "200 with a garbage body, every answer",
        {"kind": "garbage"},
        ends=False,
        fails=False,
    ),
]


async def run_case(case: Case, receiver: ReceiverProcess, homes: list[Path]) -> Accounting:
    home = fault_home(receiver.url(), timeout_s=case.timeout_s, settings=case.settings)
    homes.append(home)
    stream = AlertStream(home)
    await receiver.fault(**case.fault)
    stream.write(ALERTS)
    daemon = Daemon(home, ["--from-start"])
    await daemon.start()
    try:
        await wait_serving(home)
        result = await wait_accounted(home, receiver, stream.written, timeout_s=90, daemon=daemon)
        result.extra["attempts"] = await delivery_attempts(home)
    finally:
        code = await daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log()[-2000:]
    return result


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_every_alert_is_delivered_through_a_misbehaving_receiver(
    case: Case,
    fault_receiver: ReceiverProcess,
    homes: list[Path],
    fault_report: FaultReport,
) -> None:
    started = time.time()
    result = await run_case(case, fault_receiver, homes)
    assert result.complete, result.summary()
    # Nothing here is permanent: every alert reached the receiver, none was given up.
    assert not result.dead_letters, result.dead_letters
    assert len(result.delivered) == ALERTS
    # Each alert's first attempt, plus one for every failure the fault caused.
    failed_attempts = result.extra["attempts"] - ALERTS
    if case.fails:
        assert failed_attempts > 0, "the fault never made an attempt fail"
        tries = failed_attempts
    else:
        assert failed_attempts == 0, "an answer that is a success was retried"
        tries = sum(result.stats.statuses.values())
    recovery_s = None
    stats = result.stats
    if case.ends:
        assert stats.fault_ended_at is not None
        recovery_s = stats.all_delivered_after_s(sorted(result.delivered), stats.fault_ended_at)
    else:
        recovery_s = stats.all_delivered_after_s(sorted(result.delivered), started)
    fault_report(
        case.name,
        f"{len(result.delivered)}/{ALERTS} delivered, 0 dead letters",
        tries=tries,
        recovery_s=recovery_s,
        duplicates=result.duplicates,
    )
