"""The floods tables of integrator.toml: values, defaults, per-block tables, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.config.wazuh_home import integration_block, make_home, ossec_conf, run_command

from wazuh_integrator.config.models import (
    DigestSettings,
    IntegrationBlock,
    ThrottleSettings,
    WhereCondition,
)
from wazuh_integrator.config.settings import load_settings
from wazuh_integrator.errors import ConfigError


def settings_from(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "integrator.toml"
    path.write_text(text)
    return load_settings(path, display_path="etc/integrator.toml")


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, text)
    return [str(issue) for issue in caught.value.issues]


def block(name: str, index: int) -> IntegrationBlock:
    return IntegrationBlock(index=index, path="etc/ossec.conf", line=1, name=name)


def test_tables_and_defaults(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        """
[integrations.slack.throttle]
window = "1h"
limit = 2

[integrations.slack.digest]
group_interval = "10m"

[integrations.slack.filter]
exclude_agents = ["web01", "002"]
where = [
  { field = "data.srcip", cidr = ["10.0.0.0/8"], not = true },
  { field = "data.srcuser", in = ["root", "admin"] },
]
""",
    )
    slack = settings.for_integration("slack")
    assert slack.throttle == ThrottleSettings(key=("rule.id", "agent.id"), window_s=3600, limit=2)
    assert slack.digest == DigestSettings(group_by=("rule.id",), group_interval_s=600.0)
    assert slack.filter is not None
    assert slack.filter.exclude_agents == ("web01", "002")
    assert slack.filter.where == (
        WhereCondition(field="data.srcip", cidr=("10.0.0.0/8",), negate=True, line=12),
        WhereCondition(field="data.srcuser", any_of=("root", "admin"), line=13),
    )


def test_one_field_needs_no_list(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path, '[integrations.slack.throttle]\nkey = "rule.id"\nwindow = 60\nlimit = 1\n'
    )
    assert settings.for_integration("slack").throttle == ThrottleSettings(("rule.id",), 60.0, 1)


def test_a_block_table_overrides_its_name_table_for_that_block_only(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        """
[integrations.slack]
concurrency = 4
[integrations.slack.throttle]
window = "1h"
limit = 2

[integrations."slack#2".throttle]
window = "5m"
limit = 1
""",
    )
    assert settings.for_block(block("slack", 0)).throttle == ThrottleSettings(
        ("rule.id", "agent.id"), 3600.0, 2
    )
    second = settings.for_block(block("slack", 2))
    assert second.throttle == ThrottleSettings(("rule.id", "agent.id"), 300.0, 1)
    assert second.concurrency == 4  # the rest of the name's table still applies


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '[integrations.slack.throttle]\nwindow = "1h"\n',
            "etc/integrator.toml:1: integrations.slack.throttle.limit: missing (required)",
        ),
        (
            '[integrations.slack.throttle]\nwindow = "soon"\nlimit = 2\n',
            "etc/integrator.toml:2: integrations.slack.throttle.window: 'soon' is not a duration"
            " (a number of seconds, or like '30s', '90m', '24h', '2d')",
        ),
        (
            '[integrations.slack.throttle]\nwindow = "1h"\nlimit = 0\n',
            "etc/integrator.toml:3: integrations.slack.throttle.limit:"
            " 0 is not a whole number of at least 1",
        ),
        (
            "[integrations.slack.digest]\ngroup_by = []\n",
            "etc/integrator.toml:2: integrations.slack.digest.group_by:"
            " [] is not a non-empty list of dotted fields (like ['rule.id'])",
        ),
        (
            "[integrations.slack.digest]\nmax_alert = 5\n",
            "etc/integrator.toml:2: integrations.slack.digest.max_alert: unknown key"
            " (expected one of: group_by, group_wait, group_interval, max_alerts)",
        ),
        (
            "[integrations.virustotal.digest]\n",
            "etc/integrator.toml:1: integrations.virustotal.digest:"
            " virustotal looks up one alert at a time: no digests",
        ),
        (
            "[integrations.slack.filter]\nmin_level = 12\nmax_level = 5\n",
            "etc/integrator.toml:3: integrations.slack.filter.max_level:"
            " 5 is below min_level (12): nothing passes",
        ),
        (
            "[integrations.slack.filter]\nagents = [1]\n",
            "etc/integrator.toml:2: integrations.slack.filter.agents:"
            " 1: write agent ids as strings, as Wazuh does ('001')",
        ),
        (
            '[integrations.slack.filter]\nwhere = [\n  { field = "a", in = ["x"] },\n'
            '  { field = "data.srcip", cidr = "10.0.0.0/33" },\n]\n',
            "etc/integrator.toml:4: integrations.slack.filter.where[1].cidr:"
            " '10.0.0.0/33' is not a network: '10.0.0.0/33' does not appear to be an IPv4"
            " or IPv6 network",
        ),
        (
            '[integrations.slack.filter]\nwhere = [{ field = "rule.description", regex = "(" }]\n',
            "etc/integrator.toml:2: integrations.slack.filter.where[0].regex: '(' is not a"
            " valid regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            '[[integrations.slack.filter.where]]\nfield = "a"\nequals = 1\n\n'
            '[[integrations.slack.filter.where]]\nfield = "b"\nequals = 1\nexists = true\n',
            "etc/integrator.toml:5: integrations.slack.filter.where[1]:"
            " needs exactly one test (one of: equals, in, regex, cidr, exists)",
        ),
    ],
)
def test_bad_values_name_file_line_and_key(tmp_path: Path, text: str, error: str) -> None:
    assert errors_of(tmp_path, text) == [error]


def test_check_config_refuses_a_block_table_for_a_block_that_does_not_exist(
    tmp_path: Path,
) -> None:
    home = make_home(tmp_path / "ossec")
    home.write_config(ossec_conf(integration_block("slack", hook_url="https://h.example/x")))
    home.write_settings('\n[integrations."slack#1".throttle]\nwindow = "1h"\nlimit = 2\n')
    result = run_command("check-config", home=home.root)
    assert result.returncode == 1
    assert (
        'etc/integrator.toml:2: integrations."slack#1": ossec.conf has no <integration>'
        " block slack#1" in result.stdout + result.stderr
    )
