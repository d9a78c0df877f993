"""``wazuh-integrator test``: dry runs of alerts, as the installed command and in process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from tests.config.wazuh_home import (
    DATA,
    WazuhHome,
    integration_block,
    make_home,
    ossec_conf,
    run_command,
)

from wazuh_integrator.commands.alert_inputs import AlertInput, read_alert_inputs

ROOT = Path(__file__).resolve().parents[2]
ALERTS = DATA / "alerts"
PLUGINS = (
    'plugins = ["tests.config.sample_plugin:TicketIntegration",'
    ' "tests.config.sample_plugin:BrokenPreviewIntegration"]\n'
)


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    home = make_home(tmp_path / "ossec")
    home.add_script("custom-script")
    home.write_config(
        ossec_conf(
            integration_block("custom-ticket", api_key="tk-secret-1", level="7"),
            integration_block("custom-script", group="ossec"),
            integration_block("custom-ticket", api_key="tk-secret-2", rule_id="503"),
            integration_block("custom-disabled"),  # no script: disabled, not shown
        )
    )
    home.write_settings(PLUGINS)
    return home


def run_test(home: WazuhHome, *args: str, stdin: str | None = None) -> Any:
    return run_command("test", *args, home=home.root, stdin=stdin, env={"PYTHONPATH": str(ROOT)})


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def miss(name: str, index: int, reason: str) -> dict[str, Any]:
    return {
        "integration": name,
        "index": index,
        "matched": False,
        "sent": False,
        "reason": reason,
        "payload": None,
    }


def hit(name: str, index: int, payload: Any) -> dict[str, Any]:
    return {
        "integration": name,
        "index": index,
        "matched": True,
        "sent": True,
        "reason": None,
        "payload": payload,
    }


def test_json_lines_with_bad_lines(home: WazuhHome) -> None:
    result = run_test(home, "--json", str(ALERTS / "mixed.jsonl"))

    assert result.returncode == 2, result.stderr
    name = str(ALERTS / "mixed.jsonl")
    assert json_lines(result.stdout) == [
        {
            "alert_id": "1709288430.98765",
            "results": [
                hit(
                    "custom-ticket",
                    0,
                    {
                        "title": "sshd: brute force trying to get access to the system.",
                        "alert": "1709288430.98765",
                        "token": "<secret>",
                    },
                ),
                miss(
                    "custom-script",
                    1,
                    "none of groups [ossec] in rule.groups [syslog, sshd, authentication_failures]",
                ),
                miss("custom-ticket", 2, "rule.id 5712 not in [503]"),
            ],
        },
        {
            "alert_id": "1709288460.1",
            "results": [
                miss("custom-ticket", 0, "level 3 < 7"),
                hit("custom-script", 1, None),
                hit(
                    "custom-ticket",
                    2,
                    {"title": "Wazuh agent started.", "alert": "1709288460.1", "token": "<secret>"},
                ),
            ],
        },
        {"error": f"{name}:4: not valid JSON: Expecting value (column 1)"},
        {"error": f"{name}:5: not a JSON object but an array"},
        {
            "alert_id": "1709288520.2",
            "results": [
                miss("custom-ticket", 0, "alert has no rule"),
                miss("custom-script", 1, "alert has no rule"),
                miss("custom-ticket", 2, "alert has no rule"),
            ],
        },
    ]
    assert "tk-secret" not in result.stdout + result.stderr
    assert (
        "note: custom-disabled #3 (line 16) is disabled: script integrations/custom-disabled"
        in (result.stderr)
    )


def test_a_pretty_printed_alert_from_stdin(home: WazuhHome) -> None:
    text = (ALERTS / "ssh_brute_force.json").read_text(encoding="utf-8")

    result = run_test(home, "--json", stdin=text)

    assert result.returncode == 0, result.stderr
    (output,) = json_lines(result.stdout)
    assert output["alert_id"] == "1709288430.98765"
    assert [r["matched"] for r in output["results"]] == [True, False, False]


def test_dash_means_stdin_and_files_are_read_in_order(home: WazuhHome) -> None:
    pretty = str(ALERTS / "ssh_brute_force.json")
    line = '{"id": "from-stdin", "rule": {"level": 1, "id": "1", "groups": []}}\n'

    result = run_test(home, "--json", pretty, "-", pretty, stdin=line)

    assert result.returncode == 0
    assert [o["alert_id"] for o in json_lines(result.stdout)] == [
        "1709288430.98765",
        "from-stdin",
        "1709288430.98765",
    ]


def test_a_missing_input_file_is_an_error_line_and_the_rest_goes_on(home: WazuhHome) -> None:
    missing = str(home.root / "nope.json")

    result = run_test(home, "--json", missing, str(ALERTS / "ssh_brute_force.json"))

    assert result.returncode == 2
    first, second = json_lines(result.stdout)
    assert first == {"error": f"{missing}: cannot read: No such file or directory"}
    assert second["alert_id"] == "1709288430.98765"


def test_readable_output(home: WazuhHome) -> None:
    result = run_test(home, str(ALERTS / "mixed.jsonl"))

    assert result.returncode == 2
    name = str(ALERTS / "mixed.jsonl")
    assert result.stdout.startswith(
        f'{name}:1: alert 1709288430.98765, rule 5712 level 10, location "/var/log/auth.log"\n'
        "  #0   custom-ticket  MATCH\n"
        "        {\n"
        '          "title": "sshd: brute force trying to get access to the system.",\n'
        '          "alert": "1709288430.98765",\n'
        '          "token": "<secret>"\n'
        "        }\n"
        "  #1   custom-script  no match: none of groups [ossec] in rule.groups "
        "[syslog, sshd, authentication_failures]\n"
        "  #2   custom-ticket  no match: rule.id 5712 not in [503]\n"
        "\n"
    )
    assert "  #1   custom-script  MATCH (no body to show)\n" in result.stdout
    assert f"{name}:4: not valid JSON: Expecting value (column 1)\n" in result.stderr
    assert "not valid JSON" not in result.stdout
    assert f'{name}:6: alert 1709288520.2, no rule, location "syscheck"\n' in result.stdout


def test_no_payload_option(home: WazuhHome) -> None:
    result = run_test(home, "--no-payload", str(ALERTS / "ssh_brute_force.json"))

    assert result.returncode == 0
    assert "  #0   custom-ticket  MATCH\n  #1   custom-script  no match" in result.stdout
    assert "title" not in result.stdout


def test_a_preview_that_fails_gives_a_null_payload_and_a_warning(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("custom-broken")))

    result = run_test(home, "--json", str(ALERTS / "ssh_brute_force.json"))

    assert result.returncode == 3  # a body that cannot be built is a failure, plugin or not
    failed = {
        **hit("custom-broken", 0, None),
        "sent": False,
        "reason": "no body: 'no such field'",
        "error": "'no such field'",
    }
    assert json_lines(result.stdout) == [{"alert_id": "1709288430.98765", "results": [failed]}]
    assert "custom-broken#0 could not build its payload for alert 1709288430.98765" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_builtin_payloads_are_previewed(home: WazuhHome) -> None:
    home.write_config(
        ossec_conf(
            integration_block(
                "slack", hook_url="https://hooks.slack.com/services/T/B/hook-token", level="5"
            )
        )
    )

    result = run_test(home, "--json", str(ALERTS / "ssh_brute_force.json"))

    assert result.returncode == 0, result.stderr
    (output,) = json_lines(result.stdout)
    (slack,) = output["results"]
    assert slack["matched"] is True
    attachment = slack["payload"]["attachments"][0]
    assert attachment["color"] == "danger"
    assert attachment["ts"] == "1709288430.98765"
    assert "hook-token" not in result.stdout


@pytest.mark.parametrize("conf", ["bad_values.conf", "mismatched_tag.conf", "binary_garbage.conf"])
def test_an_invalid_configuration_exits_1_and_reads_nothing(home: WazuhHome, conf: str) -> None:
    home.copy_config(conf)

    result = run_test(home, "--json", stdin='{"id": "1", "rule": {}}\n')

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("wazuh-integrator: etc/ossec.conf:")
    assert "Traceback" not in result.stderr
    assert "secret-token" not in result.stderr


def test_invalid_settings_exit_1(home: WazuhHome) -> None:
    home.write_settings("concurrency = 3\n")

    result = run_test(home, "--json", stdin="")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "wazuh-integrator: etc/integrator.toml:1: concurrency: unknown key (expected one of: "
        "state_dir, max_line_bytes, follow, metrics_address, grace_period, http_processes, plugins)"
    ]


def test_no_enabled_block_is_an_error_that_names_the_moved_blocks(home: WazuhHome) -> None:
    """After the cutover the blocks live in etc/integrations.conf; a `test` that
    read the emptied ossec.conf printed "no enabled integration" and exited 0."""
    moved = home.root / "etc" / "integrations.conf"
    moved.write_text(home.ossec_conf.read_text())
    home.write_config("<ossec_config></ossec_config>\n")

    result = run_test(home, stdin=(ALERTS / "ssh_brute_force.json").read_text())

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"nothing to test; the blocks of {moved} are read with --config {moved}" in result.stderr

    with_config = run_test(
        home, "--config", str(moved), stdin=(ALERTS / "ssh_brute_force.json").read_text()
    )
    assert with_config.returncode == 0, with_config.stderr
    assert "MATCH" in with_config.stdout


@pytest.mark.parametrize("mode", [[], ["--json"]], ids=["readable", "json"])
def test_input_without_any_alert_tests_nothing_and_says_so(
    home: WazuhHome, mode: list[str]
) -> None:
    # `grep ... | wazuh-integrator test` whose grep matched nothing.
    result = run_test(home, *mode, stdin="\n\n")

    assert result.returncode == 1
    assert "nothing tested: the input held no alert" in result.stderr
    assert "MATCH" not in result.stdout
    if mode:
        assert result.stdout == ""  # still one object per alert: none


# -- reading alert inputs, in process ------------------------------------------


def test_json_lines_skip_blank_lines_and_keep_line_numbers() -> None:
    text = '{"id": "a"}\n\n  \n{"id": "b"}\n42\n'

    assert list(read_alert_inputs("f", io.BytesIO(text.encode()))) == [
        AlertInput("f:1", alert={"id": "a"}),
        AlertInput("f:4", alert={"id": "b"}),
        AlertInput("f:5", error="f:5: not a JSON object but a number"),
    ]


def test_pretty_printed_objects_one_after_another() -> None:
    text = '{\n  "id": "a"\n}\n{\n  "id": "b",\n  "rule": {"level": 3}\n}\n'

    assert list(read_alert_inputs("f", io.BytesIO(text.encode()))) == [
        AlertInput("f:1", alert={"id": "a"}),
        AlertInput("f:4", alert={"id": "b", "rule": {"level": 3}}),
    ]


def test_a_broken_pretty_printed_object_is_located_and_ends_the_file() -> None:
    text = '{\n  "id": "a"\n}\n{\n  "id": "b",\n}\n{"id": "c"}\n'

    assert list(read_alert_inputs("f", io.BytesIO(text.encode()))) == [
        AlertInput("f:1", alert={"id": "a"}),
        AlertInput(
            "f:4",
            error="f:6: not valid JSON: Expecting property name enclosed in double quotes "
            "(column 1)",
        ),
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("[]", "f:1: not a JSON object but an array"),
        ('"x"', "f:1: not a JSON object but a string"),
        ("true", "f:1: not a JSON object but a boolean"),
        ("null", "f:1: not a JSON object but null"),
        (
            "{bad",
            "f:1: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        ),
        ("nope", "f:1: not valid JSON: Expecting value (column 1)"),
    ],
)
def test_lines_that_are_not_alerts(line: str, error: str) -> None:
    assert list(read_alert_inputs("f", io.BytesIO(line.encode() + b"\n"))) == [
        AlertInput("f:1", error=error)
    ]


# -- verdicts the integration decides, totals, streaming ------------------------

SHUFFLE_SKIPPED = {
    "id": "1.1",
    "rule": {"id": "5710", "level": 5, "groups": ["sshd"]},
    "location": "/var/log/auth.log",
}
SHUFFLE_SENT = {**SHUFFLE_SKIPPED, "id": "1.2", "rule": {**SHUFFLE_SKIPPED["rule"], "id": "5711"}}
SHUFFLE_REASON = (
    "skipped by the integration: rule 5710 is in Shuffle's skip list"
    " (alerts of Shuffle's own containers)"
)


@pytest.fixture
def shuffle_home(home: WazuhHome) -> WazuhHome:
    home.write_config(
        ossec_conf(
            integration_block("shuffle", hook_url="https://shuffle.example/hooks/w-token"),
            integration_block("custom-ticket", api_key="tk-secret-1", level="7"),
        )
    )
    return home


def alert_lines(*alerts: dict[str, Any]) -> str:
    return "".join(json.dumps(alert) + "\n" for alert in alerts)


def test_an_alert_shuffle_skips_is_not_sent_and_says_why(shuffle_home: WazuhHome) -> None:
    result = run_test(shuffle_home, "--json", stdin=alert_lines(SHUFFLE_SKIPPED, SHUFFLE_SENT))

    assert result.returncode == 0, result.stderr
    skipped, sent = json_lines(result.stdout)
    assert skipped["results"][0] == {
        "integration": "shuffle",
        "index": 0,
        "matched": True,
        "sent": False,
        "reason": SHUFFLE_REASON,
        "payload": None,
    }
    assert sent["results"][0]["sent"] is True
    assert sent["results"][0]["reason"] is None
    assert sent["results"][0]["payload"]["rule_id"] == "5711"
    for output in (skipped, sent):
        for verdict in output["results"]:
            assert (verdict["reason"] is None) == verdict["sent"]


def test_readable_verdicts_and_totals(shuffle_home: WazuhHome) -> None:
    text = alert_lines(SHUFFLE_SKIPPED, SHUFFLE_SENT) + "not json\n" + alert_lines({"id": "x"})

    result = run_test(shuffle_home, "--no-payload", stdin=text)

    assert result.returncode == 2
    assert f"  #0   shuffle        MATCH, NOT SENT: {SHUFFLE_REASON}\n" in result.stdout
    assert "  #0   shuffle        MATCH\n" in result.stdout
    assert result.stdout.endswith(
        "Totals: 3 alerts read, 1 not an alert\n"
        "  #0   shuffle        sent 1, not sent 2 (no rule 1, skipped by the integration 1)\n"
        "  #1   custom-ticket  sent 0, not sent 3 (level filter 2, no rule 1)\n"
    )
    assert result.stderr == "<stdin>:3: not valid JSON: Expecting value (column 1)\n"
    assert "w-token" not in result.stdout + result.stderr


def test_json_totals_go_to_stderr(shuffle_home: WazuhHome) -> None:
    result = run_test(shuffle_home, "--json", stdin=alert_lines(SHUFFLE_SKIPPED))

    assert len(json_lines(result.stdout)) == 1
    assert result.stderr.startswith("Totals: 1 alert read, 0 not an alert\n")


def test_lines_split_on_newline_only() -> None:
    # U+2028 and U+0085 are valid inside JSON strings; splitlines() would cut there.
    alert = '{"id": "a", "full_log": "one\u2028two\u0085three"}\n'

    (item,) = read_alert_inputs("f", io.BytesIO(alert.encode()))

    assert item.alert is not None
    assert item.alert["full_log"] == "one\u2028two\u0085three"


def test_totals_count_throttled_alerts_as_not_sent(shuffle_home: WazuhHome) -> None:
    shuffle_home.write_settings(
        '[integrations.shuffle.throttle]\nkey = ["rule.id"]\nwindow = "1h"\nlimit = 1\n'
    )
    sent_twice = alert_lines(SHUFFLE_SENT, {**SHUFFLE_SENT, "id": "1.3"})

    result = run_test(shuffle_home, "--json", stdin=sent_twice)

    first, second = (output["results"][0] for output in json_lines(result.stdout))
    assert (first["sent"], second["sent"]) == (True, False)
    assert second["matched"] is True
    assert second["reason"].startswith("throttled: ")
    assert "  #0   shuffle  sent 1, not sent 1 (throttled 1)\n" in result.stderr


def test_templates_are_rendered_and_their_failures_shown(home: WazuhHome) -> None:
    templates = home.root / "etc" / "templates"
    templates.mkdir()
    (templates / "slack.j2").write_text('{"text": "{{ alert.rule.description }}"}\n')
    (templates / "teams.j2").write_text('{"text": "{{ alert.rule.no_such }}"}\n')
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url="https://hooks.slack.com/services/T/B/tok"),
            integration_block("teams", hook_url="https://teams.example/wf"),
        )
    )
    home.write_settings(
        '[integrations.slack]\ntemplate = "etc/templates/slack.j2"\n'
        '[integrations.teams]\ntemplate = "etc/templates/teams.j2"\n'
    )

    result = run_test(home, str(ALERTS / "ssh_brute_force.json"))

    assert result.returncode == 3, result.stderr
    assert '"text": "sshd: brute force trying to get access to the system. Non existent user."' in (
        result.stdout
    )
    assert (
        "  #1   teams  MATCH but no body: template etc/templates/teams.j2:1:"
        " alert.rule.no_such is missing\n"
    ) in result.stdout
    assert "Totals: 1 alert read, 0 not an alert, 1 with no body\n" in result.stdout
    assert "  #1   teams  sent 0, not sent 1 (no body 1)\n" in result.stdout


@pytest.mark.parametrize("flags", [(), ("--no-payload",), ("--json",)])
def test_a_template_that_fails_to_render_exits_3_naming_it(
    home: WazuhHome, flags: tuple[str, ...]
) -> None:
    templates = home.root / "etc" / "templates"
    templates.mkdir()
    (templates / "slack.json.j2").write_text(
        '{"text": "{{ alert.rule.description }}",\n "n": {{ 1 // alert.rule.zero }}}\n'
    )
    home.write_config(
        ossec_conf(integration_block("slack", hook_url="https://hooks.slack.com/services/T/B/tok"))
    )
    home.write_settings('[integrations.slack]\ntemplate = "etc/templates/slack.json.j2"\n')
    alert = {"id": "1.1", "rule": {"level": 9, "id": "5712", "description": "d", "zero": 0}}

    result = run_test(home, *flags, "-", stdin=alert_lines(alert))

    assert result.returncode == 3, result.stderr
    why = (
        "template etc/templates/slack.json.j2:2:"
        " ZeroDivisionError: integer division or modulo by zero"
    )
    if "--json" in flags:
        shown = json_lines(result.stdout)[0]["results"][0]
        assert shown["error"] == why
        # run would dead-letter it: not "sent": true with a null reason, as it once said.
        assert (shown["sent"], shown["reason"]) == (False, f"no body: {why}")
        assert "1 with no body" in result.stderr
    else:
        assert f"  #0   slack  MATCH but no body: {why}\n" in result.stdout


def test_unicode_line_separators_inside_an_alert_do_not_split_it() -> None:
    # cJSON writes U+2028/U+2029 raw; alerts.json lines end at "\n" only.
    text = '{"id": "1", "full_log": "a\u2028b\u2029c\x85d"}\n{"id": "2"}\n'
    assert list(read_alert_inputs("f", io.BytesIO(text.encode()))) == [
        AlertInput("f:1", alert={"id": "1", "full_log": "a\u2028b\u2029c\x85d"}),
        AlertInput("f:2", alert={"id": "2"}),
    ]


@pytest.mark.parametrize("depth", [129, 1000, 100_000])
def test_a_deeply_nested_alert_is_an_error_line_and_the_rest_goes_on(depth: int) -> None:
    deep = '{"id": "1", "data": ' + "[" * depth + "]" * depth + "}"
    items = list(read_alert_inputs("f", io.BytesIO(f"{deep}\n".encode() + b'{"id": "2"}\n')))
    assert items == [
        AlertInput("f:1", error="f:1: not valid JSON: nested more than 128 levels deep"),
        AlertInput("f:2", alert={"id": "2"}),
    ]


def test_the_command_survives_a_deeply_nested_alert(home: WazuhHome) -> None:
    deep = '{"rule": {"level": 9, "id": "1", "x": ' + '{"a":' * 1000 + "1" + "}" * 1000 + "}}"
    result = run_test(home, "--json", "-", stdin=deep + "\n")
    assert result.returncode == 2, result.stderr
    assert json_lines(result.stdout) == [
        {"error": "<stdin>:1: not valid JSON: nested more than 128 levels deep"}
    ]
    assert "Traceback" not in result.stderr
