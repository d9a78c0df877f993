"""End-to-end: ``run`` refuses to start, in one clear sentence and with exit status
78 (EX_CONFIG, which the unit's RestartPreventExitStatus= names), when a restart
could not help: an unusable state directory, an invalid configuration."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.harness import slack_block, write_config

from wazuh_integrator.store import StateStore

EXIT_CONFIG = 78
NOBODY = 65534


def without_override() -> list[str] | None:
    """A command prefix under which even root obeys file modes, or None.

    As root (CI runs as root) the permission check is bypassed by
    CAP_DAC_OVERRIDE: setpriv drops it, and its read twin, for the child.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]


def run(
    home: Path, *args: str, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(prefix or []),
            sys.executable,
            "-m",
            "wazuh_integrator",
            "--home",
            str(home),
            "run",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def owned_by_another(path: Path, mode: int) -> None:
    """``path`` as Wazuh's packages leave var/ for the wazuh user: another
    owner, our group, ``mode``; without root, the same through the owner bits."""
    if os.geteuid() == 0:
        os.chown(path, NOBODY, os.getegid())
        path.chmod(mode)
    else:
        path.chmod(mode & 0o077 | (mode & 0o070) << 3)


def test_a_state_dir_that_cannot_be_created_is_named_with_the_permission(home: Path) -> None:
    prefix = without_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot take away root's override")
    write_config(home, slack_block("http://127.0.0.1:9/hook"))
    (home / "logs" / "alerts" / "alerts.json").write_bytes(b"")
    var = home / "var"
    var.mkdir()
    owned_by_another(var, 0o750)  # root:wazuh 0750, and we run as wazuh
    try:
        done = run(home, "--once", prefix=prefix)
    finally:
        var.chmod(0o755)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"state directory {var / 'integrator'}: does not exist, and " in done.stderr
    assert f"cannot create it in {var}: Permission denied" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_a_state_dir_behind_a_folder_we_may_not_search_is_refused(home: Path) -> None:
    prefix = without_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot take away root's override")
    write_config(home, slack_block("http://127.0.0.1:9/hook"))
    var = home / "var"
    var.mkdir()
    owned_by_another(var, 0o700)
    try:
        done = run(home, "--once", prefix=prefix)
    finally:
        var.chmod(0o755)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"state directory {var / 'integrator'}: cannot be reached by " in done.stderr
    assert "Permission denied" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_state_dir_that_cannot_be_written_is_refused(home: Path) -> None:
    prefix = without_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot take away root's override")
    write_config(home, slack_block("http://127.0.0.1:9/hook"))
    state = home / "var" / "integrator"
    state.mkdir(parents=True)
    owned_by_another(state, 0o550)
    try:
        done = run(home, "--once", prefix=prefix)
    finally:
        state.chmod(0o755)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"state directory {state}: not writable by " in done.stderr
    assert "Permission denied" in done.stderr
    assert "Traceback" not in done.stderr


def test_prepare_state_dir_names_state_dir_the_user_and_what_is_in_the_way(
    home: Path,
) -> None:
    """The daemon's own creation of the directory (replay starts without the
    start-up checks), in the words of the error it raises."""
    prefix = without_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot take away root's override")
    var = home / "var"
    var.mkdir()
    owned_by_another(var, 0o750)
    shown_mode = f"mode {var.stat().st_mode & 0o7777:04o}"
    script = (
        "import sys; from pathlib import Path\n"
        "from wazuh_integrator.statedir import StateDirError, prepare_state_dir\n"
        "try:\n    prepare_state_dir(Path(sys.argv[1]))\n"
        "except StateDirError as exc:\n    print(exc)\n"
    )
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", script, str(var / "integrator")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        var.chmod(0o755)
    assert done.stdout.startswith(
        f"state_dir {var / 'integrator'}: cannot create it: Permission denied (running as "
    )
    assert f"; {var} is " in done.stdout and shown_mode in done.stdout
    assert "install -d -o wazuh -g wazuh -m 0700" in done.stdout


def test_an_invalid_configuration_exits_78_and_says_so_on_stderr_with_a_log_file(
    home: Path,
) -> None:
    (home / "etc" / "ossec.conf").write_text(
        "<ossec_config>\n<integration><name>slack</name><level>high</level></integration>\n"
        "</ossec_config>\n"
    )
    log_file = home / "logs" / "integrations.log"
    done = run(home, "--log-file", str(log_file))
    assert done.returncode == EXIT_CONFIG
    for text in (done.stderr, log_file.read_text()):
        assert "etc/ossec.conf:2: <level>: 'high' is not a number" in text
        assert "Configuration refused: not starting." in text


@pytest.mark.parametrize("reading", [["--once"], ["--since", "2026-11-27T17:00:00Z"]])
def test_reading_past_alerts_with_no_enabled_integration_is_refused(
    home: Path, reading: list[str]
) -> None:
    """The cutover's `run --once --since T` without its --config read the emptied
    ossec.conf, delivered nothing, saved a checkpoint past every alert since T,
    and exited 0: the service then resumed after them, and they were lost."""
    (home / "etc" / "ossec.conf").write_text("<ossec_config>\n</ossec_config>\n")
    moved = home / "etc" / "integrations.conf"
    moved.write_text(f"<ossec_config>\n{slack_block('http://127.0.0.1:9/hook')}\n</ossec_config>\n")
    alerts = home / "logs" / "alerts" / "alerts.json"
    alerts.write_text('{"timestamp": "2026-11-27T17:00:01.000+0000", "rule": {"level": 3}}\n')

    done = run(home, *reading)

    assert done.returncode == EXIT_CONFIG
    assert "no enabled integration" in done.stderr
    assert f"--config {moved}" in done.stderr
    assert not (home / "var" / "integrator" / "state.db").exists()  # no checkpoint saved


def test_a_state_database_from_a_newer_version_exits_78(home: Path) -> None:
    """After a downgrade: exit 1 had systemd restart it every 5 s for nothing."""
    write_config(home, slack_block("http://127.0.0.1:9/hook"))
    state = home / "var" / "integrator"
    state.mkdir(parents=True)
    StateStore(state / "state.db").close()
    with sqlite3.connect(state / "state.db") as database:
        database.execute("UPDATE schema_version SET version = 999")
    log_file = home / "logs" / "integrations.log"

    done = run(home, "--once", "--log-file", str(log_file))

    assert done.returncode == EXIT_CONFIG
    assert "state schema version 999 is newer than this program understands" in done.stderr
