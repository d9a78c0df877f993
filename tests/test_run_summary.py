"""run --once's summary and exit status, decided from the counts alone."""

from __future__ import annotations

import io

import pytest

from wazuh_integrator.run_summary import (
    EXIT_DEAD_LETTERED,
    EXIT_DELIVERED,
    EXIT_PARKED,
    IntegrationSummary,
    RunSummary,
)


def summary(**counts: int) -> RunSummary:
    fields = {"delivered": 10, "parked": 0, "dead_lettered": 0, "failed": 0, "still_parked": 0}
    fields.update(counts)
    return RunSummary(
        lines_read=12, invalid=2, integrations=[IntegrationSummary("slack#0", **fields)]
    )


@pytest.mark.parametrize(
    ("counts", "status", "last_line"),
    [
        ({}, EXIT_DELIVERED, "  slack#0: 10 delivered, 0 parked, 0 dead-lettered; 0 still parked"),
        ({"parked": 5, "still_parked": 5}, EXIT_PARKED, "Exit status 3: 5 deliveries are still"),
        ({"failed": 2}, EXIT_PARKED, "Exit status 3: 2 deliveries could not be stored"),
        ({"dead_lettered": 1, "still_parked": 3}, EXIT_DEAD_LETTERED, "Exit status 4: 1 deliv"),
    ],
)
def test_the_exit_status_and_the_last_line_say_what_is_left(
    counts: dict[str, int], status: int, last_line: str
) -> None:
    result = summary(**counts)
    out = io.StringIO()
    result.write(out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "run --once: 12 lines read, 2 invalid."
    assert lines[-1].startswith(last_line)
    assert result.exit_status() == status
