"""``wazuh-integrator check-config``, run as the installed command against a temporary home."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.config.wazuh_home import (
    DATA,
    WazuhHome,
    integration_block,
    make_home,
    ossec_conf,
    run_command,
)

from wazuh_integrator.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    return make_home(tmp_path / "ossec")


def assert_one_clean_run(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr


def test_stock_manager_conf_is_ok(home: WazuhHome) -> None:
    home.copy_config("stock_manager.conf")
    home.add_script("custom-ticketing")

    result = run_command("check-config", home=home.root)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert result.stdout == (
        f"Configuration  {home.ossec_conf}\n"
        f"Settings       {home.settings}: not found: every setting at its default\n"
        "\n"
        "Integrations (4)\n"
        "  #0   slack             line 262   enabled\n"
        "  #1   pagerduty         line 269   enabled\n"
        "  #2   virustotal        line 280   enabled\n"
        "  #3   custom-ticketing  line 287   enabled\n"
        "\n"
        "Errors (0)\n"
        "  none\n"
        "\n"
        "Warnings (0)\n"
        "  none\n"
        "\n"
        "Result: OK: 4 of 4 integrations will run; 0 warnings.\n"
    )


def test_disabled_invalid_and_warned_blocks_are_all_listed(home: WazuhHome) -> None:
    home.write_config(
        ossec_conf(
            integration_block(
                "slack", hook_url="https://hooks.slack.com/services/T/B/tok", group="a, b"
            ),
            integration_block("pagerduty"),
            integration_block("custom-gone"),
            integration_block("custom-x", level="high"),
        )
    )
    home.write_settings('[integrations.slack]\nrate_limit = "1/s"\n')

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert_one_clean_run(result)
    assert result.stdout == (
        f"Configuration  {home.ossec_conf}\n"
        f"Settings       {home.settings}: read (1 [integrations.*] section)\n"
        "\n"
        "Integrations (4)\n"
        "  #0   slack        line 2     valid\n"
        "  #1   pagerduty    line 7     DISABLED  missing <api_key>, required by pagerduty\n"
        "  #2   custom-gone  line 10    DISABLED  script integrations/custom-gone not found in "
        f"{home.root / 'integrations'}\n"
        "  #3   custom-x     line 13    INVALID   see the errors below\n"
        "\n"
        "Errors (1)\n"
        "  etc/ossec.conf:15: <level>: 'high' is not a number\n"
        "\n"
        "Warnings (1)\n"
        "  etc/ossec.conf:5: <group>: spaces around commas: we trim them, but stock Wazuh "
        "compares each item with its spaces and never matches it; write 'a,b'\n"
        "\n"
        "Result: NOT OK: 1 error, 2 disabled integrations, 1 warning; "
        "nothing will run until the errors are fixed.\n"
    )
    assert "tok" not in result.stdout


@pytest.mark.parametrize(
    ("conf", "first_error"),
    [
        ("bad_values.conf", "etc/ossec.conf:5: <level>: 'high' is not a number"),
        (
            "mismatched_tag.conf",
            (
                "etc/ossec.conf:5: XML syntax error: </integratio> does not close <integration>,"
                " opened at line 2 (column 5)"
            ),
        ),
        (
            "unclosed_root.conf",
            "etc/ossec.conf:5: XML syntax error: <ossec_config> is never closed",
        ),
        ("binary_garbage.conf", "etc/ossec.conf:1: XML syntax error: not well-formed"),
    ],
)
def test_bad_ossec_conf_files_exit_1_without_traceback(
    home: WazuhHome, conf: str, first_error: str
) -> None:
    home.copy_config(conf)

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert_one_clean_run(result)
    errors = result.stdout.split("Errors (", 1)[1].splitlines()
    assert errors[1].strip().startswith(first_error)
    assert "secret-token" not in result.stdout
    assert result.stdout.endswith("; nothing will run until the errors are fixed.\n")
    assert " will run;" not in result.stdout


def test_missing_ossec_conf(home: WazuhHome) -> None:
    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert_one_clean_run(result)
    assert "  etc/ossec.conf: cannot read: No such file or directory\n" in result.stdout


def test_bad_settings_are_errors_and_the_rest_is_still_checked(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k")))
    home.write_settings("[integrations.pagerduty]\nconcurrency = 0\ncolour = 'red'\n")

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert_one_clean_run(result)
    assert (
        f"Settings       {home.settings}: INVALID (see errors); defaults used to check the rest\n"
    ) in result.stdout
    assert "  #0   pagerduty  line 2     valid\n" in result.stdout
    assert "  etc/integrator.toml:2: integrations.pagerduty.concurrency: 0 is below 1\n" in (
        result.stdout
    )
    assert "  etc/integrator.toml:3: integrations.pagerduty.colour: unknown key" in result.stdout


def test_toml_syntax_error(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k")))
    home.write_settings("retry = \n")

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert_one_clean_run(result)
    assert "  etc/integrator.toml:1: TOML syntax error: Invalid value (column 9)\n" in result.stdout


def test_a_plugin_that_cannot_load_is_an_error(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k")))
    home.write_settings('plugins = ["no_such_module_here:Thing"]\n')

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert_one_clean_run(result)
    (line,) = [line for line in result.stdout.splitlines() if "plugins:" in line]
    assert line.startswith(
        "  etc/integrator.toml: plugins: cannot load integration 'no_such_module_here:Thing': "
    )
    assert line.endswith("No module named 'no_such_module_here'")


def test_a_plugin_is_resolved_in_process(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("custom-ticket")))
    home.write_settings('plugins = ["tests.config.sample_plugin:TicketIntegration"]\n')

    result = run_command("check-config", home=home.root, env={"PYTHONPATH": str(ROOT)})

    assert result.returncode == 1
    assert "DISABLED  missing <api_key>, required by custom-ticket\n" in result.stdout


@pytest.mark.parametrize(
    "arguments",
    [
        ["--home", "{home}", "check-config"],
        ["check-config", "--home", "{home}"],
        ["--home", "/nonexistent", "check-config", "--home", "{home}"],
        ["-d", "check-config", "-d", "--home", "{home}"],
    ],
)
def test_global_options_before_or_after_the_command(home: WazuhHome, arguments: list[str]) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k")))

    result = run_command(*(a.format(home=home.root) for a in arguments))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Result: OK: 1 of 1 integrations will run; 0 warnings.\n" in result.stdout


def test_wazuh_home_comes_from_the_environment(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k")))

    result = run_command("check-config", env={"WAZUH_HOME": str(home.root)})

    assert result.returncode == 0
    assert f"Configuration  {home.ossec_conf}\n" in result.stdout


def test_config_and_settings_paths_outside_the_home(home: WazuhHome, tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.conf"
    config.write_text(ossec_conf(integration_block("custom-x", level="x")), encoding="utf-8")
    settings = tmp_path / "elsewhere.toml"
    settings.write_text("grace_period = '5s'\n", encoding="utf-8")

    result = run_command(
        "check-config", "--config", str(config), "--settings", str(settings), home=home.root
    )

    assert result.returncode == 1
    assert f"  {config}:4: <level>: 'x' is not a number\n" in result.stdout
    assert f"Settings       {settings}: read (0 [integrations.*] sections)\n" in result.stdout


def test_a_settings_file_named_on_the_command_line_must_exist(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k")))

    result = run_command("check-config", "--settings", str(home.root / "nope.toml"), home=home.root)

    assert result.returncode == 1
    assert "  nope.toml: cannot read: file not found\n" in result.stdout


def test_python_dash_m_runs_the_same_command(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k")))

    result = subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home.root), "check-config"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0
    assert "Result: OK" in result.stdout


def test_no_command_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: wazuh-integrator" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--help"]) == 0
    assert "usage: wazuh-integrator check-config" in capsys.readouterr().out


def test_in_process_main_returns_the_status(
    home: WazuhHome, capsys: pytest.CaptureFixture[str]
) -> None:
    home.copy_config("bad_values.conf")

    assert main(["--home", str(home.root), "check-config"]) == 1
    out = capsys.readouterr().out
    assert "Errors (8)\n" in out
    assert "  #1   (no name)  line 11    INVALID   see the errors below\n" in out


def test_the_stock_data_file_is_where_tests_expect_it() -> None:
    assert (DATA / "ossec" / "stock_manager.conf").is_file()


def test_a_settings_error_means_nothing_runs(home: WazuhHome) -> None:
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url="https://hooks.slack.com/services/T/B/tok"),
        )
    )
    home.write_settings("concurrency = 3\n")

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert "  #0   slack  line 2     valid\n" in result.stdout
    assert result.stdout.endswith(
        "Result: NOT OK: 1 error, 0 warnings; nothing will run until the errors are fixed.\n"
    )


def test_template_errors_name_the_template_file_and_line(home: WazuhHome) -> None:
    templates = home.root / "etc" / "templates"
    templates.mkdir()
    (templates / "slack.j2").write_text('{"text": "ok",\n "x": "{% if %}"}\n')
    (templates / "summary.j2").write_text("{{ alert.rule.id }}\n")
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url="https://hooks.slack.com/services/T/B/tok"),
            integration_block("teams", hook_url="https://teams.example/wf"),
            integration_block(
                "jira",
                hook_url="https://example.atlassian.net",
                api_key="tok",
                options='{"project": "SEC", "user": "bot@example.com"}',
            ),
        )
    )
    home.write_settings(
        '[integrations.slack]\ntemplate = "etc/templates/slack.j2"\n'
        '[integrations.teams]\nsummary_template = "etc/templates/summary.j2"\n'
        '[integrations.jira]\ntemplate = "etc/templates/missing.j2"\n'
        'summary_template = "etc/templates/summary.j2"\n'
    )

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert_one_clean_run(result)
    errors = result.stdout.split("Errors (3)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert errors == [
        "  etc/templates/slack.j2:2: syntax error: Expected an expression, got 'end of statement"
        " block' (the template of integrations.slack in etc/integrator.toml)",
        "  etc/integrator.toml:4: integrations.teams.summary_template: teams does not take it"
        " (it takes template)",
        "  etc/templates/missing.j2: cannot read: file not found (the template of"
        " integrations.jira in etc/integrator.toml)",
    ]


@pytest.mark.parametrize(
    ("block", "state"),
    [
        (integration_block("telegram", api_key="1:t"), 'DISABLED  <options>: missing "chat_id"'),
        (integration_block("telegram", options='{"chat_id": 5}'), "DISABLED  missing <api_key>"),
        (integration_block("telegram", api_key="1:t", options='{"chat_id": 5}'), "enabled"),
        (integration_block("teams"), "DISABLED  missing <hook_url>, required by teams"),
        (integration_block("discord", hook_url="https://d.example/w"), "enabled"),
        (
            integration_block("jira", hook_url="https://j.example", api_key="t"),
            'DISABLED  <options>: missing "project"',
        ),
        (
            integration_block("webhook", hook_url="https://w.example", options='{"method": "GET"}'),
            'DISABLED  <options>: "method" must be one of POST, PUT, PATCH',
        ),
        (integration_block("webhook", hook_url="https://w.example"), "enabled"),
    ],
)
def test_new_outputs_required_elements_are_checked(home: WazuhHome, block: str, state: str) -> None:
    home.write_config(ossec_conf(block))
    result = run_command("check-config", home=home.root)
    assert_one_clean_run(result)
    [row] = [line for line in result.stdout.splitlines() if line.startswith("  #0")]
    assert state in row
    assert result.returncode == (0 if state == "enabled" else 1)


def test_a_block_table_can_name_its_own_template(home: WazuhHome) -> None:
    templates = home.root / "etc" / "templates"
    templates.mkdir()
    (templates / "ok.j2").write_text('{"text": "{{ alert.rule.id }}"}\n')
    (templates / "bad.j2").write_text('{"text": "{{ alert.rule.id }"}\n')
    hook = "https://hooks.slack.com/services/T/B/tok"
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url=hook),
            integration_block("slack", hook_url=hook, level="12"),
        )
    )
    home.write_settings(
        '[integrations.slack]\ntemplate = "etc/templates/ok.j2"\n'
        '[integrations."slack#1"]\ntemplate = "etc/templates/bad.j2"\n'
    )

    result = run_command("check-config", home=home.root)

    assert result.returncode == 1
    assert (
        "  etc/templates/bad.j2:1: syntax error: unexpected '}' (the template of"
        ' integrations."slack#1" in etc/integrator.toml)\n'
    ) in result.stdout
    assert "ok.j2" not in result.stdout
