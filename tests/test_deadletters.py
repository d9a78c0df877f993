"""dead-letter list/show/replay/purge against a real state database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import orjson
import pytest

from wazuh_integrator.deadletters import (
    Selection,
    dead_letter_command,
    list_dead_letters,
    show_dead_letter,
)
from wazuh_integrator.store import StateStore


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        for number, key in enumerate(["slack#0", "slack#2", "pagerduty#1"]):
            store.add_dead_letter(
                key,
                key.partition("#")[0],
                orjson.dumps({"id": f"1764262800.{number}", "rule": {"level": 10}}),
                attempts=number + 1,
                first_failed_at=1_764_262_800.0,
                last_error=f"HTTP 400: bad request {number}",
                status=400,
            )
        store.flush()
    return path


EVERY_LETTER = Selection()


def listed(database: Path, selection: Selection = EVERY_LETTER) -> list[dict[str, object]]:
    out = io.StringIO()
    assert list_dead_letters(database, selection, as_json=True, limit=0, out=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_list_as_json_names_each_letter(database: Path) -> None:
    letters = listed(database)
    assert [letter["alert_id"] for letter in letters] == [f"1764262800.{n}" for n in range(3)]
    assert letters[1] | {"first_failed_at": None, "failed_at": None} == {
        "id": 2,
        "integration": "slack#2",
        "name": "slack",
        "alert_id": "1764262800.1",
        "attempts": 2,
        "status": 400,
        "first_failed_at": None,
        "failed_at": None,
        "last_error": "HTTP 400: bad request 1",
    }


@pytest.mark.parametrize(
    ("integration", "expected_ids"),
    [("slack", [1, 2]), ("slack#2", [2]), ("pagerduty", [3]), ("shuffle", [])],
)
def test_integration_selects_by_name_or_block_key(
    database: Path, integration: str, expected_ids: list[int]
) -> None:
    letters = listed(database, Selection(integration=integration))
    assert [letter["id"] for letter in letters] == expected_ids


def test_the_table_is_readable_and_limited(database: Path) -> None:
    out = io.StringIO()
    list_dead_letters(database, Selection(), as_json=False, limit=2, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "ID",
        "INTEGRATION",
        "ALERT",
        "ID",
        "TRIES",
        "FAILED",
        "AT",
        "ERROR",
    ]
    assert "slack#2" in lines[1] and "pagerduty#1" in lines[2]
    assert lines[-1] == "(1 older not shown; use --limit 0 for all)"


def test_show_prints_the_alert(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert show_dead_letter(database, 3, out=out) == 0
    shown = json.loads(out.getvalue())
    assert shown["alert"] == {"id": "1764262800.2", "rule": {"level": 10}}
    assert show_dead_letter(database, 99) == 1
    assert "no dead letter with id 99" in capsys.readouterr().err


def test_replay_moves_letters_to_the_parked_table_due_now(database: Path) -> None:
    assert dead_letter_command("replay", database, integration="slack") == 0
    assert [letter["id"] for letter in listed(database)] == [3]
    with StateStore(database) as store:
        parked = store.due_parked("slack#0", float("inf"), 10) + store.due_parked(
            "slack#2", float("inf"), 10
        )
    assert [orjson.loads(row.alert)["id"] for row in parked] == ["1764262800.0", "1764262800.1"]
    assert all(row.attempts == 0 for row in parked)
    assert parked[0].last_error == "replayed dead letter 1: HTTP 400: bad request 0"


def test_purge_deletes_only_the_chosen_ones(database: Path) -> None:
    assert dead_letter_command("purge", database, ids=[1, 3]) == 0
    assert [letter["id"] for letter in listed(database)] == [2]


@pytest.mark.parametrize("action", ["replay", "purge"])
def test_replay_and_purge_need_a_selection(
    database: Path, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dead_letter_command(action, database) == 2
    assert "name dead letter ids, --integration, or --all" in capsys.readouterr().err
    assert len(listed(database)) == 3


def test_no_database_yet_is_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"
    assert dead_letter_command("list", missing) == 0
    assert dead_letter_command("replay", missing, everything=True) == 0
    assert not missing.exists()


def test_ids_that_are_not_dead_letters_do_nothing_and_fail(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dead_letter_command("purge", database, ids=[1, 12345]) == 1
    assert capsys.readouterr().err == "error: no dead letter with id 12345; nothing done\n"
    assert len(listed(database)) == 3


@pytest.mark.parametrize("action", ["list", "replay", "purge"])
def test_an_unknown_integration_fails(
    database: Path, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dead_letter_command(action, database, integration="nosuch") == 1
    assert "no integration 'nosuch' in the configuration" in capsys.readouterr().err
    assert len(listed(database)) == 3


def test_a_configured_integration_without_dead_letters_is_not_an_error(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = frozenset({"shuffle", "shuffle#3"})
    assert (
        dead_letter_command("list", database, integration="shuffle", known_integrations=known) == 0
    )
    assert capsys.readouterr().out == "No dead letters.\n"


@pytest.mark.parametrize("action", ["replay", "purge"])
def test_dry_run_names_what_would_be_done_and_does_nothing(
    database: Path, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dead_letter_command(action, database, everything=True, dry_run=True) == 0
    done = "queued for delivery" if action == "replay" else "deleted"
    assert capsys.readouterr().out == f"Dry run: 3 dead letter(s) would be {done}: 1, 2, 3\n"
    assert len(listed(database)) == 3
    with StateStore(database) as store:
        assert store.due_parked("slack#0", float("inf"), 10) == []
