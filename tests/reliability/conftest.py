"""The fault-report fixture: each fault case records one row of docs/reliability.md.

A minimal version: rows go as JSON lines to the file named by ``WI_FAULT_REPORT``
when it is set, and nowhere otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

FaultReport = Callable[..., None]


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    def record(
        fault: str,
        outcome: str,
        *,
        tries: int = 1,
        recovery_s: float | None = None,
        duplicates: int = 0,
        section: str = "The environment",
    ) -> None:
        path = os.environ.get("WI_FAULT_REPORT")
        if not path:
            return
        row: dict[str, Any] = {
            "test": request.node.nodeid,
            "section": section,
            "fault": fault,
            "outcome": outcome,
            "tries": tries,
            "recovery_s": recovery_s,
            "duplicates": duplicates,
        }
        with open(path, "a", encoding="utf-8") as report:
            report.write(json.dumps(row) + "\n")

    return record
