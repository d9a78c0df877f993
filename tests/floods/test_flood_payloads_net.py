"""What email, syslog, Opsgenie and TheHive send for a suppressed note and
for a floods digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.floods.alerts import alert
from tests.integrations.rfc5424 import parse

from wazuh_integrator.config.models import DigestSettings, IntegrationBlock, IntegrationSettings
from wazuh_integrator.floods.digest import DigestCollector
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.email import (
    EmailIntegration,
    EmailOptions,
    build_email,
    email_html,
    email_subject,
    email_text,
)
from wazuh_integrator.integrations.opsgenie import OpsgenieIntegration, build_opsgenie_payload
from wazuh_integrator.integrations.syslog import SyslogOptions, build_syslog_message
from wazuh_integrator.integrations.thehive import TheHiveIntegration, build_thehive_payload
from wazuh_integrator.secret import Secret

NOTE = {"count": 4998, "since": "2026-11-27T17:00:00.123Z"}
SUPPRESSED_TEXT = "4998 similar alerts since 2026-11-27T17:00:00.123Z"
EMAIL_OPTIONS = {"from": "wazuh@example.com", "to": ["soc@example.com"]}


def digest(count: int, max_alerts: int = 3, key: str = "email#0", **extra: Any) -> dict[str, Any]:
    collector = DigestCollector(
        DigestSettings(group_by=("rule.id",), group_wait_s=0.0, max_alerts=max_alerts),
        integration_key=key,
    )
    for n in range(count):
        collector.collect(alert(n, level=5 + n % 3, **extra), b"", now=100.0)
    (ready,) = collector.take_due(100.0)
    return ready.document


def make(cls: Any, name: str, tmp_path: Path, **values: Any) -> Any:
    block = IntegrationBlock(index=0, path="etc/ossec.conf", line=1, name=name, **values)
    return cls(block, IntegrationContext(tmp_path, tmp_path, IntegrationSettings()))


# -- a suppressed note on a single alert ----------------------------------------


def test_email_shows_the_suppressed_alerts() -> None:
    noted = alert(0, suppressed=NOTE)
    assert f"\nSuppressed: {SUPPRESSED_TEXT}\n" in email_text(noted)
    assert f"<td>{SUPPRESSED_TEXT}</td>" in email_html(noted)
    assert "Suppressed" not in email_text(alert(0))


def test_syslog_carries_the_note_as_structured_data() -> None:
    params = parse(build_syslog_message(alert(0, suppressed=NOTE), SyslogOptions()))
    sd = params.structured_data["wazuh@32473"]
    assert (sd["suppressed_count"], sd["suppressed_since"]) == ("4998", NOTE["since"])
    as_json = parse(
        build_syslog_message(alert(0, suppressed=NOTE), SyslogOptions.read({"format": "json"}))
    )
    assert as_json.msg is not None and json.loads(as_json.msg)["suppressed"] == NOTE


def test_opsgenie_and_thehive_show_the_note() -> None:
    opsgenie = build_opsgenie_payload(alert(0, suppressed=NOTE), None)
    assert opsgenie["details"]["suppressed_count"] == "4998"
    assert f"Suppressed: {SUPPRESSED_TEXT}" in opsgenie["description"]
    thehive = build_thehive_payload(alert(0, suppressed=NOTE), None)
    assert f"| Suppressed | {SUPPRESSED_TEXT} |" in thehive["description"]


# -- a digest ---------------------------------------------------------------------


def test_an_email_digest_lists_then_counts() -> None:
    document = digest(500)
    assert email_subject(document) == "[Wazuh] Digest: 500 alerts for rule.id=5712"
    lines = email_text(document).splitlines()
    assert lines[2].startswith("From: ") and lines[3].startswith("To:   ")
    assert lines[5] == (
        "2026-11-27T17:00:00.000+0000 rule 5712 (level 5) agent 001 web01: sshd: brute force 0"
    )
    assert lines[-1] == "and 497 more"
    assert "<li>and 497 more</li>" in email_html(document)
    message = build_email(document, EmailOptions.read(EMAIL_OPTIONS))
    again = build_email(digest(500), EmailOptions.read(EMAIL_OPTIONS))
    assert message["Message-ID"] == again["Message-ID"]
    assert message["Message-ID"].startswith("<wazuh.digest.")


def test_an_email_digest_is_previewed(tmp_path: Path) -> None:
    email = make(EmailIntegration, "email", tmp_path, hook_url=Secret("smtp://mail"),
                 options=EMAIL_OPTIONS)  # fmt: skip
    assert email.preview(digest(4))["subject"] == "[Wazuh] Digest: 4 alerts for rule.id=5712"


@pytest.mark.parametrize("fmt", ["sd", "json"])
def test_a_syslog_digest_is_one_rfc5424_message(fmt: str) -> None:
    document = digest(500, key="syslog#0")
    message = parse(build_syslog_message(document, SyslogOptions.read({"format": fmt})))
    assert message.msgid == "digest"
    assert message.severity == 4  # the highest level listed, 7
    assert message.hostname == "wazuh-manager"
    if fmt == "json":
        assert message.msg is not None and json.loads(message.msg) == document
        return
    assert message.msg == "500 Wazuh alerts for rule.id=5712"
    assert message.structured_data["wazuh@32473"] == {
        "digest_group": "rule.id=5712",
        "count": "500",
        "listed": "3",
        "first": document["first"],
        "last": document["last"],
        "rule_ids": "5712",
        "agents": "web01",
    }


def test_opsgenie_folds_every_digest_of_a_group_into_one_alert(tmp_path: Path) -> None:
    opsgenie = make(OpsgenieIntegration, "opsgenie", tmp_path, api_key=Secret("genie-secret"))
    first = opsgenie.preview(digest(5, key="opsgenie#0"))
    second = opsgenie.preview(digest(7, key="opsgenie#0"))
    other = opsgenie.preview(digest(5, key="opsgenie#1"))
    assert first["alias"] == second["alias"] != other["alias"]
    assert first["message"] == "[Wazuh] 5 alerts for rule.id=5712"
    assert first["priority"] == "P3"  # the highest level listed, 7
    assert first["details"]["count"] == "5"
    assert first["description"].splitlines()[-1] == "and 2 more"
    assert "genie-secret" not in str(first)


def test_a_thehive_digest_is_one_alert_with_every_listed_observable(tmp_path: Path) -> None:
    thehive = make(TheHiveIntegration, "thehive", tmp_path, hook_url=Secret("https://hive"),
                   api_key=Secret("hive-secret"))  # fmt: skip
    document = digest(5, data={"srcip": "203.0.113.7", "url": "/login"}, key="thehive#0")
    body = thehive.preview(document)
    assert body["title"] == "5 Wazuh alerts for rule.id=5712"
    assert body["severity"] == 2  # from the highest level listed, 7
    assert [(o["dataType"], o["data"]) for o in body["observables"]] == [
        ("ip", "203.0.113.7"),
        ("url", "/login"),
    ]
    assert body["sourceRef"] == thehive.preview(digest(5, data={"srcip": "203.0.113.7",
                                                              "url": "/login"},
                                                        key="thehive#0"))["sourceRef"]  # fmt: skip
    assert body["sourceRef"].startswith("digest:")
    assert "wazuh:digest" in body["tags"]
