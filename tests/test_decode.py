"""Alert lines: the fast filter-field decoder agrees with the full one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wazuh_integrator.decode import (
    AlertDecodeError,
    AlertTooDeepError,
    decode_alert,
    decode_fields,
)
from wazuh_integrator.filters import FilterFields

SSHD_ALERT: dict[str, Any] = {
    "timestamp": "2024-05-14T10:12:01.123+0000",
    "rule": {
        "level": 10,
        "description": "sshd: brute force trying to get access to the system. Non existent user.",
        "id": "5712",
        "mitre": {"id": ["T1110"], "tactic": ["Credential Access"], "technique": ["Brute Force"]},
        "frequency": 8,
        "firedtimes": 1,
        "mail": False,
        "groups": ["syslog", "sshd", "authentication_failures"],
        "pci_dss": ["11.4", "10.2.4", "10.2.5"],
        "gdpr": ["IV_35.7.d", "IV_32.2"],
    },
    "agent": {"id": "001", "name": "web01", "ip": "10.0.0.11"},
    "manager": {"name": "wazuh-manager"},
    "id": "1715681521.1234567",
    "previous_output": "May 14 10:11:58 web01 sshd[2411]: Invalid user admin from 203.0.113.7",
    "full_log": "May 14 10:12:01 web01 sshd[2417]: Invalid user oracle from 203.0.113.7 port 52",
    "predecoder": {"program_name": "sshd", "timestamp": "May 14 10:12:01", "hostname": "web01"},
    "decoder": {"parent": "sshd", "name": "sshd"},
    "data": {"srcip": "203.0.113.7", "srcport": "52"},
    "location": "/var/log/secure",
}


def line(value: Any) -> bytes:
    return orjson.dumps(value)


def test_typical_alert() -> None:
    assert decode_fields(line(SSHD_ALERT)) == FilterFields(
        has_rule=True,
        level=10,
        rule_id="5712",
        groups=("syslog", "sshd", "authentication_failures"),
        location="/var/log/secure",
    )
    assert decode_alert(line(SSHD_ALERT)) == SSHD_ALERT


def test_decode_alert_keeps_everything() -> None:
    raw = b'{"a": [1, 2.5, null, true], "b": {"c": "\\u00e9"}, "rule": {}}\n'
    assert decode_alert(raw) == {"a": [1, 2.5, None, True], "b": {"c": "é"}, "rule": {}}


@pytest.mark.parametrize(
    ("rule_patch", "top_patch", "expected"),
    [
        # a present level is cJSON's valueint: 0 for another type
        ({"level": "10"}, {}, {"level": 0}),
        ({"level": 10.7}, {}, {"level": 10}),
        ({"level": True}, {}, {"level": 1}),
        ({"level": None}, {}, {"level": 0}),
        ({"level": -3}, {}, {"level": -3}),
        # saturated to a C int, on the fast path too
        ({"level": 2**40}, {}, {"level": 2**31 - 1}),
        ({"level": -(2**40)}, {}, {"level": -(2**31)}),
        ({"level": 2**63}, {}, {"level": 2**31 - 1}),
        ({"id": 5712}, {}, {"rule_id": "5712"}),
        ({"id": None}, {}, {"rule_id": None}),
        ({"groups": ["a", 1, "b"]}, {}, {"groups": ("a", "b")}),
        ({"groups": "sshd"}, {}, {"groups": None}),
        ({"groups": []}, {}, {"groups": ()}),
        ({}, {"location": 42}, {"location": None}),
        ({}, {"location": "a\u0000b"}, {"location": "a"}),
        ({"groups": ["x\u0000y"]}, {}, {"groups": ("x",)}),
    ],
)
def test_odd_types_route_like_the_full_decoder(
    rule_patch: dict[str, Any], top_patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    value = {**SSHD_ALERT, "rule": {**SSHD_ALERT["rule"], **rule_patch}, **top_patch}
    fields = decode_fields(line(value))
    assert fields == FilterFields.from_alert(decode_alert(line(value)))
    for name, wanted in expected.items():
        assert getattr(fields, name) == wanted


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"location": "x"}', FilterFields(has_rule=False, location="x")),
        (b'{"rule": null}', FilterFields(has_rule=False)),
        (b'{"rule": "5712"}', FilterFields(has_rule=False)),
        (b'{"rule": [1]}', FilterFields(has_rule=False)),
        (b"{}", FilterFields(has_rule=False)),
        (b'{"rule": {}}', FilterFields(has_rule=True)),
        (
            b'{"Rule": {"LEVEL": 3, "Id": "1", "groups": ["g"]}, "LOCATION": "l"}',
            FilterFields(has_rule=True, level=3, rule_id="1", groups=("g",), location="l"),
        ),
        (
            b'  {"rule": {"level": 3, "id": "1", "groups": []}, "location": ""}\r\n',
            FilterFields(has_rule=True, level=3, rule_id="1", groups=(), location=""),
        ),
    ],
)
def test_shapes(raw: bytes, expected: FilterFields) -> None:
    assert decode_fields(raw) == expected


def test_integer_level_beyond_64_bits() -> None:
    raw = b'{"rule": {"level": 100000000000000000000000, "id": "1", "groups": []}, "location": ""}'
    fields = decode_fields(raw)
    assert fields.level is not None
    assert fields.level >= 16


def test_invalid_utf8_is_replaced_not_lost() -> None:
    raw = b'{"rule": {"level": 3, "id": "1", "groups": []}, "full_log": "caf\xe9", "location": "l"}'
    assert decode_alert(raw)["full_log"] == "caf\ufffd"
    assert decode_fields(raw) == FilterFields(
        has_rule=True, level=3, rule_id="1", groups=(), location="l"
    )


def test_invalid_utf8_in_a_filter_field() -> None:
    raw = b'{"rule": {"level": 3, "id": "1", "groups": ["\xff"]}, "location": "\xfex"}'
    assert decode_fields(raw) == FilterFields(
        has_rule=True, level=3, rule_id="1", groups=("\ufffd",), location="\ufffdx"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1, 2]", "not a JSON object but an array"),
        (b'"text"', "not a JSON object but a string"),
        (b"5", "not a JSON object but a number"),
        (b"null", "not a JSON object but null"),
        (b"true", "not a JSON object but a boolean"),
    ],
)
def test_json_that_is_not_an_object(raw: bytes, message: str) -> None:
    for decode in (decode_alert, decode_fields):
        with pytest.raises(AlertDecodeError) as raised:
            decode(raw)
        assert str(raised.value) == message


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n",
        b'{"rule": {"level": 3}',
        b'{"rule": {"level": 3}}}',
        b'{"rule": {"level": 3}} {"rule": {}}',
        b"{'rule': {}}",
        b'{"a": NaN}',
        b'{"secret": "hunter2"',
        b'{"a": "\xff',
        b"May 14 10:12:01 web01 sshd[2417]: Invalid user",
    ],
)
def test_not_json(raw: bytes) -> None:
    for decode in (decode_alert, decode_fields):
        with pytest.raises(AlertDecodeError) as raised:
            decode(raw)
        message = str(raised.value)
        assert message.startswith("not JSON: ")
        assert "hunter2" not in message
        assert "\n" not in message


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(AlertDecodeError, ValueError)


# --- the fast path agrees with the slow one on anything -----------------------

_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.sampled_from(["a", "1", " ", "\x00", "é", "\\"]), max_size=4),
)
_ANY = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
    max_leaves=6,
)
_FIELD_NAME = st.sampled_from(["level", "id", "groups", "Level", "ID", "other"])
_RULE = st.one_of(
    _ANY,
    st.dictionaries(_FIELD_NAME, st.one_of(_ANY, st.lists(_SCALAR, max_size=3)), max_size=5),
)
_ALERT = st.dictionaries(
    st.sampled_from(["rule", "Rule", "location", "LOCATION", "agent", "id"]),
    st.one_of(_RULE, _ANY),
    max_size=5,
)


@given(_ALERT)
def test_fast_path_agrees_with_full_decode(value: dict[str, Any]) -> None:
    raw = orjson.dumps(value)
    assert decode_fields(raw) == FilterFields.from_alert(orjson.loads(raw))


@given(st.binary(max_size=40))
def test_arbitrary_bytes_decode_or_raise_alert_decode_error(raw: bytes) -> None:
    try:
        fields = decode_fields(raw)
    except AlertDecodeError:
        with pytest.raises(AlertDecodeError):
            decode_alert(raw)
    else:
        assert fields == FilterFields.from_alert(decode_alert(raw))


_TEXT = st.text(st.sampled_from(["a", "B", "1", " ", "\x00", "é", "\\", '"']), max_size=5)
_NEAR_CANONICAL_RULE = st.fixed_dictionaries(
    {},
    optional={
        "level": st.one_of(st.integers(-20, 20), _SCALAR),
        "id": st.one_of(_TEXT, _SCALAR),
        "groups": st.one_of(st.lists(_TEXT, max_size=3), st.lists(_SCALAR, max_size=2)),
        "description": _TEXT,
    },
)
_NEAR_CANONICAL_ALERT = st.fixed_dictionaries(
    {"rule": _NEAR_CANONICAL_RULE},
    optional={"location": st.one_of(_TEXT, _SCALAR), "full_log": _TEXT},
)


@given(_NEAR_CANONICAL_ALERT)
def test_fast_path_agrees_with_full_decode_on_near_canonical_alerts(
    value: dict[str, Any],
) -> None:
    raw = orjson.dumps(value)
    assert decode_fields(raw) == FilterFields.from_alert(orjson.loads(raw))


def _nested_in(where: str, depth: int) -> bytes:
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    rule = b'"rule":{"level":5,"id":"1","groups":["a"]}'
    if where == "rule":
        rule = b'"rule":{"level":5,"id":"1","groups":["a"],"x":' + inner + b"}"
    elif where == "data":
        return b"{" + rule + b',"location":"x","data":' + inner + b"}"
    elif where == "array":
        return b"{" + rule + b',"location":"x","data":' + b"[" * depth + b"]" * depth + b"}"
    return b"{" + rule + b',"location":"x"}'


@pytest.mark.parametrize("where", ["data", "rule", "array"])
@pytest.mark.parametrize("depth", [100, 127, 128, 1000, 5000])
def test_the_full_decoder_refuses_nesting_beyond_the_limit(where: str, depth: int) -> None:
    line = _nested_in(where, depth)
    # The alert's own object, and the rule object, count as levels.
    if depth + (2 if where == "rule" else 1) > 128:
        with pytest.raises(AlertTooDeepError, match="nested more than 128 levels deep"):
            decode_alert(line)
    else:
        assert decode_alert(line)["rule"]["id"] == "1"


@pytest.mark.parametrize("where", ["data", "rule", "array"])
@pytest.mark.parametrize("depth", [1000, 5000, 100_000])
def test_the_fast_decoder_refuses_what_would_exhaust_the_stack(where: str, depth: int) -> None:
    # Below that, it reads the filter fields; the full decode of an alert that
    # matches refuses it (above).
    with pytest.raises(AlertTooDeepError):
        decode_fields(_nested_in(where, depth))
