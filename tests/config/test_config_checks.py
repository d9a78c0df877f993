from __future__ import annotations

from pathlib import Path

import pytest
from tests.config.wazuh_home import integration_block, ossec_conf

from wazuh_integrator.config.ossec import read_ossec_conf


def warnings_of(tmp_path: Path, *blocks: str) -> list[str]:
    path = tmp_path / "ossec.conf"
    path.write_text(ossec_conf(*blocks), encoding="utf-8")
    config = read_ossec_conf(path, display_path="etc/ossec.conf")
    assert config.errors == ()
    return [str(warning) for warning in config.warnings]


@pytest.mark.parametrize(
    "block",
    [
        integration_block("slack", hook_url="https://hooks.slack.com/services/T/B/x", level="16"),
        integration_block("custom-x", hook_url="http://127.0.0.1:8080/hook"),
        integration_block("custom-x", hook_url="http://localhost/hook"),
        integration_block("custom-x", hook_url="http://[::1]:9000/x"),
        integration_block("custom-x", hook_url="anything a script understands"),
        integration_block("custom-x", group="a,b", alert_format="json"),
        integration_block("custom-x", group="a,b,"),
        integration_block("custom-x", alert_format="text"),
    ],
)
def test_no_warning_for_what_is_right(tmp_path: Path, block: str) -> None:
    assert warnings_of(tmp_path, block) == []


@pytest.mark.parametrize(
    ("elements", "warning"),
    [
        (
            {"group": "sshd, authentication_failed"},
            "etc/ossec.conf:4: <group>: spaces around commas: we trim them, but stock Wazuh "
            "compares each item with its spaces and never matches it; write "
            "'sshd,authentication_failed'",
        ),
        (
            {"group": "a ,b"},
            "etc/ossec.conf:4: <group>: spaces around commas: we trim them, but stock Wazuh "
            "compares each item with its spaces and never matches it; write 'a,b'",
        ),
        (
            {"level": "17"},
            "etc/ossec.conf:4: <level>: 17 is above 16, the highest rule level: "
            "no alert will ever match",
        ),
        (
            {"hook_url": "http://alerts.example.com/services/token123"},
            "etc/ossec.conf:4: <hook_url>: http://alerts.example.com/<redacted> is plain http: "
            "alerts would cross the network unencrypted; use https",
        ),
        (
            {"alert_format": "JSON"},
            "etc/ossec.conf:4: <alert_format>: 'JSON' is not 'json' (the comparison is "
            "exact and case-sensitive): the legacy text format is used",
        ),
        (
            {"alert_format": "json "},
            "etc/ossec.conf:4: <alert_format>: 'json ' is not 'json' (the comparison is "
            "exact and case-sensitive): the legacy text format is used",
        ),
        (
            {"group": "only one "},
            "etc/ossec.conf:4: <group>: spaces around the group name: we trim them, but stock "
            "Wazuh compares each item with its spaces and never matches it; write 'only one'",
        ),
        (
            {"group": "a,,b"},
            "etc/ossec.conf:4: <group>: an empty item: like stock, it matches only an alert "
            "with an empty group name",
        ),
        (
            {"level": "4294967296"},
            "etc/ossec.conf:4: <level>: 4294967296 does not fit a C unsigned int: stock reads "
            "it as 0 (no level filter)",
        ),
        (
            {"level": "4294967301"},
            "etc/ossec.conf:4: <level>: 4294967301 does not fit a C unsigned int: stock reads "
            "it as 5 (level 5)",
        ),
    ],
)
def test_warnings(tmp_path: Path, elements: dict[str, str], warning: str) -> None:
    assert warnings_of(tmp_path, integration_block("custom-x", **elements)) == [warning]


def test_a_hook_that_is_not_a_url_is_warned_for_http_integrations(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, integration_block("slack", hook_url="hooks.slack.com/x")) == [
        "etc/ossec.conf:4: <hook_url>: not an http(s) URL: slack cannot reach it"
    ]


def test_the_token_of_a_hook_url_never_shows(tmp_path: Path) -> None:
    warnings = warnings_of(
        tmp_path, integration_block("shuffle", hook_url="http://shuffle.example/api/hooks/tok-42")
    )

    assert warnings and all("tok-42" not in w for w in warnings)


def test_identical_blocks_are_warned_about_at_the_second(tmp_path: Path) -> None:
    block = integration_block("pagerduty", api_key="k", group="a,b", options='{"x": 1}')
    same_in_other_order = integration_block(
        "pagerduty", api_key="k", group="b,a", options='{"x":1}'
    )
    different_key = integration_block("pagerduty", api_key="other", group="a,b", options='{"x": 1}')

    assert warnings_of(tmp_path, block, different_key, same_in_other_order) == [
        "etc/ossec.conf:14: <integration>: same as the block at line 2: "
        "every matching alert is delivered twice"
    ]


EMAIL_OPTIONS = '{"from": "w@example.com", "to": "soc@example.com"}'


@pytest.mark.parametrize(
    ("name", "hook_url", "options", "warning"),
    [
        ("email", "smtp://mail.example.com:25", EMAIL_OPTIONS,
         'smtp:// sends in clear text to a server that offers no STARTTLS: set "require_tls":'
         " true in <options>, or use smtps://"),
        ("syslog", "udp://siem.example.com", None,
         "udp:// is plain syslog: alerts would cross the network unencrypted; use tls://"),
        ("syslog", "tcp://siem.example.com:601", None,
         "tcp:// is plain syslog: alerts would cross the network unencrypted; use tls://"),
        ("email", "smtp://127.0.0.1", EMAIL_OPTIONS, None),
        ("email", "smtp://mail.example.com", EMAIL_OPTIONS[:-1] + ', "require_tls": true}', None),
        ("email", "smtps://mail.example.com", EMAIL_OPTIONS, None),
        ("syslog", "udp://localhost:514", None, None),
        ("syslog", "tls://siem.example.com", None, None),
        ("opsgenie", "https://api.eu.opsgenie.com", None, None),
        # Disabled for the scheme itself; "use https" was wrong advice for them.
        ("email", "http://mail.example.com", EMAIL_OPTIONS, None),
        ("syslog", "http://siem.example.com", None, None),
        ("thehive", "thehive.example.com", None,
         "not an http(s) URL: thehive cannot reach it"),
    ],
)  # fmt: skip
def test_outputs_that_may_send_in_clear_text_are_warned(
    tmp_path: Path, name: str, hook_url: str, options: str | None, warning: str | None
) -> None:
    elements = {"hook_url": hook_url, **({"options": options} if options else {})}
    expected = [] if warning is None else [f"etc/ossec.conf:4: <hook_url>: {warning}"]
    assert warnings_of(tmp_path, integration_block(name, **elements)) == expected
