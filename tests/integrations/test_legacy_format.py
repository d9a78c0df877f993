"""The legacy text alert file: field order, sanitising rules and the cut of alertlog."""

from __future__ import annotations

from typing import Any

import pytest

from wazuh_integrator.integrations.legacy_format import format_legacy_alert

SAMPLE_ALERT: dict[str, Any] = {
    "timestamp": "2024-05-01T10:20:30.123+0000",
    "rule": {"level": 5, "description": "sshd: authentication failed.", "id": "5716"},
    "agent": {"id": "001", "name": "web01"},
    "location": "/var/log/auth.log",
    "full_log": "Failed password for root from 10.0.0.5 port 22 ssh2",
    "data": {"srcip": "10.0.0.5"},
    "id": "1714558830.1234",
}


def _values(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.split("\n"):
        key, _, quoted = line.partition("=")
        assert quoted.startswith("'") and quoted.endswith("'"), line
        values[key] = quoted[1:-1]
    return values


def test_sample_alert_gives_the_seven_lines_in_order_without_final_newline() -> None:
    assert format_legacy_alert(SAMPLE_ALERT, 165) == (
        "alertdate='2024-05-01T10:20:30.123+0000'\n"
        "alertlocation='/var/log/auth.log'\n"
        "ruleid='5716'\n"
        "alertlevel='5'\n"
        "ruledescription='sshd: authentication failed.'\n"
        "alertlog='Failed password for root from 10.0.0.5 port 22 ssh2'\n"
        "srcip='10.0.0.5'"
    )


def test_missing_fields_are_empty_values() -> None:
    assert format_legacy_alert({"rule": {"id": "1"}}, 165) == (
        "alertdate=''\nalertlocation=''\nruleid='1'\nalertlevel=''\n"
        "ruledescription=''\nalertlog=''\nsrcip=''"
    )


@pytest.mark.parametrize(
    ("alert", "key", "expected"),
    [
        # a field that is there but not a string: glibc prints stock's NULL so
        ({"location": True}, "alertlocation", "(null)"),
        ({"location": None}, "alertlocation", "(null)"),
        ({"timestamp": 1714558830}, "alertdate", "(null)"),
        ({"rule": {"id": 5716}}, "ruleid", "(null)"),
        ({"rule": {"description": ["x"]}}, "ruledescription", "(null)"),
        # the level is cJSON's valueint
        ({"rule": {"level": 12}}, "alertlevel", "12"),
        ({"rule": {"level": 5.9}}, "alertlevel", "5"),
        ({"rule": {"level": -3}}, "alertlevel", "-3"),
        ({"rule": {"level": 2**40}}, "alertlevel", "2147483647"),
        ({"rule": {"level": "12"}}, "alertlevel", "0"),
        ({"rule": {"level": True}}, "alertlevel", "1"),
        ({"rule": {"level": None}}, "alertlevel", "0"),
        # members are found ignoring ASCII case, the first of a kind, like cJSON
        ({"Location": "/var/log/x"}, "alertlocation", "/var/log/x"),
        ({"RULE": {"ID": "7", "id": "8"}}, "ruleid", "7"),
        ({"Full_Log": "hello"}, "alertlog", "hello"),
        ({"DATA": {"SrcIP": "1.2.3.4"}}, "srcip", "1.2.3.4"),
        # a C string ends at a NUL
        ({"location": "a\x00b"}, "alertlocation", "a"),
        ({"full_log": "ab\x00cd"}, "alertlog", "ab"),
        ({"data": {"srcip": "1.2\x003"}}, "srcip", "1.2"),
        # where stock crashes, the value is empty
        ({"rule": "not an object"}, "ruleid", ""),
        ({"full_log": 42}, "alertlog", ""),
        ({"data": None}, "srcip", ""),
        ({"data": ["srcip"]}, "srcip", ""),
        ({"data": {"srcip": 10}}, "srcip", ""),
    ],
)
def test_fields_are_read_like_stock_reads_them(
    alert: dict[str, Any], key: str, expected: str
) -> None:
    assert _values(format_legacy_alert(alert, 165))[key] == expected


@pytest.mark.parametrize(
    ("full_log", "expected"),
    [
        ("plain text 123", "plain text 123"),
        ("it's", "it s"),
        ('say "hi"', "say  hi "),
        ("`id`", " id "),
        ("bang!", "bang "),
        ("$HOME", " HOME"),
        ("C:\\Windows\\x", "C:/Windows/x"),
        ("a; rm -rf /", "a, rm -rf /"),
        ("tab\there", "tab here"),
        ("line1\nline2\r", "line1 line2 "),
        ("{x|y}~", " x y  "),
        ("z", "z"),  # 122, the last byte kept
        ("\x7f", " "),
        ("\x01\x1f", "  "),
        ("\x00\x1f", ""),  # a C string ends at its NUL
        ("é", "  "),  # two UTF-8 bytes, two spaces, like stock
        ("€", "   "),
        ("<tag attr=1>&amp;#%", "<tag attr=1>&amp,#%"),
    ],
)
def test_alertlog_sanitising(full_log: str, expected: str) -> None:
    assert _values(format_legacy_alert({"full_log": full_log}, 1024))["alertlog"] == expected


@pytest.mark.parametrize(
    ("srcip", "expected"),
    [
        ("192.168.1.10", "192.168.1.10"),
        ("fe80::1", "fe80::1"),
        ("10.0.0.1 ", "10.0.0.1 "),  # the space is kept
        ("1.2.3.4'; reboot", "1.2.3.4 ; reboot"),
        ("a\\b", "a b"),
        ("`x`", " x "),
        ("$(x)", "  x "),
        ("a-b,c", "a b c"),  # 45 and 44 are below 46
        ("{}", "  "),
        ("é", "  "),
        ("a\nb", "a b"),
    ],
)
def test_srcip_sanitising(srcip: str, expected: str) -> None:
    alert = {"data": {"srcip": srcip}}
    assert _values(format_legacy_alert(alert, 165))["srcip"] == expected


@pytest.mark.parametrize(
    ("length", "max_log", "expected"),
    [
        (164, 165, "x" * 164),
        # stock ends the text with "..." once it has counted max_log bytes,
        # so a text of exactly max_log bytes gets one too
        (165, 165, "x" * 162 + "..."),
        (166, 165, "x" * 162 + "..."),
        (5000, 165, "x" * 162 + "..."),
        (1023, 1024, "x" * 1023),
        (1024, 1024, "x" * 1021 + "..."),
        (1025, 1024, "x" * 1021 + "..."),
        (0, 165, ""),
        (10, 3, "..."),
        (3, 3, "..."),
        (2, 3, "xx"),
    ],
)
def test_alertlog_is_cut_to_max_log_with_an_ellipsis(
    length: int, max_log: int, expected: str
) -> None:
    alertlog = _values(format_legacy_alert({"full_log": "x" * length}, max_log))["alertlog"]
    assert alertlog == expected
    assert len(alertlog) <= max_log


def test_cut_counts_bytes_so_a_split_character_becomes_spaces() -> None:
    alertlog = _values(format_legacy_alert({"full_log": "é" * 100}, 165))["alertlog"]
    assert alertlog == " " * 162 + "..."


def test_cut_happens_before_sanitising_so_the_ellipsis_survives() -> None:
    alertlog = _values(format_legacy_alert({"full_log": "'" * 200}, 165))["alertlog"]
    assert alertlog == " " * 162 + "..."


def test_other_fields_are_not_sanitised() -> None:
    alert = {"rule": {"description": 'Bob\'s "test" $x', "id": "7;x", "level": 12}}
    values = _values(format_legacy_alert(alert, 165))
    assert values["ruledescription"] == 'Bob\'s "test" $x'
    assert values["ruleid"] == "7;x"
    assert values["alertlevel"] == "12"


def test_max_log_below_the_ellipsis_is_refused() -> None:
    with pytest.raises(ValueError, match="max_log must be at least 3"):
        format_legacy_alert({}, 2)
