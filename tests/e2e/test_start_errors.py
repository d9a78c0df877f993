"""End-to-end: ``run`` refuses to start, in one clear sentence and with exit status
78 (EX_CONFIG, which the unit's RestartPreventExitStatus= names), when a restart
could not help: an unusable state directory, an invalid configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.harness import short_home, slack_block, write_config

EXIT_CONFIG = 78
NOBODY = 65534


@pytest.fixture
def home() -> Iterator[Path]:
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


def test_a_state_dir_that_cannot_be_created_is_named_with_the_permission(home: Path) -> None:
    prefix = without_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot take away root's override")
    write_config(home, slack_block("http://127.0.0.1:9/hook"))
    (home / "logs" / "alerts" / "alerts.json").write_bytes(b"")
    # Like a Wazuh package's var/: another owner, mode 0750, not writable by us.
    var = home / "var"
    var.mkdir(mode=0o750)
    if os.geteuid() == 0:
        os.chown(var, NOBODY, NOBODY)
    else:
        var.chmod(0o550)
    try:
        done = run(home, "--once", prefix=prefix)
    finally:
        var.chmod(0o750)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"state_dir {var / 'integrator'}: cannot create it: Permission denied" in done.stderr
    mode = "0750" if os.geteuid() == 0 else "0550"
    assert f"{var} is " in done.stderr and f"mode {mode}" in done.stderr
    assert "install -d -o wazuh -g wazuh -m 0750" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_state_dir_that_cannot_be_written_is_refused(home: Path) -> None:
    prefix = without_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot take away root's override")
    write_config(home, slack_block("http://127.0.0.1:9/hook"))
    state = home / "var" / "integrator"
    state.mkdir(parents=True, mode=0o700)
    if os.geteuid() == 0:
        os.chown(state, NOBODY, NOBODY)
    else:
        state.chmod(0o500)
    try:
        done = run(home, "--once", prefix=prefix)
    finally:
        state.chmod(0o700)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"state_dir {state}: Permission denied: cannot write in it" in done.stderr
    assert "Traceback" not in done.stderr


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
