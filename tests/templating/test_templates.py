"""Templates: what they render, every way they fail (each a clear error with
file and line), the sandbox, escaping per format, and the shipped defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from wazuh_integrator.integrations.slack import build_slack_payload
from wazuh_integrator.templating import (
    TemplateError,
    default_template,
    load_template,
    template_from_text,
)
from wazuh_integrator.templating.filters import iso_time, level_name, mitre, truncate

SLACK_GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "slack"


def slack_golden_cases() -> list[tuple[str, Any, Any, bytes]]:
    """(name, alert, options, expected bytes) of each stock Slack golden case."""
    cases = []
    for alert_path in sorted(SLACK_GOLDEN.glob("*.alert.json")):
        name = alert_path.name.removesuffix(".alert.json")
        options_path = SLACK_GOLDEN / f"{name}.options.json"
        options = orjson.loads(options_path.read_bytes()) if options_path.exists() else None
        expected = orjson.dumps(orjson.loads((SLACK_GOLDEN / f"{name}.expected.json").read_bytes()))
        cases.append((name, orjson.loads(alert_path.read_bytes()), options, expected))
    return cases


ALERT: dict[str, Any] = {
    "timestamp": "2024-05-01T10:20:30.123+0000",
    "rule": {
        "level": 12,
        "id": "5712",
        "description": 'brute force "admin" <b>',
        "mitre": {
            "id": ["T1110", "T1021"],
            "technique": ["Brute Force", "Remote Services"],
            "tactic": ["Credential Access", "Lateral Movement"],
        },
    },
    "agent": {"id": "001", "name": "web-01"},
    "data": {"hosts": [{"name": "a"}]},
    "full_log": 'line one\nline "two"',
}


def render(text: str, template_format: Any = None, name: str = "t.j2", **values: Any) -> str:
    return template_from_text(text, name, template_format).render(alert=ALERT, **values)


def error_of(text: str, template_format: Any = None, name: str = "etc/templates/t.j2") -> str:
    with pytest.raises(TemplateError) as info:
        render(text, template_format, name)
    return str(info.value)


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ alert.rule.nope }}", "etc/templates/t.j2:1: alert.rule.nope is missing"),
        ("a\nb\n{{ alert.agent.ip }}", "etc/templates/t.j2:3: alert.agent.ip is missing"),
        ("{{ alert.data.hosts[0].ip }}", "etc/templates/t.j2:1: alert.data.hosts[0].ip is missing"),
        ("{{ alert.data.hosts[4] }}", "etc/templates/t.j2:1: alert.data.hosts[4] is missing"),
        ("{{ options.channel }}", "etc/templates/t.j2:1: options.channel is missing"),
        ("{{ colour }}", "etc/templates/t.j2:1: colour is missing"),
        ("{% if alert.syscheck %}x{% endif %}", "etc/templates/t.j2:1: alert.syscheck is missing"),
        (
            "{% for g in alert.rule.groups %}{% endfor %}",
            "etc/templates/t.j2:1: alert.rule.groups is missing",
        ),
    ],
)
def test_a_missing_field_is_named_with_its_line(text: str, message: str) -> None:
    assert error_of(text) == message


def test_dict_keys_and_reading_methods() -> None:
    text = (
        "{{ alert.agent.name }} {{ alert.get('agent').get('id') }} {{ alert.agent.keys() | list }}"
    )
    assert render(text) == "web-01 001 ['id', 'name']"
    assert render("{% for k, v in alert.agent.items() %}{{ k }}={{ v }};{% endfor %}") == (
        "id=001;name=web-01;"
    )


def test_a_missing_field_can_be_tested_or_defaulted() -> None:
    text = "{{ alert.rule.groups | default('none') }} {{ alert.syscheck is defined }}"
    assert render(text) == "none False"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ok\n{% if alert.rule.level > 3 %}",
            "etc/templates/t.j2:2: syntax error: Unexpected end of template.",
        ),
        (
            "{{ alert.rule.id | no_such }}",
            "etc/templates/t.j2:1: syntax error: No filter named 'no_such'.",
        ),
        ("\n\n{{ alert. }}", "etc/templates/t.j2:3: syntax error: expected name or number"),
    ],
)
def test_a_syntax_error_is_named_with_its_line(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


@pytest.mark.parametrize(
    "text",
    [
        "{{ alert.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ alert.rule.__init__.__globals__ }}",
        "{{ alert.items.__self__ }}",
        "{{ alert.get.__self__ }}",
        "{{ alert.rule.get('mitre').__class__ }}",
        "{{ alert.items().__class__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ (alert | attr('__class__')) }}",
        "{% set x = alert.__class__ %}{{ x }}",
    ],
)
@pytest.mark.parametrize("template_format", ["text", "json", "html", "markdownv2"])
def test_python_internals_are_refused_by_the_sandbox(text: str, template_format: Any) -> None:
    message = error_of(text, template_format)
    assert message.startswith("etc/templates/t.j2:1: refused by the sandbox: access to attribute")
    assert "is unsafe" in message


def test_a_huge_range_is_refused() -> None:
    message = error_of("{% for i in range(10**9) %}{% endfor %}")
    assert message.startswith("etc/templates/t.j2:1: OverflowError: Range too big.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{{ alert.rule.id | iso_time }}",
            "etc/templates/t.j2:1: FilterError: iso_time: '5712' is not a time",
        ),
        ("\n{{ 1 / 0 }}", "etc/templates/t.j2:2: ZeroDivisionError: division by zero"),
        (
            "{{ alert.rule.description | level_name }}",
            "etc/templates/t.j2:1: FilterError:"
            " level_name: 'brute force \"admin\" <b>' is not a rule level",
        ),
    ],
)
def test_a_filter_or_expression_that_fails_is_named_with_its_line(text: str, message: str) -> None:
    assert error_of(text) == message


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"^etc/x\.j2: cannot read: file not found$"):
        load_template(tmp_path / "x.j2", shown="etc/x.j2")
    (tmp_path / "latin.j2").write_bytes(b"caf\xe9")
    with pytest.raises(TemplateError, match=r"latin\.j2: cannot read: not valid UTF-8$"):
        load_template(tmp_path / "latin.j2")


def test_render_json_says_where_the_text_is_not_json() -> None:
    template = template_from_text('{"a": {{ alert.rule.description }}}', "t.j2", "text")
    with pytest.raises(TemplateError) as info:
        template.render_json(alert=ALERT)
    assert str(info.value).startswith("t.j2: rendered text is not JSON (")
    assert "write values with '| tojson' or inside quotes" in str(info.value)


@pytest.mark.parametrize(
    ("text", "template_format", "by_construction"),
    [
        ("{{ alert | tojson }}", "json", True),
        ("{%- set a = {'x': alert.rule} -%}\n{{ a | tojson(indent=2) }}\n", "json", True),
        ("{% if alert %}{% set a = 1 %}{% endif %}{{ {'a': a} | tojson }}", "text", True),
        ('{"a": {{ alert | tojson }}}', "json", False),
        ("{% if alert %}{{ alert | tojson }}{% endif %}", "json", False),
        ("{{ alert | tojson }}{{ alert | tojson }}", "json", False),
        ("{% for n in [1] %}{{ alert | tojson }}{% endfor %}", "json", False),
        ("{% macro m() %}x{% endmacro %}{{ alert | tojson }}", "json", False),
        ("{% set x %}y{% endset %}{{ alert | tojson }}", "json", False),
        ("{% filter upper %}{{ alert | tojson }}{% endfilter %}", "json", False),
        ("{{ alert | tojson | upper }}", "json", False),
        ("{{ alert | tojson }}", "html", False),  # Jinja2's own tojson
    ],
)
def test_a_template_whose_only_output_is_one_tojson_is_not_read_back(
    text: str, template_format: Any, by_construction: bool
) -> None:
    template = template_from_text(text, "t.j2", template_format)
    assert template.writes_json is by_construction
    if by_construction:
        body = template.render_json_body(alert=ALERT)
        assert body == template.render_json_text(alert=ALERT)[0]
        assert orjson.loads(body)


def test_a_body_that_is_not_json_by_construction_is_still_checked() -> None:
    template = template_from_text('{"a": {{ alert.rule.description }}}', "t.j2", "text")
    assert not template.writes_json
    with pytest.raises(TemplateError, match="rendered text is not JSON"):
        template.render_json_body(alert=ALERT)


@pytest.mark.parametrize("name", ["slack.json.j2", "teams.json.j2", "discord.json.j2"])
def test_the_json_defaults_write_json_by_construction(name: str) -> None:
    assert default_template(name).writes_json


# -- formats ------------------------------------------------------------------


def test_json_format_escapes_values_into_valid_json() -> None:
    text = (
        '{"title": "Alert: {{ alert.rule.description }}", "log": "{{ alert.full_log }}",'
        ' "rule": {{ alert.rule | tojson }}}'
    )
    value = orjson.loads(render(text, "json"))
    assert value["title"] == f"Alert: {ALERT['rule']['description']}"
    assert value["log"] == ALERT["full_log"]
    assert value["rule"] == ALERT["rule"]


def test_html_format_autoescapes() -> None:
    assert render("<p>{{ alert.rule.description }}</p>", "html") == (
        "<p>brute force &#34;admin&#34; &lt;b&gt;</p>"
    )


def test_format_from_the_file_name(tmp_path: Path) -> None:
    for name, expected in [
        ("a.json.j2", "json"),
        ("a.html.j2", "html"),
        ("a.j2", "text"),
        ("a.md2.j2", "markdownv2"),
    ]:
        (tmp_path / name).write_text("x")
        assert load_template(tmp_path / name).format == expected


def test_text_format_writes_values_as_they_are() -> None:
    assert render("{{ alert.rule.description }}", "text") == ALERT["rule"]["description"]


def test_template_sees_options_and_integration_name() -> None:
    text = "{{ integration }} {{ options.channel }}"
    assert render(text, options={"channel": "#soc"}, integration="slack") == "slack #soc"


# -- filters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (0, "low"),
        (6, "low"),
        (7, "medium"),
        (11, "medium"),
        (12, "high"),
        (14, "high"),
        (15, "critical"),
        (16, "critical"),
        ("9", "medium"),
        ({"rule": {"level": 13}}, "high"),
    ],
)
def test_level_name(value: Any, name: str) -> None:
    assert level_name(value) == name


def test_mitre() -> None:
    expected = "T1110 Brute Force, T1021 Remote Services (Credential Access, Lateral Movement)"
    assert mitre(ALERT) == expected
    assert mitre(ALERT["rule"]) == expected
    assert mitre(ALERT["rule"]["mitre"]) == expected
    assert mitre({"rule": {"level": 3, "id": "1"}}) == ""
    assert mitre({"rule": {"mitre": {"tactic": ["Execution"]}}}) == "Execution"


@pytest.mark.parametrize(
    ("value", "length", "expected"),
    [("abcdef", 6, "abcdef"), ("abcdefg", 6, "abcde…"), ("", 3, ""), (12345, 4, "123…")],
)
def test_truncate_cuts_exactly(value: Any, length: int, expected: str) -> None:
    assert truncate(value, length) == expected
    assert len(truncate(value, length)) <= length


@pytest.mark.parametrize(
    ("value", "format", "expected"),
    [
        ("2024-05-01T10:20:30.123+0000", None, "2024-05-01T10:20:30.123000+00:00"),
        ("2024-05-01T10:20:30.123+0200", "%H:%M %z", "10:20 +0200"),
        (0, None, "1970-01-01T00:00:00+00:00"),
        ("2024-05-01T10:20:30+00:00", "%Y", "2024"),
    ],
)
def test_iso_time(value: Any, format: str | None, expected: str) -> None:
    assert iso_time(value, format) == expected


def test_filters_in_a_template() -> None:
    text = (
        "{{ alert | level_name }}|{{ alert | mitre | truncate(9) }}|"
        "{{ alert.timestamp | iso_time('%d/%m') }}|{{ alert.agent | tojson }}"
    )
    assert render(text) == 'high|T1110 Br…|01/05|{"id":"001","name":"web-01"}'


# -- shipped defaults ---------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "options", "expected"),
    [case[1:] for case in slack_golden_cases()],
    ids=[case[0] for case in slack_golden_cases()],
)
def test_the_slack_default_renders_stock_bytes(alert: Any, options: Any, expected: bytes) -> None:
    rendered = default_template("slack.json.j2").render(alert=alert, options=options)
    assert rendered.encode() == expected
    assert orjson.dumps(build_slack_payload(alert, options)) == expected


@pytest.mark.parametrize(
    "name",
    [
        "slack.json.j2",
        "teams.json.j2",
        "discord.json.j2",
        "telegram.md2.j2",
        "jira-summary.txt.j2",
        "jira-description.txt.j2",
        "webhook.json.j2",
    ],
)
@pytest.mark.parametrize(
    "alert", [ALERT, {}, {"rule": "not an object", "agent": 3}], ids=["full", "empty", "odd"]
)
def test_every_default_renders_any_alert(name: str, alert: dict[str, Any]) -> None:
    template = default_template(name)
    text = template.render(alert=alert, options={})
    if template.format == "json":
        orjson.loads(text)


def test_an_unknown_default_is_an_error() -> None:
    with pytest.raises(TemplateError, match="no such default template"):
        default_template("nope.j2")


def test_the_slack_default_shows_suppressed_alerts_as_the_code_does() -> None:
    alert = {**ALERT, "suppressed": {"count": 2, "since": "2024-05-01T10:00:00.000Z"}}
    rendered = default_template("slack.json.j2").render(alert=alert, options=None)
    assert rendered.encode() == orjson.dumps(build_slack_payload(alert, None))
