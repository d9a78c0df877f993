"""``check-config`` and ``test`` know the email, syslog, Opsgenie and TheHive
outputs: their required elements and options are checked, and ``test`` shows
what each would send, without its secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.config.wazuh_home import DATA, WazuhHome, integration_block, make_home, ossec_conf
from tests.config.wazuh_home import run_command as run

from wazuh_integrator.integrations.registry import BUILTINS

EMAIL_OPTIONS = '{"from": "wazuh@example.com", "to": ["soc@example.com"]}'
PASSWORD = "smtp-password-never-shown"
GENIE_KEY = "genie-key-never-shown"
HIVE_KEY = "hive-key-never-shown"

VALID_BLOCKS = (
    integration_block(
        "email", hook_url="smtp://127.0.0.1:2525", api_key=PASSWORD, options=EMAIL_OPTIONS
    ),
    integration_block("syslog", hook_url="udp://127.0.0.1:5514", options='{"format": "json"}'),
    integration_block("opsgenie", api_key=GENIE_KEY, hook_url="https://api.eu.opsgenie.com"),
    integration_block("thehive", hook_url="https://thehive.example", api_key=HIVE_KEY),
)


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    return make_home(tmp_path / "ossec")


def test_the_four_outputs_are_builtins() -> None:
    assert {"email", "syslog", "opsgenie", "thehive"} <= set(BUILTINS)


def test_check_config_accepts_them(home: WazuhHome) -> None:
    home.write_config(ossec_conf(*VALID_BLOCKS))
    result = run("check-config", home=home.root)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("email", "syslog", "opsgenie", "thehive"):
        assert any(
            name in line and line.endswith("enabled") for line in result.stdout.splitlines()
        ), result.stdout
    assert "Result: OK: 4 of 4 integrations will run" in result.stdout
    for secret in (PASSWORD, GENIE_KEY, HIVE_KEY):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (integration_block("email", options=EMAIL_OPTIONS),
         "missing <hook_url>, required by email"),
        (integration_block("syslog"), "missing <hook_url>, required by syslog"),
        (integration_block("opsgenie"), "missing <api_key>, required by opsgenie"),
        (integration_block("thehive", api_key=HIVE_KEY),
         "missing <hook_url>, required by thehive"),
        (integration_block("thehive"), "missing <hook_url> and <api_key>, required by thehive"),
        (integration_block("email", hook_url="smtp://mail", options='{"from": "w@x.y"}'),
         'options: "to" is required'),
        (integration_block("email", hook_url="https://mail", options=EMAIL_OPTIONS),
         "hook_url: must be smtp://host[:port] or smtps://host[:port]"),
        (integration_block("syslog", hook_url="tcp://siem:514", options='{"format": "cef"}'),
         'options: "format" must be one of "sd", "json"'),
        (integration_block("syslog", hook_url="siem:514"),
         "hook_url: must be udp://, tcp:// or tls://host:port"),
    ],
)  # fmt: skip
def test_check_config_disables_a_block_it_cannot_run(
    home: WazuhHome, block: str, reason: str
) -> None:
    home.write_config(ossec_conf(block))
    result = run("check-config", home=home.root)
    assert result.returncode == 1
    [row] = [line for line in result.stdout.splitlines() if "line 2 " in line]
    assert row.endswith(f"DISABLED  {reason}"), result.stdout
    assert "Result: NOT OK: 1 disabled integration" in result.stdout


def test_test_previews_what_each_would_send(home: WazuhHome) -> None:
    home.write_config(ossec_conf(*VALID_BLOCKS))
    result = run("test", "--json", str(DATA / "alerts" / "ssh_brute_force.json"), home=home.root)
    assert result.returncode == 0, result.stderr
    [output] = [json.loads(line) for line in result.stdout.splitlines()]
    payloads = {entry["integration"]: entry["payload"] for entry in output["results"]}
    assert payloads["email"]["to"] == ["soc@example.com"]
    assert payloads["email"]["subject"].startswith("[Wazuh] Level 10, rule 5712: sshd: brute")
    assert "<html>" in payloads["email"]["html"]
    assert json.loads(payloads["syslog"].split(" 5712 - ", 1)[1])["id"] == "1709288430.98765"
    assert payloads["syslog"].startswith("<131>1 2024-03-01T10:20:30.123+00:00 wazuh-manager")
    assert payloads["opsgenie"]["alias"] == "wazuh-1709288430.98765"
    assert payloads["opsgenie"]["priority"] == "P2"
    assert payloads["thehive"]["sourceRef"] == "wazuh-manager:1709288430.98765"
    assert payloads["thehive"]["severity"] == 3
    for secret in (PASSWORD, GENIE_KEY, HIVE_KEY):
        assert secret not in result.stdout + result.stderr


def test_check_config_names_an_email_template_that_does_not_compile(home: WazuhHome) -> None:
    home.write_config(ossec_conf(VALID_BLOCKS[0]))
    templates = home.root / "etc" / "templates"
    templates.mkdir(parents=True)
    (templates / "subject.j2").write_text("[Wazuh] {{ alert.rule.id }\n")
    home.write_settings('[integrations.email]\nsubject_template = "etc/templates/subject.j2"\n')
    result = run("check-config", home=home.root)
    assert result.returncode == 1
    assert "etc/templates/subject.j2:1: syntax error" in result.stdout, result.stdout
