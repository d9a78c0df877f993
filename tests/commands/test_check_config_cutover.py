"""``check-config`` during a cutover: blocks outside ``<ossec_config>``, and blocks
left in ossec.conf while ``--config`` names another file."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.config.wazuh_home import WazuhHome, make_home, run_command

SLACK = (
    "<integration>\n"
    "  <name>slack</name>\n"
    "  <hook_url>https://hooks.slack.com/services/T0/B0/XYZ</hook_url>\n"
    "  <alert_format>json</alert_format>\n"
    "</integration>\n"
)


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    return make_home(tmp_path / "ossec")


def test_blocks_pasted_without_ossec_config_are_errors_not_ok(home: WazuhHome) -> None:
    pasted = home.root / "etc" / "integrations.conf"
    pasted.write_text("<!-- moved from ossec.conf -->\n" + SLACK + SLACK)
    home.write_config("<ossec_config>\n</ossec_config>\n")

    result = run_command("--config", str(pasted), "check-config", home=home.root)

    assert result.returncode == 1, result.stdout
    assert "etc/integrations.conf:2: <integration>: outside <ossec_config>" in result.stdout
    assert "etc/integrations.conf:7: <integration>: outside <ossec_config>" in result.stdout
    assert "Result: NOT OK: 2 errors" in result.stdout
    assert "OK: 0 of 0" not in result.stdout


def test_blocks_left_in_ossec_conf_are_warned_about(home: WazuhHome) -> None:
    moved = home.root / "etc" / "integrations.conf"
    moved.write_text("<ossec_config>\n" + SLACK + "</ossec_config>\n")
    home.write_config("<ossec_config>\n" + SLACK + SLACK + "</ossec_config>\n")

    result = run_command("--config", str(moved), "check-config", home=home.root)

    assert result.returncode == 0, result.stdout
    assert (
        "etc/ossec.conf: also holds 2 <integration> blocks: Wazuh runs its own "
        "wazuh-integratord for them, so both daemons would send every alert"
    ) in result.stdout
    assert "Result: OK: 1 of 1 integrations will run; 1 warning." in result.stdout


def test_no_warning_once_ossec_conf_holds_no_block(home: WazuhHome) -> None:
    moved = home.root / "etc" / "integrations.conf"
    moved.write_text("<ossec_config>\n" + SLACK + "</ossec_config>\n")
    home.write_config("<ossec_config>\n  <global/>\n</ossec_config>\n")

    result = run_command("--config", str(moved), "check-config", home=home.root)

    assert result.returncode == 0, result.stdout
    assert "Warnings (0)" in result.stdout


def test_the_daemon_logs_the_same_warning(home: WazuhHome) -> None:
    moved = home.root / "etc" / "integrations.conf"
    moved.write_text("<ossec_config>\n" + SLACK + "</ossec_config>\n")
    home.write_config("<ossec_config>\n" + SLACK + "</ossec_config>\n")
    (home.root / "logs" / "alerts" / "alerts.json").write_bytes(b"")

    result = run_command("--config", str(moved), "run", "--once", home=home.root)

    assert result.returncode == 0, result.stderr
    assert "also holds 1 <integration> block: Wazuh runs its own" in result.stderr
