"""``wazuh-integrator dead-letter``, as the installed command."""

from __future__ import annotations

import resource
import sqlite3
import subprocess
from pathlib import Path

import orjson
import pytest
from tests.config.wazuh_home import WazuhHome, installed_command, make_home, run_command

from wazuh_integrator.store import StateStore


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    home = make_home(tmp_path / "ossec")
    home.write_config("<ossec_config></ossec_config>\n")
    state = home.root / "var" / "integrator"
    state.mkdir(parents=True)
    with StateStore(state / "state.db") as store:
        store.add_dead_letter(
            "slack#0",
            "slack",
            orjson.dumps({"id": "1764262800.1"}),
            attempts=1,
            first_failed_at=1_764_262_800.0,
            last_error="HTTP 400: bad request",
            status=400,
        )
        store.flush()
    return home


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ("list", "--limit N"),
        ("show", "Print one dead letter as JSON"),
        ("replay", "--dry-run"),
        ("purge", "Delete dead letters for good."),
    ],
)
def test_each_action_has_its_own_help(home: WazuhHome, action: str, words: str) -> None:
    result = run_command("dead-letter", action, "--help", home=home.root)

    assert result.returncode == 0
    assert f"dead-letter {action}" in result.stdout
    assert words in result.stdout


@pytest.mark.parametrize(
    ("action", "what_it_does"),
    [("replay", "would be queued for delivery"), ("purge", "would be deleted")],
)
def test_dry_run_help_says_what_the_dry_run_prints(
    home: WazuhHome, action: str, what_it_does: str
) -> None:
    """The help once read "would be replayd": it now uses the dry run's own words."""
    result = run_command("dead-letter", action, "--help", home=home.root)

    assert what_it_does in " ".join(result.stdout.split())


def test_a_negative_limit_is_refused(home: WazuhHome) -> None:
    result = run_command("dead-letter", "list", "--limit", "-3", home=home.root)

    assert result.returncode == 2
    assert "argument --limit: must be 0 or more, not -3" in result.stderr


def test_purging_an_id_that_does_not_exist_fails(home: WazuhHome) -> None:
    result = run_command("dead-letter", "purge", "12345", home=home.root)

    assert result.returncode == 1
    assert result.stderr == "error: no dead letter with id 12345; nothing done\n"


def test_purge_all_dry_run_then_for_real(home: WazuhHome) -> None:
    dry = run_command("dead-letter", "purge", "--all", "--dry-run", home=home.root)
    assert (dry.returncode, dry.stdout) == (0, "Dry run: 1 dead letter(s) would be deleted: 1\n")

    real = run_command("dead-letter", "purge", "--all", home=home.root)
    assert (real.returncode, real.stdout) == (0, "1 dead letter(s) deleted.\n")


def test_global_options_may_follow_the_action(home: WazuhHome) -> None:
    result = run_command("dead-letter", "list", "--json", "--home", str(home.root))

    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["integration"] == "slack#0"


# Each action's words, and what it prints when it found the one dead letter.
_ACTIONS = {
    "list": (("list", "--json"), '"integration":"slack#0"'),
    "show": (("show", "1"), '"integration": "slack#0"'),
    "replay": (("replay", "--all", "--dry-run"), "would be queued for delivery: 1"),
    "purge": (("purge", "--all", "--dry-run"), "1 dead letter(s) would be deleted: 1"),
}


@pytest.mark.parametrize("action", sorted(_ACTIONS))
@pytest.mark.parametrize("place", ["before the command", "before the action", "after the action"])
def test_every_action_honours_the_global_options_wherever_they_stand(
    tmp_path: Path, home: WazuhHome, action: str, place: str
) -> None:
    # The dead letter lives in a state directory that only these settings name,
    # so an action that dropped --settings would find no state at all.
    moved = tmp_path / "elsewhere"
    (home.root / "var" / "integrator").rename(moved)
    settings = tmp_path / "moved.toml"
    settings.write_text(f'state_dir = "{moved}"\n', encoding="utf-8")
    options = ["-d", "--settings", str(settings)]
    words, found = _ACTIONS[action]
    argv = {
        "before the command": [*options, "dead-letter", *words],
        "before the action": ["dead-letter", *options, *words],
        "after the action": ["dead-letter", *words, *options],
    }[place]

    result = run_command(*argv, home=home.root)

    assert result.returncode == 0, result.stderr
    assert f"DEBUG: Dead letters: reading the state database {moved / 'state.db'}" in result.stderr
    assert found in result.stdout


def _limit_file_size() -> None:
    # A full disk, for this process only: writes past 64 KiB fail with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize("action", ["replay", "purge"])
def test_a_full_disk_is_named_and_changes_nothing(home: WazuhHome, action: str) -> None:
    # It was "internal error: OperationalError: disk I/O error", status 70,
    # naming no file.
    database = home.root / "var" / "integrator" / "state.db"
    with StateStore(database) as store:
        for number in range(400):
            store.add_dead_letter(
                "slack#0",
                "slack",
                orjson.dumps({"id": f"1764262800.{number}", "full_log": "x" * 1000}),
                attempts=1,
                first_failed_at=1_764_262_800.0,
                last_error="HTTP 400: bad request",
                status=400,
            )
        store.flush()

    result = subprocess.run(
        [installed_command(), "--home", str(home.root), "dead-letter", action, "--all"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_limit_file_size,
    )

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"error: {database}: cannot write the state database: disk I/O error; nothing was changed\n"
    )
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM dead_letters").fetchone() == (401,)
        assert db.execute("SELECT COUNT(*) FROM parked").fetchone() == (0,)
