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
    # Stock's XML reader decodes no entity: "&amp;" is five characters there too.
    assert ticketing.hook_url == Secret(
        "https://tickets.example.com/api/new?token=s3cr3t&amp;queue=soc"
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
        ("level", "016", "level", 16),
        ("level", "20", "level", 20),
        ("rule_id", "5712", "rule_ids", (5712,)),
        ("rule_id", " 1, 2 ,,3, ", "rule_ids", (1, 2, 3)),
        ("group", "sshd", "groups", ("sshd",)),
        # stock compares an empty item too, but not an empty last one
        ("group", "a,b,,c", "groups", ("a", "b", "", "c")),
        ("group", "a,b,", "groups", ("a", "b")),
        ("group", ",a", "groups", ("", "a")),
        ("group", ",", "groups", ("",)),
        ("group", "a, b", "groups", ("a", "b")),
        # what stock takes as written: no trimming, no entity decoding
        ("alert_format", " json", "alert_format", " json"),
        ("event_location", " web01", "event_location", " web01"),
        ("event_location", "a&amp;b", "event_location", "a&amp;b"),
        ("event_location", "&#60;x&gt;", "event_location", "&#60;x&gt;"),
        ("event_location", "a\\<b", "event_location", "a\\<b"),
        ("event_location", "a>b", "event_location", "a>b"),
        # except for the secrets, whose spaces would shift stock's arguments
        ("hook_url", " https://h.example/x\n", "hook_url", Secret("https://h.example/x")),
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
        ("level", "+1", "'+1' is not a number"),
        ("level", "1.5", "'1.5' is not a number"),
        ("level", " 16", "' 16' is not a number"),
        ("level", "16\n", "'16\\n' is not a number"),
        ("level", "١٢", "'١٢' is not a number"),  # Unicode digits are not digits here
        ("max_log", " 200", "' 200' is not a number"),
        ("hook_url", "  ", "empty element"),
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
        "etc/ossec.conf:6: <rule_id>: empty element",
        "etc/ossec.conf:7: <options>: must be a JSON object, not an array",
        "etc/ossec.conf:8: <max_log>: 100 is out of range 165-1024",
        "etc/ossec.conf:9: <colour>: unknown element (expected one of: name, hook_url, "
        "api_key, alert_format, level, rule_id, group, event_location, options, max_log, "
        "timeout, retries)",
        "etc/ossec.conf:11: <integration>: missing <name>",
        "etc/ossec.conf:18: <level>: '7 ' is not a number",
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


@pytest.mark.parametrize("name", ["<name></name>", "<name/>"])
def test_an_empty_name_is_empty_not_missing(tmp_path: Path, name: str) -> None:
    config = read_text(tmp_path, ossec_conf(f"  <integration>{name}</integration>\n"))

    assert errors_of(config) == ["etc/ossec.conf:2: <name>: empty element"]
    assert config.invalid_blocks == (InvalidBlock(0, 2, None),)


def test_a_blank_name_is_a_name_like_in_stock(tmp_path: Path) -> None:
    # Stock reads the block and then disables it: ' ' is no supported name.
    config = read_text(tmp_path, ossec_conf("  <integration><name> </name></integration>\n"))

    assert only_block(config).name == " "


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


def test_no_block_beside_an_integrations_conf_names_it(tmp_path: Path) -> None:
    """The cutover empties ossec.conf; check-config without --config said only
    "nothing will be delivered" and "OK: 0 of 0"."""
    (tmp_path / "ossec.conf").write_text("<ossec_config></ossec_config>\n")
    moved = tmp_path / "integrations.conf"
    moved.write_text("<ossec_config></ossec_config>\n")

    config = read_ossec_conf(tmp_path / "ossec.conf", display_path=SHOWN)

    assert [str(w) for w in config.warnings] == [
        "etc/ossec.conf: no <integration> block: nothing will be delivered;"
        f" the blocks of {moved} are read with --config {moved}"
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


def test_an_unknown_entity_is_text_like_any_other(tmp_path: Path) -> None:
    text = ossec_conf(integration_block("custom-x", hook_url="https://h/&nbsp;"))

    assert only_block(read_text(tmp_path, text)).hook_url == Secret("https://h/&nbsp;")


@pytest.mark.parametrize("name", ["custom-x ", " custom-x", "\n  custom-x\n"])
def test_a_name_is_not_trimmed_like_in_stock(tmp_path: Path, name: str) -> None:
    # Stock then disables the block: its name is no supported name.
    text = ossec_conf(f"  <integration>\n    <name>{name}</name>\n  </integration>\n")

    assert only_block(read_text(tmp_path, text)).name == name


# -- what stock accepts and how it reads it -----------------------------------


@pytest.mark.parametrize(
    ("text", "rule_ids", "warnings"),
    [
        ("5712", (5712,), []),
        ("5712,5713", (5712, 5713), []),
        (" 5712 , 5713 ", (5712, 5713), []),
        ("5712,,5713,", (5712, 5713), []),
        (",,5712", (5712,), []),
        ("05712", (5712,), []),
        # at a digit stock reads atoi's number, then goes on after the next comma
        ("5712x,5713", (5712, 5713), ["'x' is skipped"]),
        ("5712 5713", (5712,), ["'5713' is skipped"]),
        ("5712;5713", (5712,), ["';5713' is skipped"]),
        # at any other character it stops
        ("5712,abc,5713", (5712,), ["'abc,5713' is skipped"]),
        ("5712,-1", (5712,), ["'-1' is skipped"]),
        ("5712,\t5713", (5712,), ["'\\t5713' is skipped"]),
        # no id at all: no filter
        ("abc", (), ["'abc' is skipped", "no rule id in 'abc'"]),
        (" , ,", (), ["no rule id in ' , ,'"]),
        ("-5712", (), ["'-5712' is skipped", "no rule id in '-5712'"]),
        # 0 ends stock's list and is overwritten by the next id
        ("0", (0,), ["0 is read as 0 by stock"]),
        ("5712,0,5713", (5712, 0, 5713), ["0 is read as 0 by stock"]),
        # atoi keeps the low 32 bits of a saturated long
        ("4294967296", (4294967296,), ["4294967296 is read as 0 by stock"]),
        (
            "99999999999",
            (99999999999,),
            ["99999999999 does not fit a C int: stock reads it as 1215752191"],
        ),
    ],
)
def test_rule_ids_are_read_like_stock(
    tmp_path: Path, text: str, rule_ids: tuple[int, ...], warnings: list[str]
) -> None:
    config = read_text(tmp_path, ossec_conf(integration_block("custom-x", rule_id=text)))

    assert only_block(config).rule_ids == rule_ids
    shown = [str(warning) for warning in config.warnings]
    assert len(shown) == len(warnings), shown
    for got, start in zip(shown, warnings, strict=True):
        assert got.startswith(f"etc/ossec.conf:4: <rule_id>: {start}")


def test_a_repeated_element_is_not_an_error_and_the_last_one_wins(tmp_path: Path) -> None:
    text = ossec_conf(
        "  <integration>\n"
        "    <name>custom-a</name>\n"
        "    <level>5</level>\n"
        "    <group>web</group>\n"
        "    <name>custom-b</name>\n"
        "    <level>7</level>\n"
        "    <group>sshd</group>\n"
        "  </integration>\n"
    )
    config = read_text(tmp_path, text)

    block = only_block(config)
    assert (block.name, block.level, block.groups) == ("custom-b", 7, ("sshd",))
    assert [str(warning) for warning in config.warnings] == [
        "etc/ossec.conf:6: <name>: repeated element (first at line 3): "
        "like stock, the last one is used",
        "etc/ossec.conf:7: <level>: repeated element (first at line 4): "
        "like stock, the last one is used",
        "etc/ossec.conf:8: <group>: repeated element (first at line 5): "
        "like stock, the last one is used",
    ]


def test_repeated_rule_ids_add_up_like_stock(tmp_path: Path) -> None:
    text = ossec_conf(
        "  <integration>\n"
        "    <name>custom-x</name>\n"
        "    <rule_id>1,2</rule_id>\n"
        "    <rule_id>3</rule_id>\n"
        "  </integration>\n"
    )
    config = read_text(tmp_path, text)

    assert only_block(config).rule_ids == (1, 2, 3)
    assert [str(warning) for warning in config.warnings] == [
        "etc/ossec.conf:5: <rule_id>: repeated element (first at line 4): "
        "like stock, the ids of every <rule_id> are used"
    ]


def test_a_repeated_element_with_a_bad_value_is_still_an_error(tmp_path: Path) -> None:
    text = ossec_conf(
        "  <integration>\n"
        "    <name>custom-x</name>\n"
        "    <level>5</level>\n"
        "    <level>x</level>\n"
        "  </integration>\n"
    )

    assert errors_of(read_text(tmp_path, text)) == [
        "etc/ossec.conf:5: <level>: 'x' is not a number"
    ]


@pytest.mark.parametrize(
    ("text", "max_log"),
    [("165", 165), ("0165", 165), ("1024", 1024), ("4294967461", 165)],
)
def test_max_log_is_read_as_stock_stores_it(tmp_path: Path, text: str, max_log: int) -> None:
    config = read_text(tmp_path, ossec_conf(integration_block("custom-x", max_log=text)))

    assert only_block(config).max_log == max_log


@pytest.mark.parametrize(
    ("inside", "name"),
    [
        # stock ends a comment at the first "-->" (or "!>"): "--" may come before
        ("<!-- a -- b -->custom-x", "custom-x"),
        ("custom-<!-- x -->x", "custom-x"),
        ("<!- short !>custom-x", "custom-x"),
        ("custom-<!-- one\ntwo -->x", "custom-x"),
        # "\<" stands for itself
        ("custom-a\\<b", "custom-a\\<b"),
        ("custom-a&lt;b&amp;c", "custom-a&lt;b&amp;c"),
        ("custom-a&b", "custom-a&b"),
    ],
)
def test_text_is_read_like_stocks_xml_reader(tmp_path: Path, inside: str, name: str) -> None:
    text = ossec_conf(f"  <integration>\n    <name>{inside}</name>\n  </integration>\n")

    assert only_block(read_text(tmp_path, text)).name == name


def test_lines_after_a_multiline_stock_comment_keep_their_numbers(tmp_path: Path) -> None:
    text = (
        "<!-- one -- \n two \n three -->\n"
        "<ossec_config>\n"
        "  <integration>\n"
        "    <name>custom-x</name>\n"
        "    <level>x</level>\n"
        "  </integration>\n"
        "</ossec_config>\n"
    )

    assert errors_of(read_text(tmp_path, text)) == [
        "etc/ossec.conf:7: <level>: 'x' is not a number"
    ]


def test_attributes_are_ignored_and_element_names_are_case_sensitive(tmp_path: Path) -> None:
    text = ossec_conf(
        '  <integration type="x">\n'
        '    <name lang="en">custom-x</name>\n'
        "    <Level>5</Level>\n"
        "  </integration>\n"
    )

    assert [error.split(" (")[0] for error in errors_of(read_text(tmp_path, text))] == [
        "etc/ossec.conf:4: <Level>: unknown element"
    ]
