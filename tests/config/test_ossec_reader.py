from __future__ import annotations

from pathlib import Path

import pytest
from tests.config.wazuh_home import DATA, integration_block, ossec_conf

from wazuh_integrator.config.models import IntegrationBlock, InvalidBlock, OssecConfig
from wazuh_integrator.config.ossec import read_ossec_conf
from wazuh_integrator.secret import Secret

SHOWN = "etc/ossec.conf"


def read_text(tmp_path: Path, text: str) -> OssecConfig:
    path = tmp_path / "ossec.conf"
    path.write_text(text, encoding="utf-8")
    return read_ossec_conf(path, display_path=SHOWN)


def errors_of(config: OssecConfig) -> list[str]:
    return [str(issue) for issue in config.errors]


def only_block(config: OssecConfig) -> IntegrationBlock:
    assert config.errors == ()
    (block,) = config.blocks
    return block


def test_stock_manager_conf_yields_its_four_blocks_with_real_line_numbers() -> None:
    config = read_ossec_conf(DATA / "ossec" / "stock_manager.conf", display_path=SHOWN)

    assert config.errors == ()
    assert [(b.index, b.name, b.line) for b in config.blocks] == [
        (0, "slack", 262),
        (1, "pagerduty", 269),
        (2, "virustotal", 280),
        (3, "custom-ticketing", 287),
    ]
    slack, pagerduty, virustotal, ticketing = config.blocks
    assert slack.hook_url == Secret("https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX")
    assert slack.level == 10
    assert slack.json_format
    assert pagerduty.groups == ("authentication_failed", "authentication_failures")
    assert pagerduty.rule_ids == (5712, 5720)
    assert pagerduty.options == {"payload": {"severity": "critical"}}
    assert virustotal.groups == ("syscheck",)
    assert virustotal.api_key is not None
    # &amp; is the XML way to write "&"; the value is the URL itself.
    assert ticketing.hook_url == Secret(
        "https://tickets.example.com/api/new?token=s3cr3t&queue=soc"
    )
    assert ticketing.event_location == "^web|db01$"
    assert (ticketing.max_log, ticketing.timeout_s, ticketing.retries) == (300, 20, 5)
    assert ticketing.alert_format is None and not ticketing.json_format


def test_defaults_of_a_block_with_only_a_name(tmp_path: Path) -> None:
    block = only_block(read_text(tmp_path, ossec_conf(integration_block("custom-x"))))

    assert block == IntegrationBlock(index=0, path=SHOWN, line=2, name="custom-x")
    assert (block.max_log, block.timeout_s, block.retries, block.level) == (165, 10, 3, None)


def test_a_bare_ampersand_is_taken_literally_like_wazuh_does(tmp_path: Path) -> None:
    text = ossec_conf(integration_block("custom-x", hook_url="https://h.example/x?a=1&b=2"))

    assert only_block(read_text(tmp_path, text)).hook_url == Secret("https://h.example/x?a=1&b=2")


def test_xml_declaration_and_comments_do_not_shift_lines(tmp_path: Path) -> None:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- one\n two -->\n"
        "<ossec_config><!-- inline -->\n"
        "  <integration>\n"
        "    <!-- a comment inside -->\n"
        "    <name>custom-x</name>\n"
        "    <level>x</level>\n"
        "  </integration>\n"
        "</ossec_config>\n"
    )
    assert errors_of(read_text(tmp_path, text)) == [
        "etc/ossec.conf:8: <level>: 'x' is not a number"
    ]


def test_integration_blocks_are_indexed_across_roots_valid_or_not(tmp_path: Path) -> None:
    text = (
        ossec_conf(integration_block("custom-a"))
        + "<!-- between roots -->\n"
        + ossec_conf(integration_block("custom-b", level="nope"), integration_block("custom-c"))
    )
    config = read_text(tmp_path, text)

    assert [(b.index, b.name) for b in config.blocks] == [(0, "custom-a"), (2, "custom-c")]
    assert config.invalid_blocks == (InvalidBlock(index=1, line=8, name="custom-b"),)


def test_integration_outside_ossec_config_or_nested_deeper_is_ignored(tmp_path: Path) -> None:
    text = (
        "<agent_config>\n" + integration_block("custom-a") + "</agent_config>\n"
        "<ossec_config><global>\n" + integration_block("custom-b") + "</global></ossec_config>\n"
    )
    config = read_text(tmp_path, text)

    assert config.blocks == ()
    assert config.errors == ()


