"""Secrets and TLS, against the real ``run``: certificates verified by default,
a private CA and mutual TLS per integration, and the metrics endpoint's address."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from tests.e2e.harness import (
    Daemon,
    alerts_file,
    append_alerts,
    cli,
    run_once,
    slack_block,
    until,
    write_config,
)
from tests.reliability import support
from tests.reliability.support import FaultReport, settings

SECTION = "Secrets and TLS"
HOOK = "/services/T0/B0/tls-token"

home = support.home


@dataclass
class TlsReceiver:
    """An HTTPS server on 127.0.0.1 with a certificate from a local CA."""

    ca: trustme.CA
    require_client_cert: bool = False
    received: list[Any] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        server = self.ca.issue_cert("127.0.0.1")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.configure_cert(context)
        if self.require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(context)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(text="ok")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{HOOK}"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_receiver(ca: trustme.CA) -> AsyncIterator[TlsReceiver]:
    server = TlsReceiver(ca)
    await server.start()
    yield server
    await server.stop()


def tls_settings(home: Path, **files: Path | str) -> str:
    """integrator.toml whose [integrations.slack] holds ``files``."""
    lines = "".join(f'{key} = "{value}"\n' for key, value in files.items())
    return settings().replace("[integrations.slack]\n", f"[integrations.slack]\n{lines}")


async def run_until(home: Path, receiver: TlsReceiver, count: int) -> None:
    """Run the daemon until ``count`` alerts (parked ones retried) reached ``receiver``."""
    daemon = Daemon(home)
    await daemon.start()
    try:
        await until(lambda: len(receiver.received) >= count, 30, f"{count} deliveries", daemon)
    finally:
        assert await daemon.stop() == 0, daemon.log()


async def test_a_certificate_from_an_unknown_ca_is_refused_then_accepted_with_ca_file(
    home: Path, ca: trustme.CA, tls_receiver: TlsReceiver, fault_report: FaultReport
) -> None:
    append_alerts(alerts_file(home), range(3))
    write_config(home, slack_block(tls_receiver.url()), settings())
    daemon = await run_once(home, status=3)  # refused, so parked
    assert tls_receiver.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in daemon.log() or "certificate verify" in daemon.log()
    # The CA configured for this integration: the parked alerts go out.
    ca_file = home / "etc" / "receiver-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    write_config(home, slack_block(tls_receiver.url()), tls_settings(home, ca_file=ca_file))
    await run_until(home, tls_receiver, 3)
    assert sorted(body["attachments"][0]["ts"] for body in tls_receiver.received) == [
        f"1764262800.{n}" for n in range(3)
    ]
    fault_report(
        "HTTPS receiver with a certificate from an unknown CA",
        "refused (certificate verify failed), parked; delivered once ca_file named the CA",
        section=SECTION,
    )


async def test_mutual_tls_with_client_cert_and_key(
    home: Path, ca: trustme.CA, fault_report: FaultReport
) -> None:
    receiver = TlsReceiver(ca, require_client_cert=True)
    await receiver.start()
    try:
        ca_file = home / "etc" / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        client = ca.issue_cert("wazuh-integrator@example.com")
        cert_file, key_file = home / "etc" / "client.pem", home / "etc" / "client.key"
        for blob in client.cert_chain_pems:
            blob.write_to_path(str(cert_file), append=True)
        client.private_key_pem.write_to_path(str(key_file))
        append_alerts(alerts_file(home), range(2))
        write_config(home, slack_block(receiver.url()), tls_settings(home, ca_file=ca_file))
        await run_once(home, status=3)  # parked
        assert receiver.received == []  # no client certificate: the server refused
        write_config(
            home,
            slack_block(receiver.url()),
            # Relative paths are relative to integrator.toml's folder.
            tls_settings(
                home, ca_file=Path("ca.pem"), client_cert=cert_file, client_key=Path("client.key")
            ),
        )
        await run_until(home, receiver, 2)
        assert len(receiver.received) == 2
    finally:
        await receiver.stop()
    fault_report(
        "receiver requiring a client certificate (mutual TLS)",
        "refused without one; delivered with client_cert and client_key",
        section=SECTION,
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"ca_file": "missing-ca.pem"}, "integrations.slack.ca_file: cannot load CA file"),
        ({"client_key": "client.key"}, "integrations.slack.client_key: needs client_cert"),
        ({"client_cert": "not-a-cert.pem"}, "integrations.slack.client_cert: cannot load"),
    ],
)
async def test_a_tls_file_that_cannot_be_loaded_is_a_configuration_error(
    home: Path, files: dict[str, str], message: str
) -> None:
    (home / "etc" / "not-a-cert.pem").write_text("nonsense\n")
    write_config(home, slack_block("https://hooks.example/x"), tls_settings(home, **files))
    status, out, err = await cli(home, "check-config")
    assert status == 1
    assert message in out + err


def listening_addresses(port: int) -> set[str]:
    """The local addresses listening on TCP ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


async def test_the_metrics_endpoint_listens_on_the_configured_loopback_only(
    home: Path, fault_report: FaultReport
) -> None:
    port = support.free_port()
    write_config(home, slack_block("https://hooks.example/x"), settings(metrics_port=port))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("health served on")
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    finally:
        assert await daemon.stop() == 0
    # Without metrics_address nothing listens at all.
    write_config(home, slack_block("https://hooks.example/x"), settings())
    daemon.log_path.unlink()
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        assert "health served" not in daemon.log()
    finally:
        assert await daemon.stop() == 0
    fault_report(
        "metrics endpoint address",
        "off unless metrics_address is set; then bound to that address only (127.0.0.1)",
        section=SECTION,
    )


async def test_check_config_environment_handshakes_with_the_configured_ca(
    home: Path, ca: trustme.CA, tls_receiver: TlsReceiver
) -> None:
    alerts_file(home).write_bytes(b"")
    write_config(home, slack_block(tls_receiver.url()), settings())
    status, out, _ = await cli(home, "check-config", "--environment")
    assert status == 1 and "TLS handshake failed" in out, out
    ca_file = home / "etc" / "receiver-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    write_config(home, slack_block(tls_receiver.url()), tls_settings(home, ca_file=ca_file))
    status, out, _ = await cli(home, "check-config", "--environment")
    assert "TLS handshake done" in out, out
