"""Syslog: every message parsed by a strict RFC 5424 parser, over real UDP,
TCP (octet counting) and TLS listeners; keep-alive and reconnection; the
severity table; options and hook_url checked at configuration time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.integrations.rfc5424 import SyslogMessage, parse, split_octet_counted
from tests.integrations.standins import LocalCA, SyslogListener

from wazuh_integrator.errors import Permanent, Transient
from wazuh_integrator.integrations.syslog import (
    SyslogIntegration,
    SyslogOptions,
    build_syslog_message,
    frame,
    syslog_severity,
)
from wazuh_integrator.secret import Secret

ALERT: dict[str, Any] = {
    "timestamp": "2026-11-27T17:00:00.123+0000",
    "rule": {"level": 10, "description": "sshd: brute force", "id": "5712", "groups": ["sshd"]},
    "agent": {"id": "001", "name": "web01", "ip": "10.0.0.11"},
    "manager": {"name": "wazuh-manager"},
    "id": "1764262800.42",
    "full_log": "Failed password for root from 203.0.113.7",
    "location": "/var/log/auth.log",
    "data": {"srcip": "203.0.113.7"},
}


def alert_number(number: int) -> dict[str, Any]:
    return {**ALERT, "id": f"1764262800.{number}"}


def test_sd_format_parses_as_rfc5424() -> None:
    message = parse(build_syslog_message(ALERT, SyslogOptions()))
    assert (message.facility, message.severity, message.version) == (16, 3, 1)
    assert message.timestamp is not None
    assert message.timestamp.isoformat() == "2026-11-27T17:00:00.123000+00:00"
    assert (message.hostname, message.app_name, message.procid, message.msgid) == (
        "wazuh-manager",
        "wazuh",
        None,
        "5712",
    )
    assert message.structured_data == {
        "wazuh@32473": {
            "alert_id": "1764262800.42",
            "rule_id": "5712",
            "level": "10",
            "description": "sshd: brute force",
            "groups": "sshd",
            "agent_id": "001",
            "agent_name": "web01",
            "agent_ip": "10.0.0.11",
            "manager": "wazuh-manager",
            "location": "/var/log/auth.log",
            "srcip": "203.0.113.7",
            "full_log": "Failed password for root from 203.0.113.7",
        }
    }
    assert message.msg == "sshd: brute force"


def test_json_format_carries_the_whole_alert_as_msg() -> None:
    message = parse(build_syslog_message(ALERT, SyslogOptions.read({"format": "json"})))
    assert message.structured_data == {}
    assert message.msg is not None
    assert json.loads(message.msg) == ALERT


def test_values_are_escaped_and_kept_on_one_line() -> None:
    nasty = 'a "quoted" \\ back]slash\nsecond line'
    alert = {**ALERT, "rule": {**ALERT["rule"], "description": nasty}, "full_log": nasty}
    line = build_syslog_message(alert, SyslogOptions())
    assert "\n" not in line
    message = parse(line)
    params = message.structured_data["wazuh@32473"]
    assert params["description"] == params["full_log"] == nasty.replace("\n", " ")
    assert message.msg == nasty.replace("\n", " ")


def test_header_fields_are_printable_ascii_and_nil_when_missing() -> None:
    alert = {"rule": {"level": 3, "id": "1 2"}, "agent": {"name": "hôte été"}}
    message = parse(build_syslog_message(alert, SyslogOptions()))
    assert message.timestamp is None
    assert message.hostname == "h_te__t_"
    assert message.msgid == "1_2"
    assert message.severity == 6


def test_options_set_facility_hostname_app_name_and_sd_id() -> None:
    options = SyslogOptions.read(
        {"facility": "auth", "hostname": "soc-relay", "app_name": "wazuh-alerts",
         "sd_id": "alert@99999"}
    )  # fmt: skip
    message = parse(build_syslog_message(ALERT, options))
    assert (message.facility, message.hostname, message.app_name) == (
        4,
        "soc-relay",
        "wazuh-alerts",
    )
    assert list(message.structured_data) == ["alert@99999"]


@pytest.mark.parametrize(
    ("level", "severity"),
    [(0, 6), (3, 6), (4, 5), (6, 5), (7, 4), (9, 4), (10, 3), (12, 3), (13, 2), (16, 2)],
)
def test_severity_from_level(level: int, severity: int) -> None:
    assert syslog_severity(level) == severity
    alert = {**ALERT, "rule": {**ALERT["rule"], "level": level}}
    assert parse(build_syslog_message(alert, SyslogOptions())).severity == severity


def test_octet_counting_frames() -> None:
    line = build_syslog_message({**ALERT, "full_log": "é"}, SyslogOptions())
    data = frame(line, "tcp")
    assert data.startswith(f"{len(line.encode())} ".encode())
    assert split_octet_counted(data + data) == ([line.encode(), line.encode()], b"")
    assert frame(line, "udp") == line.encode()


@pytest.mark.parametrize(
    ("hook_url", "options", "problem"),
    [
        ("http://siem:514", None, "hook_url: must be udp://, tcp:// or tls://host:port"),
        ("tcp://siem:514/x", None, "hook_url: a syslog address has no path or query"),
        ("udp://siem:514", {"format": "xml"}, 'options: "format" must be one of "sd", "json"'),
        ("udp://siem", {"facility": "local9"}, 'options: "facility" must be one of'),
        ("udp://siem", {"colour": "red"}, 'options: unknown key "colour"'),
        ("udp://siem", {"sd_id": "wazuh"}, 'options: "sd_id" must look like'),
        ("tls://siem", {"ca_file": "ca.pem"}, 'options: unknown key "ca_file"'),
        ("tls://siem", {"format": "json"}, None),
        ("udp://[::1]:5514", None, None),
    ],
)
def test_block_problems(
    hook_url: str, options: dict[str, Any] | None, problem: str | None, make_block: Any
) -> None:
    block = make_block("syslog", hook_url=Secret(hook_url), options=options)
    found = SyslogIntegration.block_problem(block)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


@pytest.fixture
async def listeners() -> AsyncIterator[list[SyslogListener]]:
    started: list[SyslogListener] = []
    yield started
    for listener in started:
        await listener.stop()


async def start(listeners: list[SyslogListener], listener: SyslogListener) -> SyslogListener:
    listeners.append(listener)
    return await listener.start()


async def send_all(integration: SyslogIntegration, count: int) -> None:
    try:
        for number in range(count):
            await integration.send(alert_number(number))
    finally:
        await integration.close()


def parsed_ids(messages: list[bytes]) -> list[str]:
    parsed: list[SyslogMessage] = [parse(message) for message in messages]
    return [message.structured_data["wazuh@32473"]["alert_id"] for message in parsed]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_delivers_to_a_listener(
    transport: str, listeners: list[SyslogListener], make_block: Any, context: Any
) -> None:
    listener = await start(listeners, SyslogListener(transport))
    integration = SyslogIntegration(make_block("syslog", hook_url=Secret(listener.url)), context)
    await send_all(integration, 5)
    messages = await listener.wait_for(5)
    assert parsed_ids(messages) == [f"1764262800.{n}" for n in range(5)]
    if transport == "tcp":
        assert listener.connections == 1, "one kept-open connection for every message"


async def test_tls_with_a_local_ca(
    tmp_path: Path, listeners: list[SyslogListener], make_block: Any, session: Any
) -> None:
    from wazuh_integrator.config.models import IntegrationSettings
    from wazuh_integrator.integrations.base import IntegrationContext

    ca = LocalCA()
    ca.write_ca(tmp_path / "ca.pem")
    # integrator.toml's ca_file for [integrations.syslog], as for every output.
    context = IntegrationContext(
        tmp_path, tmp_path / "state", IntegrationSettings(ca_file=tmp_path / "ca.pem"), http=session
    )
    listener = await start(listeners, SyslogListener("tls", tls=ca.server_context()))
    block = make_block("syslog", hook_url=Secret(listener.url))
    await send_all(SyslogIntegration(block, context), 3)
    assert parsed_ids(await listener.wait_for(3)) == [f"1764262800.{n}" for n in range(3)]
    assert listener.connections == 1


async def test_tls_refuses_a_server_it_cannot_verify(
    listeners: list[SyslogListener], make_block: Any, context: Any
) -> None:
    listener = await start(listeners, SyslogListener("tls", tls=LocalCA().server_context()))
    integration = SyslogIntegration(make_block("syslog", hook_url=Secret(listener.url)), context)
    with pytest.raises(Transient, match="CERTIFICATE_VERIFY_FAILED"):
        await send_all(integration, 1)
    assert listener.messages == []


async def test_a_hung_up_connection_is_opened_again(
    listeners: list[SyslogListener], make_block: Any, context: Any
) -> None:
    listener = await start(listeners, SyslogListener("tcp", hang_up_after_each=True))
    integration = SyslogIntegration(make_block("syslog", hook_url=Secret(listener.url)), context)
    try:
        for number in range(3):
            await integration.send(alert_number(number))
            # Wait for the hang-up to arrive, as it would between two alerts.
            await listener.wait_for(number + 1)
            await _closed_by_peer(integration)
    finally:
        await integration.close()
    assert parsed_ids(listener.messages) == [f"1764262800.{n}" for n in range(3)]
    assert listener.connections == 3


async def _closed_by_peer(integration: SyslogIntegration) -> None:
    from tests.integrations.standins import wait_until

    connection = integration._connection
    assert connection is not None
    await wait_until(
        lambda: connection._reader is None or connection._reader.at_eof(), "the peer's EOF"
    )


async def test_nothing_listening_is_transient(
    refused_base_url: str, make_block: Any, context: Any
) -> None:
    port = refused_base_url.rsplit(":", 1)[1]
    block = make_block("syslog", hook_url=Secret(f"tcp://127.0.0.1:{port}"))
    with pytest.raises(Transient, match=f"tcp://127.0.0.1:{port}: connection failed"):
        await send_all(SyslogIntegration(block, context), 1)


async def test_a_message_too_large_for_udp_is_permanent(make_block: Any, context: Any) -> None:
    block = make_block("syslog", hook_url=Secret("udp://127.0.0.1:9"), options={"format": "json"})
    huge = {**ALERT, "full_log": "x" * 70_000}
    with pytest.raises(Permanent, match="does not fit in a UDP datagram"):
        await send_all_one(SyslogIntegration(block, context), huge)


async def send_all_one(integration: SyslogIntegration, alert: dict[str, Any]) -> None:
    try:
        await integration.send(alert)
    finally:
        await integration.close()


def test_preview_is_the_message(make_block: Any, dry_context: Any) -> None:
    block = make_block("syslog", hook_url=Secret("udp://127.0.0.1:514"))
    preview = SyslogIntegration(block, dry_context).preview(ALERT)
    assert preview == build_syslog_message(ALERT, SyslogOptions())