@pytest.mark.parametrize(
    ("element", "text", "field", "value"),
    [
        ("level", "0", "level", 0),
        ("level", " 16 ", "level", 16),
        ("level", "20", "level", 20),
        ("rule_id", "5712", "rule_ids", (5712,)),
        ("rule_id", " 1, 2 ,,3, ", "rule_ids", (1, 2, 3)),
        ("group", "sshd", "groups", ("sshd",)),
        ("group", "a,b,,c", "groups", ("a", "b", "c")),
        ("group", "a, b", "groups", ("a", "b")),
        ("event_location", "^/var/log|!x", "event_location", "^/var/log|!x"),
        ("options", '{"color": "#ff0000"}', "options", {"color": "#ff0000"}),
        ("options", "{}", "options", {}),
        ("max_log", "165", "max_log", 165),
        ("max_log", "1024", "max_log", 1024),
        ("timeout", "1", "timeout_s", 1),
        ("timeout", "3600", "timeout_s", 3600),
        ("retries", "0", "retries", 0),
        ("retries", "100", "retries", 100),
        ("alert_format", "json", "alert_format", "json"),
        ("alert_format", "text", "alert_format", "text"),
        ("api_key", "k e y", "api_key", Secret("k e y")),
    ],
)
def test_valid_values(tmp_path: Path, element: str, text: str, field: str, value: object) -> None:
    block = only_block(
        read_text(tmp_path, ossec_conf(integration_block("custom-x", **{element: text})))
    )

    assert getattr(block, field) == value


@pytest.mark.parametrize(
    ("element", "text", "message"),
    [
        ("level", "high", "'high' is not a number"),
        ("level", "-1", "'-1' is not a number"),
        ("level", "1.5", "'1.5' is not a number"),
        ("level", "١٢", "'١٢' is not a number"),  # Unicode digits are not digits here
        ("rule_id", "5712,abc", "'abc' is not a rule id (an integer)"),
        ("rule_id", "5712 5713", "'5712 5713' is not a rule id (an integer)"),
        ("rule_id", " , ,", "no rule id in ', ,'"),
        ("group", ",", "no group in ','"),
        ("event_location", "x" * 20_481, "does not compile: "),
        ("options", "[1, 2]", "must be a JSON object, not an array"),
        ("options", '"text"', "must be a JSON object, not a string"),
        ("options", "3", "must be a JSON object, not a number"),
        ("options", "null", "must be a JSON object, not null"),
        (
            "options",
            "{'a': 1}",
            "not valid JSON: Expecting property name enclosed in double quotes",
        ),
        ("max_log", "164", "164 is out of range 165-1024"),
        ("max_log", "1025", "1025 is out of range 165-1024"),
        ("max_log", "big", "'big' is not a number"),
        ("timeout", "0", "0 is out of range 1-3600"),
        ("retries", "101", "101 is out of range 0-100"),
    ],
)
def test_invalid_values(tmp_path: Path, element: str, text: str, message: str) -> None:
    config = read_text(tmp_path, ossec_conf(integration_block("custom-x", **{element: text})))

    (error,) = errors_of(config)
    assert error.startswith(f"etc/ossec.conf:4: <{element}>: {message}")
    assert config.blocks == ()
    assert config.invalid_blocks == (InvalidBlock(0, 2, "custom-x"),)


def test_options_error_gives_the_position_and_not_the_text(tmp_path: Path) -> None:
    text = ossec_conf(integration_block("custom-x", options='{"token": "hunter2",}'))

    assert errors_of(read_text(tmp_path, text)) == [
        "etc/ossec.conf:4: <options>: not valid JSON: "
        "Expecting property name enclosed in double quotes (line 1, column 21)"
    ]


def test_long_values_are_shortened_in_messages(tmp_path: Path) -> None:
    text = ossec_conf(integration_block("custom-x", level="9" * 30 + "x" * 30))

    assert errors_of(read_text(tmp_path, text)) == [
        f"etc/ossec.conf:4: <level>: '{'9' * 30}xxxxxxx...' is not a number"
    ]


