"""Every ``--help`` reads as plain text and names the options docs/commands.md documents."""

from __future__ import annotations

import re

import pytest
from tests.config.wazuh_home import run_command

# Each command with the options docs/commands.md gives in its usage line.
DOCUMENTED_OPTIONS = {
    ("run",): ["--once", "--from-start", "--since", "--alerts", "--log-file", "--role"],
    ("replay",): ["--integration", "--since", "--until"],
    ("check-config",): ["--environment"],
    ("test",): ["--json", "--no-payload", "--send", "--integration"],
    ("status",): ["--json"],
    ("dead-letter", "list"): ["--integration", "--limit", "--json"],
    ("dead-letter", "show"): [],
    ("dead-letter", "replay"): ["--integration", "--all", "--dry-run"],
    ("dead-letter", "purge"): ["--integration", "--all", "--dry-run"],
    ("demo",): ["--dir"],
    ("bundle",): ["--python", "--arch", "--glibc", "--source", "--output"],
}


@pytest.mark.parametrize("command", sorted(DOCUMENTED_OPTIONS), ids=" ".join)
def test_help_is_plain_text_with_the_documented_options(command: tuple[str, ...]) -> None:
    result = run_command(*command, "--help")

    assert result.returncode == 0, result.stderr
    # replay's help once showed its docstring's ``markup`` as is.
    assert "``" not in result.stdout
    shown = set(re.findall(r"--[a-z][a-z-]+", result.stdout))
    assert set(DOCUMENTED_OPTIONS[command]) <= shown
