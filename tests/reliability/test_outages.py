"""Outages measured in time under a steady stream: the receiver answers 500
for 2, 8 or 60 seconds while 500 alerts a second arrive, then recovers.

The targets (first delivery within 6 s of recovery and the backlog within
20 s after 8 s down; first delivery within 35 s after 60 s down) are printed
by ``bench/scenarios/recovery.py``; here the bounds are looser, so that a
loaded machine does not fail them, but far below the minutes the old
circuit took."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.reliability.conftest import FaultReport
from tests.reliability.harness import ReceiverProcess
from tests.reliability.outage import OutageFigures, measure_outage

pytestmark = pytest.mark.timeout(400)


def check_and_report(figures: OutageFigures, fault_report: FaultReport) -> None:
    assert figures.exit_code == 0
    assert figures.missing == 0
    assert figures.dead_lettered == 0
    assert figures.delivered == figures.written
    assert figures.failed_attempts > 0, "the outage never made an attempt fail"
    assert figures.first_delivery_s is not None and figures.backlog_drained_s is not None
    fault_report(
        f"HTTP 500 for {figures.outage_s:g} s under {figures.per_s:g} alerts/s",
        f"{figures.delivered}/{figures.written} delivered, 0 dead letters;"
        f" first delivery {figures.first_delivery_s:.1f} s after recovery,"
        f" backlog of {figures.backlog} in {figures.backlog_drained_s:.1f} s",
        tries=figures.failed_attempts,
        recovery_s=figures.backlog_drained_s,
        duplicates=figures.duplicates,
    )


@pytest.mark.parametrize("outage_s", [2.0, 8.0])
async def test_a_short_outage_is_caught_up_within_seconds(
    outage_s: float,
    fault_receiver: ReceiverProcess,
    homes: list[Path],
    fault_report: FaultReport,
) -> None:
    figures = await measure_outage(fault_receiver, homes, outage_s=outage_s)
    check_and_report(figures, fault_report)
    assert figures.first_delivery_s is not None and figures.first_delivery_s < 15
    assert figures.backlog_drained_s is not None and figures.backlog_drained_s < 45


@pytest.mark.long
async def test_a_minute_long_outage_is_noticed_within_a_probe_interval(
    fault_receiver: ReceiverProcess, homes: list[Path], fault_report: FaultReport
) -> None:
    figures = await measure_outage(fault_receiver, homes, outage_s=60.0)
    check_and_report(figures, fault_report)
    assert figures.first_delivery_s is not None and figures.first_delivery_s < 35
    assert figures.backlog_drained_s is not None and figures.backlog_drained_s < 120
