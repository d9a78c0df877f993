"""End-to-end: the real ``wazuh-integrator run`` delivering to local stand-ins
for email (aiosmtpd), syslog (a TCP listener), Opsgenie and TheHive (HTTP),
and failing as the other outputs do: retried, parked, dead-lettered."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import Daemon, Receiver, alerts_file, append_alerts, until
from tests.integrations.rfc5424 import parse
from tests.integrations.standins import SmtpStandIn, SyslogListener

PASSWORD = "e2e-smtp-password-never-logged"
API_KEY = "e2e-api-key-never-logged"
OPSGENIE, THEHIVE = "/opsgenie", "/thehive"
OPSGENIE_PATH, THEHIVE_PATH = f"{OPSGENIE}/v2/alerts", f"{THEHIVE}/api/v1/alert"
OUTPUTS = ("email", "syslog", "opsgenie", "thehive")
FAST_RETRIES = 'initial_backoff = "0.05s"\nmax_backoff = "0.2s"\n'


def free_port() -> int:
    """A loopback port where nothing listens (yet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class StandIns:
    """One stand-in per output, each on a port fixed before it starts, so that
    a test can start it late (a receiver down for a while)."""

    smtp: SmtpStandIn
    syslog: SyslogListener
    http: Receiver
    http_port: int

    @classmethod
    def create(cls) -> StandIns:
        return cls(SmtpStandIn(), SyslogListener("tcp"), Receiver(), free_port())

    def __post_init__(self) -> None:
        self.smtp.port = free_port()
        self.syslog.port = free_port()

    async def start(self) -> None:
        await self.smtp.start(self.smtp.port)
        await self.syslog.start(self.syslog.port)
        await self.http.start(self.http_port)

    async def stop(self) -> None:
        await self.smtp.stop()
        await self.syslog.stop()
        await self.http.stop()

    def block(self, name: str, extra: str = "") -> str:
        http = f"http://127.0.0.1:{self.http_port}"
        elements = {
            "email": f"<hook_url>smtp://127.0.0.1:{self.smtp.port}</hook_url>"
            '<options>{"from": "wazuh@example.com", "to": ["soc@example.com"]}</options>',
            "syslog": f"<hook_url>tcp://127.0.0.1:{self.syslog.port}</hook_url>",
            "opsgenie": f"<hook_url>{http}{OPSGENIE}</hook_url><api_key>{API_KEY}</api_key>",
            "thehive": f"<hook_url>{http}{THEHIVE}</hook_url><api_key>{API_KEY}</api_key>",
        }[name]
        return f"<integration><name>{name}</name>{elements}{extra}</integration>"

    def delivered_ids(self, name: str) -> list[str]:
        """The alert ids each output's stand-in accepted, in arrival order."""
        if name == "email":
            return [
                r.message["Message-ID"].split(".", 1)[1].split("@")[0] for r in self.smtp.received
            ]
        if name == "syslog":
            return [
                parse(m).structured_data["wazuh@32473"]["alert_id"] for m in self.syslog.messages
            ]
        if name == "opsgenie":
            return [
                body["alias"].removeprefix("wazuh-")
                for body in self.http.received.get(OPSGENIE_PATH, [])
            ]
        return [
            body["sourceRef"].split(":", 1)[1] for body in self.http.received.get(THEHIVE_PATH, [])
        ]

    def fail_transiently(self, name: str, times: int | None) -> None:
        """The next ``times`` attempts (None: all) fail in a way worth retrying."""
        if name == "email":
            self.smtp.data_replies = ["451 4.3.0 Try again later"] * (times or 1) + (
                ["250 OK"] if times else []
            )
        elif name in ("opsgenie", "thehive"):
            path = OPSGENIE_PATH if name == "opsgenie" else THEHIVE_PATH
            self.http.script[path] = [(503, {})] * (times or 1) + ([(202, {})] if times else [])

    def fail_for_good(self, name: str) -> None:
        if name == "email":
            self.smtp.data_replies = ["550 5.7.1 Message rejected"]
        else:
            path = OPSGENIE_PATH if name == "opsgenie" else THEHIVE_PATH
            self.http.script[path] = [(400, {})]


@pytest.fixture
async def standins() -> AsyncIterator[StandIns]:
    running = StandIns.create()
    yield running
    await running.stop()


def configure(home: Path, blocks: str, settings: str = "") -> None:
    (home / "etc" / "ossec.conf").write_text(f"<ossec_config>\n{blocks}\n</ossec_config>\n")
    base = "".join(f"[integrations.{name}]\n{FAST_RETRIES}{settings}" for name in OUTPUTS)
    (home / "etc" / "integrator.toml").write_text(base)


def ids(numbers: range) -> list[str]:
    return [f"1764262800.{n}" for n in numbers]


async def run_once(home: Path, expect_status: int = 0) -> Daemon:
    """``run --once``; it exits 3 when deliveries are left parked, 4 when some
    were dead-lettered (docs/commands.md)."""
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait(60) == expect_status, daemon.log()
    for secret in (PASSWORD, API_KEY):
        assert secret not in daemon.log()
    return daemon


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def parked_count(home: Path) -> int:
    database = home / "var" / "integrator" / "state.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        count: int = connection.execute("SELECT count(*) FROM parked").fetchone()[0]
    return count


def dead_letters(home: Path) -> list[dict[str, Any]]:
    listed = cli(home, "dead-letter", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    for secret in (PASSWORD, API_KEY):
        assert secret not in listed.stdout
    return [json.loads(line) for line in listed.stdout.splitlines()]


async def test_every_output_delivers(home: Path, standins: StandIns) -> None:
    await standins.start()
    configure(home, "".join(standins.block(name) for name in OUTPUTS))
    append_alerts(alerts_file(home), range(4))
    await run_once(home)
    for name in OUTPUTS:
        assert sorted(standins.delivered_ids(name)) == ids(range(4)), name
    # What arrived is what each output builds: MIME parts, RFC 5424, API bodies.
    message = standins.smtp.received[0].message
    assert message["Subject"].startswith("[Wazuh] Level 10, rule 5712: test alert")
    assert {part.get_content_type() for part in message.iter_parts()} == {
        "text/plain",
        "text/html",
    }
    assert standins.smtp.received[0].recipients == ["soc@example.com"]
    assert all(parse(line).severity == 3 for line in standins.syslog.messages)
    assert standins.syslog.connections == 1
    assert {body["priority"] for body in standins.http.received[OPSGENIE_PATH]} == {"P2"}
    assert {body["severity"] for body in standins.http.received[THEHIVE_PATH]} == {3}


@pytest.mark.parametrize("name", ["email", "opsgenie", "thehive"])
async def test_a_transient_failure_is_retried(home: Path, standins: StandIns, name: str) -> None:
    standins.fail_transiently(name, times=1)
    await standins.start()
    configure(home, standins.block(name))
    append_alerts(alerts_file(home), range(1))
    await run_once(home)
    assert standins.delivered_ids(name) == ids(range(1))
    attempts = standins.smtp.attempts if name == "email" else sum(standins.http.attempts.values())
    assert attempts == 2


async def test_receivers_down_for_a_while_get_every_alert(home: Path, standins: StandIns) -> None:
    configure(home, "".join(standins.block(name) for name in OUTPUTS))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts_file(home), range(5))
        await asyncio.sleep(1.5)  # every attempt so far was refused
        await standins.start()

        def all_delivered() -> bool:
            return all(set(standins.delivered_ids(name)) == set(ids(range(5))) for name in OUTPUTS)

        await until(all_delivered, 60, "every alert at every stand-in", daemon)
    finally:
        assert await daemon.stop() == 0
    for secret in (PASSWORD, API_KEY):
        assert secret not in daemon.log()


@pytest.mark.parametrize("name", OUTPUTS)
async def test_a_delivery_that_keeps_failing_is_parked_then_delivered(
    home: Path, standins: StandIns, name: str
) -> None:
    if name == "syslog":
        # Nothing listens on its port yet: connection refused.
        await standins.smtp.start(standins.smtp.port)
        await standins.http.start(standins.http_port)
    else:
        standins.fail_transiently(name, times=None)
        await standins.start()
    configure(home, standins.block(name, "<retries>0</retries>"))
    append_alerts(alerts_file(home), range(2))
    await run_once(home, expect_status=3)
    assert standins.delivered_ids(name) == []
    assert parked_count(home) == 2
    assert dead_letters(home) == []

    # The receiver recovers: the next run delivers what was parked.
    if name == "syslog":
        await standins.syslog.start(standins.syslog.port)
    else:
        standins.smtp.data_replies = ["250 OK"]
        standins.http.script.clear()
    await asyncio.sleep(0.3)  # past the parked deliveries' next attempt
    await run_once(home)
    assert sorted(standins.delivered_ids(name)) == ids(range(2))
    assert parked_count(home) == 0


@pytest.mark.parametrize("name", ["email", "opsgenie", "thehive"])
async def test_a_permanent_failure_is_a_dead_letter(
    home: Path, standins: StandIns, name: str
) -> None:
    standins.fail_for_good(name)
    await standins.start()
    configure(home, standins.block(name))
    append_alerts(alerts_file(home), range(2))
    await run_once(home, expect_status=4)
    letters = dead_letters(home)
    assert sorted(letter["alert_id"] for letter in letters) == ids(range(2))
    status = 550 if name == "email" else 400
    assert {letter["status"] for letter in letters} == {status}
    assert all(str(status) in letter["last_error"] for letter in letters)
    assert parked_count(home) == 0


async def test_syslog_past_its_retry_age_is_a_dead_letter(home: Path, standins: StandIns) -> None:
    # Syslog has no "no" of its own: a receiver that stays away long enough
    # is what sends its alerts to the dead letters.
    configure(home, standins.block("syslog", "<retries>0</retries>"), 'max_retry_age = "0.1s"\n')
    append_alerts(alerts_file(home), range(2))
    await run_once(home, expect_status=3)
    assert parked_count(home) == 2
    await asyncio.sleep(0.3)
    await run_once(home, expect_status=4)
    letters = dead_letters(home)
    assert sorted(letter["alert_id"] for letter in letters) == ids(range(2))
    assert all("connection failed" in letter["last_error"] for letter in letters)
    assert parked_count(home) == 0


async def test_a_floods_digest_is_one_email_and_one_syslog_message(
    home: Path, standins: StandIns
) -> None:
    await standins.start()
    configure(home, standins.block("email") + standins.block("syslog"))
    with (home / "etc" / "integrator.toml").open("a") as settings:
        for name in ("email", "syslog"):
            settings.write(f'[integrations.{name}.digest]\ngroup_wait = "0s"\nmax_alerts = 3\n')
    append_alerts(alerts_file(home), range(20))
    await run_once(home)
    [received] = standins.smtp.received
    assert received.message["Subject"] == "[Wazuh] Digest: 20 alerts for rule.id=5712"
    text = received.message.get_body(preferencelist=("plain",))
    assert text is not None and text.get_content().rstrip().endswith("and 17 more")
    [line] = standins.syslog.messages
    message = parse(line)
    assert (message.msgid, message.msg) == ("digest", "20 Wazuh alerts for rule.id=5712")
    assert message.structured_data["wazuh@32473"]["count"] == "20"


async def test_tls_outputs_trust_the_ca_file_of_integrator_toml(home: Path) -> None:
    from tests.integrations.standins import LocalCA

    ca = LocalCA()
    ca_file = ca.write_ca(home / "etc" / "siem-ca.pem")
    listener = await SyslogListener("tls", tls=ca.server_context()).start()
    smtp = await SmtpStandIn(tls=ca.server_context(), implicit_tls=True).start()
    try:
        blocks = (
            f"<integration><name>syslog</name><hook_url>{listener.url}</hook_url></integration>"
            f"<integration><name>email</name><hook_url>{smtp.url}</hook_url>"
            '<options>{"from": "wazuh@example.com", "to": "soc@example.com"}</options>'
            "</integration>"
        )
        (home / "etc" / "ossec.conf").write_text(f"<ossec_config>\n{blocks}\n</ossec_config>\n")
        (home / "etc" / "integrator.toml").write_text(
            "".join(
                f'[integrations.{name}]\nca_file = "{ca_file}"\n' for name in ("syslog", "email")
            )
        )
        append_alerts(alerts_file(home), range(2))
        await run_once(home)
    finally:
        await listener.stop()
        await smtp.stop()
    assert sorted(
        parse(m).structured_data["wazuh@32473"]["alert_id"] for m in listener.messages
    ) == ids(range(2))
    assert len(smtp.received) == 2 and all(r.tls for r in smtp.received)
