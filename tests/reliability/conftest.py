"""Fixtures of the fault suite: the receiver process, a Wazuh home, the report.

``fault_report`` is how each case leaves a row for docs/reliability.md: run
the suite with ``WI_FAULT_REPORT=/path/rows.jsonl`` and render the rows with
``python -m tests.reliability.report /path/rows.jsonl``. Without the variable
it does nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import orjson
import pytest
from tests.reliability.harness import ReceiverProcess

REPORT_ENV = "WI_FAULT_REPORT"


class FaultReport(Protocol):
    def __call__(
        self,
        fault: str,
        outcome: str,
        *,
        tries: int = 1,
        recovery_s: float | None = None,
        duplicates: int = 0,
        section: str | None = None,
    ) -> None: ...


DEFAULT_SECTION = "Receivers and outages"


def _append_row(
    fault: str,
    outcome: str,
    *,
    tries: int = 1,
    recovery_s: float | None = None,
    duplicates: int = 0,
    section: str = DEFAULT_SECTION,
    test: str = "",
) -> None:
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    row = {
        "test": test,
        "section": section,
        "fault": fault,
        "outcome": outcome,
        "tries": tries,
        "recovery_s": None if recovery_s is None else round(recovery_s, 2),
        "duplicates": duplicates,
    }
    # One short write per row in append mode: rows of concurrent runs do not interleave.
    with Path(target).open("ab") as handle:
        handle.write(orjson.dumps(row) + b"\n")


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    """Append one row (fault, outcome, tries, recovery time, duplicates) to
    the file named by ``WI_FAULT_REPORT``; a no-op when it is not set. A test
    module may set ``FAULT_SECTION`` for the rows that name no section."""
    module_section = getattr(request.module, "FAULT_SECTION", DEFAULT_SECTION)

    def record(
        fault: str,
        outcome: str,
        *,
        tries: int = 1,
        recovery_s: float | None = None,
        duplicates: int = 0,
        section: str | None = None,
    ) -> None:
        _append_row(
            fault,
            outcome,
            tries=tries,
            recovery_s=recovery_s,
            duplicates=duplicates,
            section=module_section if section is None else section,
            test=request.node.nodeid,
        )

    return record


@pytest.fixture
async def fault_receiver() -> AsyncIterator[ReceiverProcess]:
    async with ReceiverProcess() as receiver:
        yield receiver


@pytest.fixture
def homes() -> Iterator[list[Path]]:
    """Homes made by a case, removed after it."""
    made: list[Path] = []
    yield made
    for home in made:
        shutil.rmtree(home, ignore_errors=True)
