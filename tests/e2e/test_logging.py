"""End-to-end: ``run --log-file`` survives logrotate's rename."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from tests.e2e.harness import Daemon, slack_block, until, write_config

ROOT = Path(__file__).resolve().parents[2]


async def test_after_a_rename_new_lines_land_in_the_new_file(home: Path) -> None:
    write_config(home, slack_block("http://127.0.0.1:9/services/T/B/x"))
    (home / "logs" / "alerts" / "alerts.json").write_bytes(b"")
    log_file = home / "logs" / "integrations.log"
    daemon = Daemon(home, ["--log-file", str(log_file)])
    await daemon.start()
    try:
        await until(lambda: log_file.exists() and "Reading" in log_file.read_text(), 15, "start")
        rotated = log_file.with_name("integrations.log.1")
        log_file.rename(rotated)  # what logrotate does
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)  # anything that logs a line
        await until(
            lambda: log_file.exists() and "Configuration reloaded" in log_file.read_text(),
            15,
            "a line in the new file",
        )
    finally:
        assert await daemon.stop() == 0
    assert "Checkpoint saved" in log_file.read_text()
    old = rotated.read_text()
    assert "Reading" in old
    assert "Reloading configuration" not in old and "Checkpoint saved" not in old


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_the_shipped_logrotate_file_is_valid(tmp_path: Path) -> None:
    text = (ROOT / "packaging" / "wazuh-integrator.logrotate").read_text()
    log_file = tmp_path / "integrations.log"
    log_file.write_text("a line\n")
    conf = tmp_path / "wazuh-integrator"
    # Our own path and user, so that the check runs anywhere without root's files.
    conf.write_text(
        text.replace("/var/ossec/logs/integrations.log", str(log_file))
        .replace("su wazuh wazuh", "")
        .replace("create 0640 wazuh wazuh", "create 0640")
    )
    done = subprocess.run(
        ["logrotate", "--debug", "--state", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr.lower()
