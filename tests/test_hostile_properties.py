"""Property tests: whatever bytes arrive as ossec.conf, integrator.toml or an
alert line, the readers answer with a result or their documented error, never
a crash. The checks themselves live in fuzz/targets.py, shared with the
coverage-guided fuzzer (fuzz/run.py).

``WI_FUZZ_EXAMPLES`` raises the number of examples per property (the default
run keeps it small): ``WI_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_hostile_properties.py``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from fuzz.targets import alert_line, integrator_toml, ossec_conf
from hypothesis import given, settings
from hypothesis import strategies as st

from wazuh_integrator.decode import AlertDecodeError, AlertTooDeepError, decode_alert, decode_fields

EXAMPLES = settings(max_examples=int(os.environ.get("WI_FUZZ_EXAMPLES", "150")))

# -- ossec.conf ---------------------------------------------------------------

ELEMENTS = (
    "name", "hook_url", "api_key", "alert_format", "level", "rule_id", "group",
    "event_location", "options", "max_log", "timeout", "retries", "unknown",
)  # fmt: skip
TEXT = st.text(
    alphabet=st.sampled_from(list("ab1 ,|!^$.*<>&;\\\"'{}[]:\n\t-_/%é\x00")), max_size=30
)


@st.composite
def ossec_documents(draw: st.DrawFn) -> bytes:
    blocks = []
    for _ in range(draw(st.integers(0, 3))):
        children = draw(st.lists(st.tuples(st.sampled_from(ELEMENTS), TEXT), max_size=8))
        inner = "".join(f"<{tag}>{text}</{tag}>" for tag, text in children)
        blocks.append(f"<integration>{inner}</integration>")
    document = f"<ossec_config>{''.join(blocks)}</ossec_config>"
    # Cut or splice it somewhere, now and then, so that broken XML is tried too.
    if draw(st.booleans()):
        at = draw(st.integers(0, len(document)))
        document = document[:at] + draw(TEXT) + document[at + draw(st.integers(0, 5)) :]
    return document.encode("utf-8", "surrogatepass")


@EXAMPLES
@given(st.binary(max_size=2000))
def test_any_bytes_as_ossec_conf(data: bytes) -> None:
    ossec_conf(data)


@EXAMPLES
@given(ossec_documents())
def test_mutated_ossec_conf(data: bytes) -> None:
    ossec_conf(data)


def test_deeply_nested_xml_is_an_error_line_not_a_crash() -> None:
    ossec_conf(b"<ossec_config>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</ossec_config>")


# -- integrator.toml -------------------------------------------------------

KEYS = (
    "state_dir", "max_line_bytes", "follow", "metrics_address", "grace_period", "plugins",
    "rate_limit", "concurrency", "queue_size", "max_retry_age", "max_backoff", "initial_backoff",
    "retry", "cache_ttl", "api_version", "ca_file", "client_cert", "client_key", "other",
)  # fmt: skip
TOML_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True).map(lambda f: str(f).lower()),
    st.booleans().map(lambda b: str(b).lower()),
    st.text(max_size=20).map(json.dumps),
    st.lists(st.text(max_size=8).map(json.dumps), max_size=3).map(lambda v: f"[{', '.join(v)}]"),
)


@st.composite
def toml_documents(draw: st.DrawFn) -> bytes:
    lines = [
        f"{draw(st.sampled_from(KEYS))} = {draw(TOML_VALUES)}"
        for _ in range(draw(st.integers(0, 4)))
    ]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["slack", "virustotal", "custom-x", "nope", "a.b"]))
        lines.append(f"[integrations.{name}]")
        lines += [f"{draw(st.sampled_from(KEYS))} = {draw(TOML_VALUES)}" for _ in range(3)]
    return "\n".join(lines).encode()


@EXAMPLES
@given(st.binary(max_size=1000))
def test_any_bytes_as_integrator_toml(data: bytes) -> None:
    integrator_toml(data)


@EXAMPLES
@given(toml_documents())
def test_generated_integrator_toml(data: bytes) -> None:
    integrator_toml(data)


# -- alert lines ---------------------------------------------------------------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**100), 2**100),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
RULES = st.one_of(
    JSON_VALUES,  # not an object, often
    st.fixed_dictionaries(
        {},
        optional={
            "level": JSON_VALUES | st.sampled_from(["7", 7.9, 1e999, -1, 2**64]),
            "id": JSON_VALUES,
            "groups": JSON_VALUES,
        },
    ),
)


@st.composite
def alert_lines(draw: st.DrawFn) -> bytes:
    alert: dict[str, Any] = draw(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3))
    if draw(st.booleans()):
        alert["rule"] = draw(RULES)
    if draw(st.booleans()):
        alert["location"] = draw(JSON_VALUES)
    text = json.dumps(alert, ensure_ascii=draw(st.booleans()))
    raw = text.encode("utf-8", "surrogatepass")
    # Now and then: invalid UTF-8, a NUL, or a cut.
    choice = draw(st.integers(0, 5))
    if choice == 0:
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"]))
            + raw[at:]
        )
    elif choice == 1:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@EXAMPLES
@given(st.binary(max_size=2000))
def test_any_bytes_as_an_alert_line(data: bytes) -> None:
    alert_line(data)


@EXAMPLES
@given(alert_lines())
def test_odd_alerts(data: bytes) -> None:
    alert_line(data)


@pytest.mark.parametrize("depth", [127, 129, 1000, 100_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_nesting_at_any_depth_is_decided_by_the_stated_rule(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    leaf = b"1" if opener != b"[" else b""
    line = b'{"rule":{"level":3,"id":"1","groups":[]},"location":"x","data":'
    line += opener * depth + leaf + closer * depth + b"}"
    alert_line(line)
    if depth + 1 > 128:
        with pytest.raises(AlertTooDeepError):
            decode_alert(line)
    else:
        assert decode_fields(line).has_rule


@pytest.mark.parametrize(
    ("rule", "has_rule", "level"),
    [
        ('"5712"', False, None),
        ("[1, 2]", False, None),
        ('{"level": "7"}', True, 0),  # cJSON's valueint of a string
        ('{"level": 7.9}', True, 7),
        ('{"level": 1e999}', True, 2**31 - 1),
        ('{"level": 123456789012345678901234567890}', True, 2**31 - 1),
    ],
)
def test_odd_rules_are_read_as_stock_reads_them(
    rule: str, has_rule: bool, level: int | None
) -> None:
    line = f'{{"rule": {rule}, "location": "x"}}'.encode()
    try:
        fields = decode_fields(line)
    except AlertDecodeError:  # 1e999 is not JSON to orjson
        assert "1e999" in rule
        return
    assert fields.has_rule is has_rule
    assert fields.level == level
