"""The router's memo: the same blocks as the filters decide afresh, and bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.test_filters import SINGLE_FILTER_CASES

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.decode import AlertDecodeError, decode_alert, decode_fields
from wazuh_integrator.filters import AlertFilter, compile_filter
from wazuh_integrator.routing import MAX_KEY_CHARS, Router

SAMPLES = Path(__file__).parent / "data" / "alerts"


def block(index: int, **filters: Any) -> IntegrationBlock:
    return IntegrationBlock(
        index=index, path="ossec.conf", line=index + 1, name="custom-x", **filters
    )


BLOCKS = [
    block(0),
    block(1, level=10),
    block(2, groups=("sshd", "web")),
    block(3, rule_ids=(5712, 31101, 0)),
    block(4, event_location="^/var/log/secure$|EventChannel|!"),
    block(5, event_location="!syscheck"),
    block(6, level=3, groups=("ossec",), rule_ids=(503,), event_location="^wazuh"),
    block(7, level=4294967301),
    block(8, rule_ids=(0,)),
]
FILTERS = [compile_filter(b) for b in BLOCKS]


def uncached(line: bytes, filters: list[AlertFilter]) -> tuple[int, ...] | None:
    """What routing decided before the memo: every filter on freshly decoded fields."""
    fields = decode_fields(line)
    if not fields.has_rule:
        return None
    return tuple(i for i, f in enumerate(filters) if f.matches(fields))


def routed(router: Router[int], line: bytes) -> tuple[int, ...] | str | None:
    try:
        return router.routes_for(line)
    except AlertDecodeError as exc:
        return f"error: {exc}"


def expected(line: bytes, filters: list[AlertFilter]) -> tuple[int, ...] | str | None:
    try:
        return uncached(line, filters)
    except AlertDecodeError as exc:
        return f"error: {exc}"


def sample_lines() -> list[bytes]:
    lines = SAMPLES.joinpath("mixed.jsonl").read_bytes().splitlines()
    lines.append(orjson.dumps(json.loads(SAMPLES.joinpath("ssh_brute_force.json").read_text())))
    return lines


def test_sample_alerts_route_the_same_cached_and_not() -> None:
    router = Router(range(len(FILTERS)), FILTERS)
    lines = sample_lines()
    want = [expected(line, FILTERS) for line in lines]
    assert any(isinstance(w, tuple) and w for w in want)  # some line matches some block
    for _ in range(3):  # the first pass fills the memo, the others read it
        assert [routed(router, line) for line in lines] == want
    assert router.remembered > 0


@pytest.mark.parametrize(("flt", "alert_", "expected"), SINGLE_FILTER_CASES)
def test_the_stock_filter_table_routes_the_same_through_the_memo(
    flt: IntegrationBlock, alert_: dict[str, Any], expected: str | None
) -> None:
    line = json.dumps(alert_, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert decode_alert(line) == alert_  # the line says what the table's alert says
    want: tuple[str, ...] | None = ("block",) if expected is None else ()
    if expected == "alert has no rule":
        want = None
    router = Router(["block"], [compile_filter(flt)])
    assert [router.routes_for(line) for _ in range(3)] == [want] * 3


def test_every_field_is_part_of_what_is_remembered() -> None:
    # Lines alike in all but one filter field must not share a decision.
    lines = [
        orjson.dumps({"rule": {"level": level, "id": id_, "groups": groups}, "location": location})
        for level in (3, 10, -1)
        for id_ in ("5712", "503", "abc")
        for groups in (["sshd"], ["ossec"], [])
        for location in ("/var/log/secure", "syscheck", "wazuh-monitord")
    ]
    want = [expected(line, FILTERS) for line in lines]
    assert len(set(want)) > 10
    router = Router(range(len(FILTERS)), FILTERS)
    for _ in range(2):
        assert [routed(router, line) for line in lines] == want
    assert [routed(router, line) for line in reversed(lines)] == want[::-1]
    assert router.remembered == len(lines)


# Values from a small pool, so that keys repeat across lines that differ
# elsewhere; the odd ones send a line to the full decoder, whose answer
# depends on more than the four values.
LEVELS = st.sampled_from([0, 3, 5, 10, 12, -1, 2**31, 2**40, 9.5, "7", None, True])
IDS = st.sampled_from(["5712", "503", " 31101x", "0", "abc", "5712\x00", 5712, None])
GROUPS = st.sampled_from(
    [["sshd"], ["ossec"], ["syslog", "web"], [], ["Web"], ["sshd\x00x"], "sshd", None]
)
LOCATIONS = st.sampled_from(
    ["/var/log/secure", "EventChannel", "syscheck", "wazuh-monitord", "WAZUH", "a\x00b", 5, None]
)


@st.composite
def alert_lines(draw: st.DrawFn) -> bytes:
    rule: dict[str, Any] = {}
    for name, values in (("level", LEVELS), ("id", IDS), ("groups", GROUPS)):
        if draw(st.booleans()) or draw(st.booleans()):
            rule[draw(st.sampled_from([name, name.upper()]))] = draw(values)
    alert: dict[str, Any] = {"timestamp": draw(st.text(max_size=5))}
    if draw(st.integers(0, 5)):
        alert[draw(st.sampled_from(["rule", "Rule"]))] = rule
    if draw(st.integers(0, 4)):
        alert[draw(st.sampled_from(["location", "LOCATION"]))] = draw(LOCATIONS)
    if draw(st.booleans()):  # a second spelling: stock reads the first, msgspec the last
        alert["rule"] = {"level": draw(LEVELS), "id": draw(IDS)}
    alert["full_log"] = draw(st.text(max_size=10))
    return orjson.dumps(alert)


@settings(max_examples=300)
@given(st.lists(alert_lines(), min_size=1, max_size=30), st.randoms())
def test_generated_alerts_route_the_same_cached_and_not(lines: list[bytes], rng: Any) -> None:
    router = Router(range(len(FILTERS)), FILTERS, max_entries=8)
    want = {line: expected(line, FILTERS) for line in lines}
    order = lines * 3
    rng.shuffle(order)
    for line in order:
        assert routed(router, line) == want[line], line
    assert router.remembered <= 8


def test_the_memo_is_bounded_and_keeps_deciding_right() -> None:
    router = Router(range(len(FILTERS)), FILTERS, max_entries=100)
    for n in range(1_000):
        line = orjson.dumps(
            {"rule": {"level": n % 15, "id": str(n), "groups": []}, "location": "x"}
        )
        assert router.routes_for(line) == uncached(line, FILTERS)
        assert router.remembered <= 100
    assert router.remembered > 0


@pytest.mark.parametrize(
    ("location", "groups"),
    [
        ("x" * (MAX_KEY_CHARS + 1), ["sshd"]),
        ("x", ["g" * MAX_KEY_CHARS]),
        ("x", ["g"] * 100),
    ],
)
def test_a_large_key_is_decided_but_not_remembered(location: str, groups: list[str]) -> None:
    router = Router(range(len(FILTERS)), FILTERS)
    line = orjson.dumps(
        {"rule": {"level": 5, "id": "5712", "groups": groups}, "location": location}
    )
    assert router.routes_for(line) == uncached(line, FILTERS)
    assert router.remembered == 0


def test_a_new_router_decides_with_its_own_filters() -> None:
    line = orjson.dumps({"rule": {"level": 5, "id": "1", "groups": []}, "location": "x"})
    before = Router(["a"], [compile_filter(block(0))])
    assert before.routes_for(line) == ("a",)
    after = Router(["b"], [compile_filter(block(0, level=10))])
    assert after.routes_for(line) == ()
    assert before.routes_for(line) == ("a",)


def test_routes_and_filters_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 routes but 1 filters"):
        Router(["a", "b"], FILTERS[:1])
