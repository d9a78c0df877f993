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
        (
            {"dead_lettered": 1, "still_parked": 3},
            EXIT_DEAD_LETTERED,
            "Exit status 4: 1 delivery was given up",
        ),
        ({"dead_lettered": 2}, EXIT_DEAD_LETTERED, "Exit status 4: 2 deliveries were given up"),
        ({"still_parked": 1}, EXIT_PARKED, "Exit status 3: 1 delivery is still parked"),
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


def test_rows_parked_for_a_block_no_longer_configured_are_not_all_delivered() -> None:
    # A run that delivered all it read, while 300 rows of a removed block
    # waited in the store, said "0 still parked" and exited 0.
    result = RunSummary(
        lines_read=3,
        invalid=0,
        integrations=[IntegrationSummary("shuffle#0", 3, 0, 0, 0, 0)],
        unconfigured_parked={"slack#0": 300},
    )
    out = io.StringIO()
    result.write(out)
    lines = out.getvalue().splitlines()
    assert result.exit_status() == EXIT_PARKED
    assert lines[2] == (
        "  slack#0: not in the configuration; 300 still parked in the store,"
        " waiting for a block with that key"
    )
    assert lines[3].startswith("Exit status 3: 300 deliveries are still parked; 300 of them wait")


def test_one_line_read_is_one_line() -> None:
    result = RunSummary(lines_read=1, invalid=0, integrations=[])
    out = io.StringIO()
    result.write(out)
    assert out.getvalue().splitlines()[0] == "run --once: 1 line read, 0 invalid."
