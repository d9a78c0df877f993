"""Local stand-ins for Slack, PagerDuty, Shuffle, Teams, Telegram, Discord,
Jira, a generic webhook, Opsgenie, TheHive, VirusTotal, Maltiverse, an SMTP
relay, a syslog receiver and analysisd, so that the demo shows the real
daemon delivering, offline.

They record what they receive; the demo prints it afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

_EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
# The message outputs, each posting under /<name>/ of the demo server.
CHAT_SERVICES = ("teams", "telegram", "discord", "jira", "webhook")


@dataclass
class Received:
    service: str
    path: str
    body: Any


@dataclass
class DemoReceivers:
    """An HTTP server on 127.0.0.1 and a Unix datagram socket for analysisd."""

    socket_path: Path
    requests: list[Received] = field(default_factory=list)
    events: list[bytes] = field(default_factory=list)
    base_url: str = ""
    smtp_url: str = ""
    syslog_url: str = ""
    _runner: web.AppRunner | None = None
    _socket: socket.socket | None = None
    _smtp: asyncio.base_events.Server | None = None
    _syslog: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slack/{tail:.*}", self._webhook("slack"))
        app.router.add_post("/pagerduty/{tail:.*}", self._webhook("pagerduty"))
        app.router.add_post("/shuffle/{tail:.*}", self._webhook("shuffle"))
        for service in CHAT_SERVICES:
            app.router.add_post(f"/{service}/{{tail:.*}}", self._webhook(service))
        app.router.add_post("/opsgenie/{tail:.*}", self._webhook("opsgenie"))
        app.router.add_post("/thehive/{tail:.*}", self._webhook("thehive"))
        app.router.add_get("/virustotal/api/v3/files/{hash}", self._virustotal)
        app.router.add_get("/maltiverse/{kind}/{value:.*}", self._maltiverse)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

        # aiosmtpd narrates every connection at INFO; the demo shows what
        # arrived instead.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()
        self._smtp = await loop.create_server(
            lambda: SMTP(_MailBox(self), hostname="smtp.demo.example"), "127.0.0.1", 0
        )
        self.smtp_url = f"smtp://127.0.0.1:{self._smtp.sockets[0].getsockname()[1]}"
        self._syslog, _ = await loop.create_datagram_endpoint(
            lambda: _SyslogReceiver(self), local_addr=("127.0.0.1", 0)
        )
        self.syslog_url = f"udp://127.0.0.1:{self._syslog.get_extra_info('sockname')[1]}"

        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.socket_path))
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_datagram)
        self._socket = sock

    def _on_datagram(self) -> None:
        assert self._socket is not None
        while True:
            try:
                self.events.append(self._socket.recv(65536))
            except BlockingIOError:
                return

    async def stop(self) -> None:
        if self._syslog is not None:
            self._syslog.close()
        if self._smtp is not None:
            self._smtp.close()
            await self._smtp.wait_closed()
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self.socket_path.unlink(missing_ok=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def _webhook(self, service: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            body = orjson.loads(await request.read())
            self.requests.append(Received(service, request.path, body))
            if service == "pagerduty":
                answer = {"status": "success", "message": "Event processed"}
                return web.json_response(answer, status=202)
            if service == "jira":
                return web.json_response({"id": "10001", "key": "SEC-1"}, status=201)
            if service == "telegram":
                return web.json_response({"ok": True, "result": {"message_id": 1}})
            if service == "discord":
                return web.Response(status=204)
            if service == "opsgenie":
                answer = {"result": "Request will be processed", "requestId": "demo"}
                return web.json_response(answer, status=202)
            if service == "thehive":
                return web.json_response({"_id": f"~{len(self.requests)}"}, status=201)
            return web.Response(text="ok")

        return handle

    async def _virustotal(self, request: web.Request) -> web.Response:
        digest = request.match_info["hash"]
        self.requests.append(Received("virustotal", request.path, None))
        if digest.lower() != _EICAR_MD5:
            return web.json_response({"error": {"code": "NotFoundError"}}, status=404)
        stats = {"malicious": 61, "suspicious": 0, "undetected": 8, "harmless": 0}
        return web.json_response(
            {
                "data": {
                    "id": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                    "type": "file",
                    "attributes": {
                        "md5": _EICAR_MD5,
                        "sha1": "3395856ce81f2b7382dee72602f798b642f14140",
                        "last_analysis_date": 1764230400,
                        "last_analysis_stats": stats,
                    },
                }
            }
        )

    async def _maltiverse(self, request: web.Request) -> web.Response:
        kind, value = request.match_info["kind"], request.match_info["value"]
        self.requests.append(Received("maltiverse", request.path, None))
        if kind == "ip" and value == "185.220.101.45":
            return web.json_response(
                {
                    "ip_addr": value,
                    "type": "ip",
                    "classification": "malicious",
                    "creation_time": "2026-10-01 08:00:00",
                    "modification_time": "2026-11-26 21:14:03",
                    "blacklist": [
                        {"description": "SQL injection scanner", "source": "Demo Honeypot"},
                        {"description": "Web attacker", "source": "Demo Feed"},
                    ],
                }
            )
        return web.json_response({}, status=404)


class _MailBox:
    """aiosmtpd's handler: every message accepted is recorded as received."""

    def __init__(self, receivers: DemoReceivers) -> None:
        self._receivers = receivers

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self._receivers.requests.append(Received("email", "smtp", content))
        return "250 OK"


class _SyslogReceiver(asyncio.DatagramProtocol):
    def __init__(self, receivers: DemoReceivers) -> None:
        self._receivers = receivers

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._receivers.requests.append(Received("syslog", "udp", data))
