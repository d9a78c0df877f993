"""packaging/: the systemd unit is hardened and agrees with the daemon."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from wazuh_integrator.commands.run import EXIT_CONFIG

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "wazuh-integrator.service"
MOST_EXPOSED = 3.0


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_systemd_analyze_rates_the_unit_at_most_3(tmp_path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert level is not None, output
    assert float(level.group(1)) <= MOST_EXPOSED, output


def test_the_unit_notifies_and_stops_restarting_on_configuration_errors() -> None:
    unit = directives()
    assert unit["Type"] == ["notify"]
    assert unit["WatchdogSec"] == ["30"]
    assert unit["RestartPreventExitStatus"] == [str(EXIT_CONFIG)]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == [""]
    read_write = unit["ReadWritePaths"][0].split()
    assert "/var/ossec/var/integrator" in read_write and "/var/ossec/logs" in read_write


def test_the_state_directory_is_created_as_root_for_the_wazuh_user() -> None:
    unit = directives()
    (pre,) = unit["ExecStartPre"]
    assert pre.startswith("+")  # full privileges: var/ is root:wazuh 0750
    assert "-o wazuh -g wazuh" in pre and pre.endswith(" /var/ossec/var/integrator")
    assert "--log-file /var/ossec/logs/integrations.log" in unit["ExecStart"][0]