def test_every_structural_problem_is_reported_at_its_line() -> None:
    config = read_ossec_conf(DATA / "ossec" / "bad_values.conf", display_path=SHOWN)

    assert errors_of(config) == [
        "etc/ossec.conf:5: <level>: 'high' is not a number",
        "etc/ossec.conf:6: <rule_id>: 'abc' is not a rule id (an integer)",
        "etc/ossec.conf:7: <options>: must be a JSON object, not an array",
        "etc/ossec.conf:8: <max_log>: 100 is out of range 165-1024",
        "etc/ossec.conf:9: <colour>: unknown element (expected one of: name, hook_url, "
        "api_key, alert_format, level, rule_id, group, event_location, options, max_log, "
        "timeout, retries)",
        "etc/ossec.conf:11: <integration>: missing <name>",
        "etc/ossec.conf:18: <level>: duplicated element (first at line 17)",
        "etc/ossec.conf:19: <group>: empty element",
    ]
    assert config.blocks == ()
    assert config.invalid_blocks == (
        InvalidBlock(0, 2, "slack"),
        InvalidBlock(1, 11, None),
        InvalidBlock(2, 14, "pagerduty"),
    )


def test_secrets_never_appear_in_any_message() -> None:
    config = read_ossec_conf(DATA / "ossec" / "bad_values.conf", display_path=SHOWN)
    messages = " ".join(str(issue) for issue in (*config.errors, *config.warnings))

    assert "secret-token" not in messages
    assert "pd-secret-key" not in messages


def test_an_empty_name_is_empty_not_missing(tmp_path: Path) -> None:
    config = read_text(tmp_path, ossec_conf("  <integration><name> </name></integration>\n"))

    assert errors_of(config) == ["etc/ossec.conf:2: <name>: empty element"]
    assert config.invalid_blocks == (InvalidBlock(0, 2, None),)


def test_an_element_holding_elements_is_an_error(tmp_path: Path) -> None:
    text = ossec_conf(
        "  <integration>\n    <name>custom-x</name>\n    <level><x/></level>\n  </integration>\n"
    )

    assert errors_of(read_text(tmp_path, text)) == [
        "etc/ossec.conf:4: <level>: must hold text, not <x>"
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mismatched_tag.conf", "etc/ossec.conf:5: XML syntax error: mismatched tag (column 5)"),
        (
            "unclosed_root.conf",
            "etc/ossec.conf:5: XML syntax error: <ossec_config> is never closed",
        ),
        (
            "binary_garbage.conf",
            "etc/ossec.conf:1: XML syntax error: not well-formed (invalid token) (column 1)",
        ),
    ],
)
def test_xml_syntax_errors_are_one_located_issue(name: str, expected: str) -> None:
    config = read_ossec_conf(DATA / "ossec" / name, display_path=SHOWN)

    assert errors_of(config) == [expected]
    assert not config.valid


def test_blocks_completed_before_a_syntax_error_are_kept() -> None:
    config = read_ossec_conf(DATA / "ossec" / "unclosed_root.conf", display_path=SHOWN)

    assert [block.name for block in config.blocks] == ["slack"]


def test_an_empty_file_is_valid_and_warned_about() -> None:
    config = read_ossec_conf(DATA / "ossec" / "empty.conf", display_path=SHOWN)

    assert config.errors == ()
    assert [str(w) for w in config.warnings] == [
        "etc/ossec.conf: no <integration> block: nothing will be delivered"
    ]


def test_a_missing_file_is_one_issue(tmp_path: Path) -> None:
    config = read_ossec_conf(tmp_path / "nope.conf")

    assert errors_of(config) == [
        f"{tmp_path / 'nope.conf'}: cannot read: No such file or directory"
    ]
    assert config.blocks == ()


def test_an_unreadable_file_is_one_issue(tmp_path: Path) -> None:
    config = read_ossec_conf(tmp_path, display_path=SHOWN)  # a directory

    assert errors_of(config) == ["etc/ossec.conf: cannot read: Is a directory"]


def test_undefined_entity_is_a_syntax_error(tmp_path: Path) -> None:
    text = ossec_conf(integration_block("custom-x", hook_url="https://h/&nbsp;"))

    assert errors_of(read_text(tmp_path, text)) == [
        "etc/ossec.conf:4: XML syntax error: undefined entity (column 25)"
    ]
