"""The renderer of docs/reliability.md's table, and the fault_report fixture."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.reliability.conftest import REPORT_ENV, FaultReport
from tests.reliability.report import BEGIN, END, load_rows, render, replace_between_markers


def test_fault_report_appends_rows_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_report: FaultReport
) -> None:
    target = tmp_path / "rows.jsonl"
    monkeypatch.delenv(REPORT_ENV, raising=False)
    fault_report("nothing", "ignored")
    assert not target.exists()
    monkeypatch.setenv(REPORT_ENV, str(target))
    fault_report("HTTP 500 | 2 s", "200/200 delivered", tries=33, recovery_s=1.234)
    fault_report("kill", "ok", section="Crashes", duplicates=7)
    rows = load_rows(target)
    assert rows[0] == {
        "test": "tests/reliability/test_report.py::test_fault_report_appends_rows_only_when_asked",
        "section": "Receivers and outages",
        "fault": "HTTP 500 | 2 s",
        "outcome": "200/200 delivered",
        "tries": 33,
        "recovery_s": 1.23,
        "duplicates": 0,
    }
    table = render(rows)
    assert "### Receivers and outages" in table and "### Crashes" in table
    assert "| HTTP 500 \\| 2 s | 33 | 200/200 delivered | 1.23 s | 0 |" in table
    assert "| kill | 1 | ok |  | 7 |" in table


def test_the_table_replaces_only_what_stands_between_the_markers() -> None:
    document = f"intro\n{BEGIN}\nold table\n{END}\noutro\n"
    updated = replace_between_markers(document, "new table\n")
    assert updated == f"intro\n{BEGIN}\nnew table\n{END}\noutro\n"


def test_a_bad_row_names_its_file_and_line(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(orjson.dumps({"fault": "a", "outcome": "b"}) + b"\n{broken\n")
    with pytest.raises(SystemExit, match=r"rows\.jsonl:2: not a JSON row"):
        load_rows(rows)
