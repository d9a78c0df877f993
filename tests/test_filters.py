"""An integration block's filters: which alerts pass, and why the others do not."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.filters import AlertFilter, FilterFields, c_atoi, compile_filter
from wazuh_integrator.sregex import SRegexError


def block(
    *,
    level: int | None = None,
    rule_ids: tuple[int, ...] = (),
    groups: tuple[str, ...] = (),
    event_location: str | None = None,
) -> IntegrationBlock:
    return IntegrationBlock(
        index=0,
        path="/var/ossec/etc/ossec.conf",
        line=1,
        name="custom-test",
        level=level,
        rule_ids=rule_ids,
        groups=groups,
        event_location=event_location,
    )


def alert(
    level: Any = 5,
    rule_id: Any = "5712",
    groups: Any = ("syslog", "sshd"),
    location: Any = "/var/log/secure",
) -> dict[str, Any]:
    rule: dict[str, Any] = {"level": level, "id": rule_id, "description": "sshd: brute force"}
    if groups is not None:
        rule["groups"] = list(groups) if isinstance(groups, tuple) else groups
    return {"rule": rule, "location": location, "agent": {"id": "001", "name": "web01"}}


def reason(flt: IntegrationBlock, alert: dict[str, Any]) -> str | None:
    return compile_filter(flt).reason(FilterFields.from_alert(alert))


# --- FilterFields.from_alert ------------------------------------------------


def test_from_alert_reads_a_typical_alert() -> None:
    assert FilterFields.from_alert(alert()) == FilterFields(
        has_rule=True,
        level=5,
        rule_id="5712",
        groups=("syslog", "sshd"),
        location="/var/log/secure",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (10, 10),
        (0, 0),
        (-3, -3),
        # cJSON keeps a number's integer part, saturated to a C int, and true as 1
        (2**70, 2**31 - 1),
        (-(2**70), -(2**31)),
        (1e300, 2**31 - 1),
        (2**31 - 1, 2**31 - 1),
        (7.9, 7),
        (-0.5, 0),
        (-1.5, -1),
        (True, 1),
        # any other type is there with a valueint of 0
        (False, 0),
        ("10", 0),
        (None, 0),
        ([10], 0),
        ({"n": 10}, 0),
    ],
)
def test_from_alert_level(raw: Any, expected: int | None) -> None:
    fields = FilterFields.from_alert({"rule": {"level": raw}})
    assert fields.level == expected
    assert type(fields.level) in (int, type(None))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5712", "5712"),
        ("", ""),
        ("abc", "abc"),
        (5712, "5712"),
        ("57\x0012", "57"),
        (True, None),
        (57.0, None),
        (None, None),
        (["5712"], None),
    ],
)
def test_from_alert_rule_id(raw: Any, expected: str | None) -> None:
    assert FilterFields.from_alert({"rule": {"id": raw}}).rule_id == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["a", "b"], ("a", "b")),
        ([], ()),
        (["a", 1, None, ["b"], "c"], ("a", "c")),
        (["web\x00x"], ("web",)),
        # cJSON walks an object's members like an array's items
        ({"x": "a", "y": 2}, ("a",)),
        ("syslog", None),
        (None, None),
        (3, None),
    ],
)
def test_from_alert_groups(raw: Any, expected: tuple[str, ...] | None) -> None:
    assert FilterFields.from_alert({"rule": {"groups": raw}}).groups == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("/var/log/secure", "/var/log/secure"), ("", ""), ("a\x00b", "a"), (1, None), (None, None)],
)
def test_from_alert_location(raw: Any, expected: str | None) -> None:
    assert FilterFields.from_alert({"rule": {}, "location": raw}).location == expected


@pytest.mark.parametrize("rule", [None, "rule", 5, ["level"], True])
def test_from_alert_rule_that_is_not_an_object(rule: Any) -> None:
    fields = FilterFields.from_alert({"rule": rule, "location": "x"})
    assert fields == FilterFields(has_rule=False, location="x")


def test_from_alert_without_rule() -> None:
    assert FilterFields.from_alert({}) == FilterFields(has_rule=False)


def test_from_alert_finds_members_ignoring_ascii_case_like_cjson() -> None:
    fields = FilterFields.from_alert(
        {"RULE": {"Level": 3, "ID": "1", "Groups": ["g"]}, "Location": "l"}
    )
    assert fields == FilterFields(has_rule=True, level=3, rule_id="1", groups=("g",), location="l")


def test_from_alert_takes_the_first_case_variant() -> None:
    fields = FilterFields.from_alert({"Location": "first", "location": "second", "rule": {}})
    assert fields.location == "first"


def test_from_alert_does_not_fold_non_ascii_names() -> None:
    # "\u212a" (KELVIN SIGN) lower-cases to "k" in Python, not in C.
    assert FilterFields.from_alert({"loc\u0430tion": "x", "rule": {}}).location is None
    assert FilterFields.from_alert({"rule": {"\u212aid": 1}}).rule_id is None


# --- c_atoi -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5712", 5712),
        ("0", 0),
        ("007", 7),
        ("12abc", 12),
        ("  42", 42),
        ("\t\n\v\f\r42", 42),
        ("+5", 5),
        ("-5", -5),
        ("-0", 0),
        ("5 7", 5),
        ("2147483647", 2147483647),
        # glibc: (int) strtol(...): saturate at the 64-bit bounds, keep 32 bits
        ("2147483648", -2147483648),
        ("4294967297", 1),
        ("99999999999999999999", -1),
        ("-99999999999999999999", 0),
        ("", None),
        ("abc", None),
        ("-", None),
        ("+", None),
        (" ", None),
        ("\u00a05", None),  # no-break space is not C white space
        ("\u0665", None),  # ARABIC-INDIC DIGIT FIVE is not a C digit
        ("5\u0665", 5),
        ("0x10", 0),
    ],
)
def test_c_atoi(text: str, expected: int | None) -> None:
    assert c_atoi(text) == expected


# --- which alerts pass ------------------------------------------------------


# One filter at a time, the stock daemon's answer as the reason (None: passes);
# tests/test_routing.py routes the same table through the memo.
SINGLE_FILTER_CASES: list[tuple[IntegrationBlock, dict[str, Any], str | None]] = [
    # no filter: every alert with a rule passes
    (block(), alert(), None),
    (block(), alert(level=None, rule_id=None, groups=None, location=None), None),
    (block(), {"rule": {}}, None),
    (block(), {"location": "x"}, "alert has no rule"),
    (block(), {"rule": None}, "alert has no rule"),
    (block(), {"rule": "5712"}, "alert has no rule"),
    (block(level=3), {}, "alert has no rule"),
    # level
    (block(level=0), alert(level=1), None),
    (block(level=0), alert(level=None), None),
    (block(level=5), alert(level=5), None),
    (block(level=5), alert(level=6), None),
    (block(level=10), alert(level=3), "level 3 < 10"),
    # stock compares as C unsigned ints: a negative level is huge
    (block(level=10), alert(level=-1), None),
    (block(level=10), alert(level=-(2**40)), None),
    (block(level=10), alert(level=-0.5), "level 0 < 10"),
    (block(level=10), alert(level=2**70), None),
    (block(level=4294967296), alert(level=0), None),  # stock's atoi wraps it to 0: unset
    (block(level=4294967301), alert(level=4), "level 4 < 5"),
    (block(level=10), alert(level=9.99), "level 9 < 10"),
    (block(level=10), alert(level=10.5), None),
    (block(level=1), alert(level=True), None),
    # a level of another type reads as 0 (cJSON's valueint), true as 1
    (block(level=10), alert(level="12"), "level 0 < 10"),
    (block(level=10), alert(level=None), "level 0 < 10"),
    (block(level=10), alert(level=[12]), "level 0 < 10"),
    (block(level=1), alert(level=False), "level 0 < 1"),
    (block(level=10), {"rule": {}}, "alert has no rule.level"),
    # group
    (block(groups=("sshd",)), alert(), None),
    (block(groups=("web", "sshd")), alert(), None),
    (
        block(groups=("web", "attack")),
        alert(),
        "none of groups [web, attack] in rule.groups [syslog, sshd]",
    ),
    (block(groups=("ssh",)), alert(), "none of groups [ssh] in rule.groups [syslog, sshd]"),
    (block(groups=("SSHD",)), alert(), "none of groups [SSHD] in rule.groups [syslog, sshd]"),
    (block(groups=("sshd",)), alert(groups=()), "none of groups [sshd] in rule.groups []"),
    (block(groups=("sshd",)), alert(groups=None), "alert has no rule.groups"),
    (block(groups=("sshd",)), alert(groups="sshd"), "alert has no rule.groups"),
    (block(groups=("sshd",)), alert(groups=["sshd\x00x"]), None),
    # an empty item of <group> is compared like any other, as stock does
    (block(groups=("",)), alert(groups=["x", ""]), None),
    (
        block(groups=("", "web")),
        alert(groups=["x"]),
        "none of groups [, web] in rule.groups [x]",
    ),
    # rule_id
    (block(rule_ids=(5712,)), alert(), None),
    (block(rule_ids=(100, 5712)), alert(), None),
    (block(rule_ids=(100, 200)), alert(), "rule.id 5712 not in [100, 200]"),
    (block(rule_ids=(5712,)), alert(rule_id="05712"), None),
    (block(rule_ids=(5712,)), alert(rule_id="5712abc"), None),
    (block(rule_ids=(5712,)), alert(rule_id=5712), None),
    (block(rule_ids=(1,)), alert(rule_id="4294967297"), None),
    (block(rule_ids=(0,)), alert(rule_id="abc"), "rule.id 'abc' is not a number"),
    (block(rule_ids=(0,)), alert(rule_id=""), "rule.id '' is not a number"),
    # 0 ends stock's id list: it never matches, and alone it lets nothing pass
    (block(rule_ids=(0,)), alert(rule_id="0"), "rule.id 0 never matches"),
    (block(rule_ids=(0,)), alert(rule_id="5712"), "rule.id 5712 not in [0]"),
    (block(rule_ids=(100, 0, 5712)), alert(), None),
    (block(rule_ids=(4294967296,)), alert(rule_id="0"), "rule.id 0 never matches"),
    # ids on both sides are read with atoi, so they wrap the same way
    (block(rule_ids=(99999999999,)), alert(rule_id="1215752191"), None),
    (block(rule_ids=(99999999999,)), alert(rule_id="99999999999"), None),
    (block(rule_ids=(4294967295,)), alert(rule_id="-1"), None),
    (block(rule_ids=(5712,)), alert(rule_id=" 5712"), None),
    (block(rule_ids=(5712,)), alert(rule_id="+5712"), None),
    (block(rule_ids=(5712,)), alert(rule_id=None), "alert has no rule.id"),
    (block(rule_ids=(5712,)), alert(rule_id=5712.0), "alert has no rule.id"),
    # event_location
    (block(event_location="secure"), alert(), None),
    (block(event_location="SECURE$"), alert(), None),
    (
        block(event_location="^(web01)"),
        alert(),
        "location '/var/log/secure' does not match '^(web01)'",
    ),
    (
        block(event_location="!secure"),
        alert(),
        "location '/var/log/secure' does not match '!secure'",
    ),
    (block(event_location="secure"), alert(location=None), "alert has no location"),
    (block(event_location="secure"), alert(location=7), "alert has no location"),
    (block(event_location="^$"), alert(location=""), None),
    (block(event_location="^a$"), alert(location="a\x00b"), None),
    (
        block(event_location="x"),
        alert(location="a\nb'c"),
        "location 'a\\x0ab'c' does not match 'x'",
    ),
]


@pytest.mark.parametrize(("flt", "alert_", "expected"), SINGLE_FILTER_CASES)
def test_single_filter(flt: IntegrationBlock, alert_: dict[str, Any], expected: str | None) -> None:
    assert reason(flt, alert_) == expected
    assert compile_filter(flt).matches(FilterFields.from_alert(alert_)) is (expected is None)


ALL_SET = block(level=10, groups=("web",), rule_ids=(100,), event_location="^(web01)")
FAILING_FIELDS: dict[str, dict[str, Any]] = {
    "event_location": {"location": "/var/log/secure"},
    "level": {"level": 3},
    "group": {"groups": ["syslog"]},
    "rule_id": {"id": "5712"},
}
ORDER = ["event_location", "level", "group", "rule_id"]
EXPECTED_REASON = {
    "event_location": "location '/var/log/secure' does not match '^(web01)'",
    "level": "level 3 < 10",
    "group": "none of groups [web] in rule.groups [syslog]",
    "rule_id": "rule.id 5712 not in [100]",
}


@pytest.mark.parametrize(
    "failing",
    [
        frozenset(subset)
        for mask in range(16)
        for subset in [[name for bit, name in enumerate(ORDER) if mask >> bit & 1]]
    ],
    ids=lambda s: "+".join(n for n in ORDER if n in s) or "none",
)
def test_all_filters_must_pass_and_the_first_failure_is_named(failing: frozenset[str]) -> None:
    rule: dict[str, Any] = {"level": 12, "id": "100", "groups": ["syslog", "web"]}
    alert_: dict[str, Any] = {"location": "(web01) 10.0.0.1->/var/log/secure", "rule": rule}
    for name in failing:
        for key, value in FAILING_FIELDS[name].items():
            (alert_ if key == "location" else rule)[key] = value
    first = next((name for name in ORDER if name in failing), None)
    assert reason(ALL_SET, alert_) == (EXPECTED_REASON[first] if first else None)


def test_unfiltered() -> None:
    assert compile_filter(block()).unfiltered
    assert compile_filter(block(level=0)).unfiltered
    assert not compile_filter(block(level=1)).unfiltered
    assert not compile_filter(block(event_location="")).unfiltered


def test_bad_event_location_is_an_sregex_error() -> None:
    with pytest.raises(SRegexError):
        compile_filter(block(event_location="x" * 20_481))


def test_filter_reads_block_once() -> None:
    flt = compile_filter(block(groups=("a", "b"), rule_ids=(1, 2), event_location="x"))
    assert isinstance(flt, AlertFilter)
    fields = FilterFields(has_rule=True, level=1, rule_id="2", groups=("b",), location="xx")
    assert flt.matches(fields)


# --- properties -------------------------------------------------------------

_GROUP = st.sampled_from(["syslog", "sshd", "web", "attack", "Web", "authentication_failed"])


@given(
    st.lists(_GROUP, min_size=1, max_size=3, unique=True),
    st.lists(_GROUP, max_size=4),
)
def test_group_filter_passes_iff_the_lists_share_a_name(
    wanted: list[str], present: list[str]
) -> None:
    flt = compile_filter(block(groups=tuple(wanted)))
    fields = FilterFields(has_rule=True, groups=tuple(present))
    assert flt.matches(fields) is bool(set(wanted) & set(present))


@given(st.integers(min_value=1, max_value=16), st.integers(min_value=-5, max_value=20))
def test_level_filter_is_greater_or_equal_as_unsigned(minimum: int, level: int) -> None:
    flt = compile_filter(block(level=minimum))
    assert flt.matches(FilterFields(has_rule=True, level=level)) is (level >= minimum or level < 0)


@given(st.integers(min_value=1, max_value=2**31 - 2), st.text(st.sampled_from(" x-"), max_size=2))
def test_rule_id_reads_leading_digits(number: int, tail: str) -> None:
    flt = compile_filter(block(rule_ids=(number,)))
    assert flt.matches(FilterFields(has_rule=True, rule_id=f"{number}{tail}"))
    assert not flt.matches(FilterFields(has_rule=True, rule_id=f"{number + 1}{tail}"))


@pytest.mark.parametrize(
    "values",
    [
        (True, 5, "5712", ("syslog",), "/var/log/secure"),
        (False, None, None, None, None),
    ],
)
def test_trusted_builds_the_same_frozen_value(values: tuple[Any, ...]) -> None:
    trusted = FilterFields.trusted(*values)
    assert trusted == FilterFields(*values)
    assert hash(trusted) == hash(FilterFields(*values))
    with pytest.raises(AttributeError):
        trusted.level = 3  # type: ignore[misc]
