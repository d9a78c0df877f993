"""Email: the message parsed as MIME (subject, both parts, recipients) as an
aiosmtpd server received it, over plain SMTP, STARTTLS and implicit TLS with a
local CA, with and without login; 4xx transient, 5xx permanent; no password
in any error; options and hook_url checked at configuration time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from tests.integrations.standins import LocalCA, SmtpStandIn, wait_until

from wazuh_integrator.errors import DeliveryError, Permanent, Timeout, Transient
from wazuh_integrator.integrations.email import (
    EmailIntegration,
    EmailOptions,
    build_email,
    email_html,
    email_subject,
    email_text,
)
from wazuh_integrator.integrations.smtp_connections import SmtpConnections
from wazuh_integrator.secret import Secret

PASSWORD = "smtpPasswordNeverLeak-0123"
OPTIONS = {"from": "Wazuh <wazuh@example.com>", "to": ["soc@example.com", "Ann <ann@example.org>"]}
ALERT: dict[str, Any] = {
    "timestamp": "2026-11-27T17:00:00.000+0000",
    "rule": {
        "level": 10,
        "description": "sshd: brute force <script>alert(1)</script>",
        "id": "5712",
        "groups": ["syslog", "sshd"],
    },
    "agent": {"id": "001", "name": "web01", "ip": "10.0.0.11"},
    "manager": {"name": "wazuh-manager"},
    "id": "1764262800.42",
    "full_log": "Failed password for <root> & friends from 203.0.113.7",
    "location": "/var/log/auth.log",
    "data": {"srcip": "203.0.113.7", "srcuser": "root"},
}


def test_subject_has_level_rule_and_agent() -> None:
    assert email_subject(ALERT) == (
        "[Wazuh] Level 10, rule 5712: sshd: brute force <script>alert(1)</script> (agent web01)"
    )
    multi_line = {**ALERT, "rule": {**ALERT["rule"], "description": "a\r\nBcc: x@y"}}
    assert "\n" not in email_subject(multi_line) and "\r" not in email_subject(multi_line)
    no_agent = {key: value for key, value in ALERT.items() if key != "agent"}
    assert email_subject(no_agent).endswith("</script>")


def test_text_part() -> None:
    assert email_text(ALERT) == (
        "[Wazuh] Level 10, rule 5712: sshd: brute force <script>alert(1)</script> (agent web01)\n"
        "\n"
        "Rule:        5712 (level 10): sshd: brute force <script>alert(1)</script>\n"
        "Agent:       (001) web01 10.0.0.11\n"
        "Location:    /var/log/auth.log\n"
        "Groups:      syslog, sshd\n"
        "Source IP:   203.0.113.7\n"
        "Source user: root\n"
        "Time:        2026-11-27T17:00:00.000+0000\n"
        "Alert ID:    1764262800.42\n"
        "\n"
        "Full log:\n"
        "Failed password for <root> & friends from 203.0.113.7\n"
    )


def test_html_part_escapes_every_alert_value() -> None:
    page = email_html(ALERT)
    assert "<script>" not in page
    assert "sshd: brute force &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<pre>Failed password for &lt;root&gt; &amp; friends from 203.0.113.7</pre>" in page
    assert '<th align="left" valign="top">Agent</th><td>(001) web01 10.0.0.11</td>' in page


def test_message_headers() -> None:
    message = build_email(ALERT, EmailOptions.read(OPTIONS))
    assert message["From"] == "Wazuh <wazuh@example.com>"
    assert message["To"] == "soc@example.com, Ann <ann@example.org>"
    assert message["Date"] == "Fri, 27 Nov 2026 17:00:00 +0000"
    assert message["Message-ID"] == "<wazuh.1764262800.42@example.com>"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


@pytest.mark.parametrize(
    ("hook_url", "options", "problem"),
    [
        ("smtp://mail", None, 'options: "from" is required'),
        ("smtp://mail", {"from": "w@x.y"}, 'options: "to" is required'),
        ("smtp://mail", {"from": "w@x.y", "to": []}, 'options: "to" must be a string or a list'),
        ("smtp://mail", {"from": "w@x.y", "to": ["not an address"]}, 'options: "to": '),
        ("smtp://mail", {"from": "nobody", "to": "a@b.c"}, 'options: "from": '),
        (
            "smtp://mail",
            {"from": "w@x.y", "to": "a@b.c, d@e.f"},
            "options: \"to\": 'a@b.c, d@e.f' holds several addresses: list them",
        ),
        ("smtp://mail", {"from": "w@x.y", "to": '"Doe, Jo" <j@x.y>'}, None),
        ("smtp://mail", {**OPTIONS, "require_tls": "yes"}, 'options: "require_tls" must be true'),
        ("smtp://mail", {**OPTIONS, "cc": ["a@b.c"]}, 'options: unknown key "cc"'),
        ("http://mail", OPTIONS, "hook_url: must be smtp://host[:port] or smtps://"),
        ("smtp://u:p@mail", OPTIONS, "hook_url: no credentials in the URL"),
        ("smtp://mail:587", {**OPTIONS, "to": "soc@example.com", "username": "w"}, None),
        ("smtps://mail", {**OPTIONS, "require_tls": True}, None),
        ("smtp://mail", {**OPTIONS, "ca_file": "ca.pem"}, 'options: unknown key "ca_file"'),
    ],
)
def test_block_problems(
    hook_url: str, options: dict[str, Any] | None, problem: str | None, make_block: Any
) -> None:
    block = make_block("email", hook_url=Secret(hook_url), options=options)
    found = EmailIntegration.block_problem(block)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


def test_a_bad_url_never_shows_its_password(make_block: Any) -> None:
    block = make_block("email", hook_url=Secret(f"smtp://u:{PASSWORD}@mail"), options=OPTIONS)
    problem = EmailIntegration.block_problem(block)
    assert problem is not None and PASSWORD not in problem


def test_preview_is_what_would_be_sent(make_block: Any, dry_context: Any) -> None:
    block = make_block("email", hook_url=Secret("smtp://mail"), api_key=Secret(PASSWORD),
                       options=OPTIONS)  # fmt: skip
    preview = EmailIntegration(block, dry_context).preview(ALERT)
    assert preview == {
        "from": "Wazuh <wazuh@example.com>",
        "to": ["soc@example.com", "Ann <ann@example.org>"],
        "subject": email_subject(ALERT),
        "text": email_text(ALERT),
        "html": email_html(ALERT),
    }
    assert PASSWORD not in str(preview)


# -- against a real SMTP server -------------------------------------------------


@pytest.fixture
async def servers() -> AsyncIterator[list[SmtpStandIn]]:
    started: list[SmtpStandIn] = []
    yield started
    for server in started:
        await server.stop()


async def start(servers: list[SmtpStandIn], server: SmtpStandIn) -> SmtpStandIn:
    servers.append(server)
    return await server.start()


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    local = LocalCA()
    local.write_ca(tmp_path / "ca.pem")
    return local


@pytest.fixture
def tls_context(tmp_path: Path, session: Any, ca: LocalCA) -> Any:
    """A context whose integrator.toml names the local CA as ``ca_file``."""
    from wazuh_integrator.config.models import IntegrationSettings
    from wazuh_integrator.integrations.base import IntegrationContext

    settings = IntegrationSettings(ca_file=tmp_path / "ca.pem")
    return IntegrationContext(tmp_path, tmp_path / "state", settings, http=session)


def assert_is_the_alert(received: Any) -> None:
    message = received.message
    assert received.sender == "wazuh@example.com"
    assert received.recipients == ["soc@example.com", "ann@example.org"]
    assert message["Subject"] == email_subject(ALERT)
    assert message["To"] == "soc@example.com, Ann <ann@example.org>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    page = message.get_body(preferencelist=("html",))
    assert text is not None and page is not None
    assert text.get_content() == email_text(ALERT)
    assert page.get_content() == email_html(ALERT)


async def test_plain_smtp_without_login(
    servers: list[SmtpStandIn], make_block: Any, context: Any
) -> None:
    server = await start(servers, SmtpStandIn())
    block = make_block("email", hook_url=Secret(server.url), options=OPTIONS)
    await EmailIntegration(block, context).send(ALERT)
    [received] = await server.wait_for(1)
    assert_is_the_alert(received)
    assert (received.tls, received.login) == (False, None)


async def test_starttls_when_offered_and_login_with_the_api_key(
    ca: LocalCA, servers: list[SmtpStandIn], make_block: Any, tls_context: Any
) -> None:
    server = await start(servers, SmtpStandIn(tls=ca.server_context(), password=PASSWORD))
    options = {**OPTIONS, "username": "wazuh-relay"}
    block = make_block("email", hook_url=Secret(server.url), api_key=Secret(PASSWORD),
                       options=options)  # fmt: skip
    await EmailIntegration(block, tls_context).send(ALERT)
    [received] = await server.wait_for(1)
    assert_is_the_alert(received)
    assert (received.tls, received.login) == (True, "wazuh-relay")


async def test_implicit_tls_logs_in_as_the_sender_by_default(
    ca: LocalCA, servers: list[SmtpStandIn], make_block: Any, tls_context: Any
) -> None:
    server = await start(
        servers, SmtpStandIn(tls=ca.server_context(), implicit_tls=True, password=PASSWORD)
    )
    block = make_block("email", hook_url=Secret(server.url), api_key=Secret(PASSWORD),
                       options=OPTIONS)  # fmt: skip
    await EmailIntegration(block, tls_context).send(ALERT)
    [received] = await server.wait_for(1)
    assert_is_the_alert(received)
    assert (received.tls, received.login) == (True, "wazuh@example.com")


async def test_require_tls_refuses_a_server_without_starttls(
    servers: list[SmtpStandIn], make_block: Any, context: Any
) -> None:
    server = await start(servers, SmtpStandIn())
    block = make_block("email", hook_url=Secret(server.url),
                       options={**OPTIONS, "require_tls": True})  # fmt: skip
    with pytest.raises(Permanent, match="offers no STARTTLS, and require_tls is set"):
        await EmailIntegration(block, context).send(ALERT)
    assert server.received == []


async def test_a_password_is_never_sent_without_tls(
    servers: list[SmtpStandIn], make_block: Any, context: Any
) -> None:
    server = await start(servers, SmtpStandIn())
    block = make_block("email", hook_url=Secret(server.url), api_key=Secret(PASSWORD),
                       options=OPTIONS)  # fmt: skip
    with pytest.raises(Permanent, match="offers no STARTTLS, and a password is set"):
        await EmailIntegration(block, context).send(ALERT)
    assert server.logins == [] and server.received == []


async def test_an_unverifiable_certificate_is_refused(
    servers: list[SmtpStandIn], make_block: Any, context: Any
) -> None:
    server = await start(servers, SmtpStandIn(tls=LocalCA().server_context(), implicit_tls=True))
    block = make_block("email", hook_url=Secret(server.url), options=OPTIONS)
    with pytest.raises(Transient, match="CERTIFICATE_VERIFY_FAILED"):
        await EmailIntegration(block, context).send(ALERT)


@pytest.mark.parametrize(
    ("reply", "expected", "status"),
    [
        ("451 4.3.0 Try again later", Transient, 451),
        ("452 4.3.1 Insufficient storage", Transient, 452),
        ("550 5.7.1 Message rejected", Permanent, 550),
        ("554 5.6.0 Content refused", Permanent, 554),
    ],
)
async def test_data_replies(
    reply: str,
    expected: type[DeliveryError],
    status: int,
    servers: list[SmtpStandIn],
    make_block: Any,
    context: Any,
) -> None:
    server = await start(servers, SmtpStandIn(data_replies=[reply]))
    block = make_block("email", hook_url=Secret(server.url), options=OPTIONS)
    with pytest.raises(DeliveryError) as info:
        await EmailIntegration(block, context).send(ALERT)
    assert type(info.value) is expected
    assert info.value.status == status
    assert reply.split(" ", 1)[1] in str(info.value)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("450 4.2.1 Mailbox busy", Transient), ("550 5.1.1 No such user", Permanent)],
)
async def test_every_recipient_refused(
    reply: str,
    expected: type[DeliveryError],
    servers: list[SmtpStandIn],
    make_block: Any,
    context: Any,
) -> None:
    server = await start(servers, SmtpStandIn(rcpt_reply=reply))
    block = make_block("email", hook_url=Secret(server.url), options=OPTIONS)
    with pytest.raises(expected, match=r"every recipient refused: soc@example\.com"):
        await EmailIntegration(block, context).send(ALERT)


async def test_nothing_listening_is_transient(
    refused_base_url: str, make_block: Any, context: Any
) -> None:
    port = refused_base_url.rsplit(":", 1)[1]
    block = make_block("email", hook_url=Secret(f"smtp://127.0.0.1:{port}"), options=OPTIONS)
    with pytest.raises(Transient, match="connection failed"):
        await EmailIntegration(block, context).send(ALERT)


async def test_a_server_that_never_answers_times_out(make_block: Any, context: Any) -> None:
    import asyncio

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        block = make_block("email", hook_url=Secret(f"smtp://127.0.0.1:{port}"), options=OPTIONS,
                           timeout_s=1)  # fmt: skip
        with pytest.raises(Timeout):
            await EmailIntegration(block, context).send(ALERT)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_wrong_password_is_permanent_and_never_shown(
    ca: LocalCA,
    servers: list[SmtpStandIn],
    make_block: Any,
    tls_context: Any,
    caplog: pytest.LogCaptureFixture,
    assert_no_leak: Any,
) -> None:
    caplog.set_level(logging.DEBUG, logger="wazuh_integrator")
    caplog.set_level(logging.DEBUG)
    server = await start(servers, SmtpStandIn(tls=ca.server_context(), password="other"))
    block = make_block("email", hook_url=Secret(server.url), api_key=Secret(PASSWORD),
                       options=OPTIONS)  # fmt: skip
    with pytest.raises(Permanent) as info:
        await EmailIntegration(block, tls_context).send(ALERT)
    assert info.value.status == 535
    assert_no_leak(info.value, [PASSWORD])


# -- templates ----------------------------------------------------------------


def templated_context(tmp_path: Path, session: Any, **files: str) -> Any:
    from wazuh_integrator.config.models import IntegrationSettings
    from wazuh_integrator.integrations.base import IntegrationContext

    folder = tmp_path / "etc" / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    templates = {}
    for role, text in files.items():
        name = f"{role}.j2"
        (folder / name).write_text(text)
        templates[role] = Path("etc/templates") / name
    settings = IntegrationSettings(templates=templates)
    return IntegrationContext(tmp_path, tmp_path / "state", settings, http=session)


async def test_configured_templates_replace_the_shipped_ones(
    tmp_path: Path, session: Any, servers: list[SmtpStandIn], make_block: Any
) -> None:
    server = await start(servers, SmtpStandIn())
    context = templated_context(
        tmp_path,
        session,
        subject_template="{{ alert.rule.level | level_name | upper }}: {{ alert.rule.id }}\n",
        template="Agent {{ alert.agent.name }} for {{ integration }}",
        html_template="<p>{{ alert.full_log }}</p>",
    )
    block = make_block("email", hook_url=Secret(server.url), options=OPTIONS)
    integration = EmailIntegration(block, context)
    assert integration.preview(ALERT)["subject"] == "MEDIUM: 5712"
    await integration.send(ALERT)
    [received] = await server.wait_for(1)
    assert received.message["Subject"] == "MEDIUM: 5712"
    text = received.message.get_body(preferencelist=("plain",))
    page = received.message.get_body(preferencelist=("html",))
    assert text is not None and text.get_content() == "Agent web01 for email\n"
    # The HTML template's format escapes what the alert holds.
    assert page is not None and page.get_content() == (
        "<p>Failed password for &lt;root&gt; &amp; friends from 203.0.113.7</p>\n"
    )


async def test_a_template_that_fails_on_an_alert_is_permanent_and_names_its_line(
    tmp_path: Path, session: Any, servers: list[SmtpStandIn], make_block: Any
) -> None:
    server = await start(servers, SmtpStandIn())
    context = templated_context(tmp_path, session, template="line one\n{{ alert.data.nothing }}\n")
    block = make_block("email", hook_url=Secret(server.url), options=OPTIONS)
    with pytest.raises(
        Permanent, match=r"etc/templates/template\.j2:2: alert\.data\.nothing is missing"
    ):
        await EmailIntegration(block, context).send(ALERT)
    assert server.received == []


def email_block(server: SmtpStandIn, make_block: Any) -> Any:
    return make_block("email", hook_url=Secret(server.url), options=OPTIONS)


@contextlib.asynccontextmanager
async def kept_open(integration: EmailIntegration) -> AsyncIterator[EmailIntegration]:
    """``integration``, closed at the end (its kept SMTP connection with it)."""
    try:
        yield integration
    finally:
        await integration.close()


async def test_messages_sent_close_together_share_one_connection(
    servers: list[SmtpStandIn], make_block: Any, context: Any
) -> None:
    server = await start(servers, SmtpStandIn())
    async with kept_open(EmailIntegration(email_block(server, make_block), context)) as integration:
        for _ in range(5):
            await integration.send(ALERT)
        assert len(await server.wait_for(5)) == 5
        assert server.connections == 1
    await wait_until(lambda: not server.open_transports, "the connection closed")


async def test_a_connection_the_server_dropped_is_replaced(
    servers: list[SmtpStandIn], make_block: Any, context: Any
) -> None:
    server = await start(servers, SmtpStandIn())
    async with kept_open(EmailIntegration(email_block(server, make_block), context)) as integration:
        await integration.send(ALERT)
        server.drop_connections()
        await wait_until(lambda: not server.open_transports, "the server dropped it")
        await integration.send(ALERT)
        assert len(await server.wait_for(2)) == 2
        assert server.connections == 2


async def test_a_failed_message_does_not_reuse_its_connection(
    servers: list[SmtpStandIn], make_block: Any, context: Any
) -> None:
    server = await start(servers, SmtpStandIn(data_replies=["451 4.3.0 Try again", "250 OK"]))
    async with kept_open(EmailIntegration(email_block(server, make_block), context)) as integration:
        with pytest.raises(Transient, match="Try again"):
            await integration.send(ALERT)
        await integration.send(ALERT)
        assert len(await server.wait_for(1)) == 1
        assert server.connections == 2


async def test_an_idle_connection_is_closed_and_the_next_message_reconnects(
    servers: list[SmtpStandIn],
) -> None:
    server = await start(servers, SmtpStandIn())
    connections = SmtpConnections(
        lambda: aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, start_tls=False),
        idle_close_s=0.2,
    )
    message = EmailMessage()
    message["Subject"] = "idle"
    message.set_content("x")
    try:
        await connections.send(message, "a@example.com", ["b@example.com"])
        await wait_until(lambda: not server.open_transports, "the idle connection closed")
        await connections.send(message, "a@example.com", ["b@example.com"])
        assert len(await server.wait_for(2)) == 2
        assert (server.connections, connections.opened) == (2, 2)
    finally:
        await connections.close()
    await wait_until(lambda: not server.open_transports, "closed at the end")
