"""Syslog: each alert as one RFC 5424 message, over UDP (RFC 5426), TCP with
octet counting (RFC 6587) or TLS (RFC 5425), to ``hook_url``
``udp://host:514``, ``tcp://host:514`` or ``tls://host:6514``."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from wazuh_integrator.classify import classify_exception
from wazuh_integrator.compat import TIMEOUT_ERRORS
from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.alert_fields import (
    agent_name,
    alert_time,
    dig,
    digest_alerts,
    iso_datetime,
    rule_level,
)
from wazuh_integrator.integrations.base import Alert, Integration, IntegrationContext
from wazuh_integrator.integrations.flood_marks import digest_of
from wazuh_integrator.integrations.options import OptionsError, OptionsReader
from wazuh_integrator.tls import TlsError, ssl_context

__all__ = [
    "FACILITIES",
    "SyslogIntegration",
    "SyslogOptions",
    "SyslogTarget",
    "build_syslog_message",
    "frame",
    "syslog_severity",
]

DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13,
    "console": 14, "solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18,
    "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
# 32473 is the Private Enterprise Number that RFC 5612 reserves for examples
# and documentation: an SD-ID needs one, and Wazuh has none of its own.
DEFAULT_SD_ID = "wazuh@32473"
# What talking to the receiver may raise (time-outs are two classes on Python 3.10).
_CONNECTION_FAILURES: tuple[type[BaseException], ...] = (OSError, ssl.SSLError, *TIMEOUT_ERRORS)
# The largest payload of one IPv4 UDP datagram.
MAX_UDP_BYTES = 65507
_NIL = "-"
# RFC 5424 header fields: PRINTUSASCII (33-126), at most this many characters.
_HOSTNAME_CHARS, _APP_NAME_CHARS, _MSGID_CHARS, _PARAM_NAME_CHARS = 255, 48, 32, 32
# What the structured data carries, in order: (PARAM-NAME, alert field).
_SD_FIELDS = (
    ("alert_id", "id"),
    ("rule_id", "rule.id"),
    ("level", "rule.level"),
    ("description", "rule.description"),
    ("groups", "rule.groups"),
    ("agent_id", "agent.id"),
    ("agent_name", "agent.name"),
    ("agent_ip", "agent.ip"),
    ("manager", "manager.name"),
    ("location", "location"),
    ("srcip", "data.srcip"),
    ("dstip", "data.dstip"),
    ("srcuser", "data.srcuser"),
    ("dstuser", "data.dstuser"),
    ("full_log", "full_log"),
    ("suppressed_count", "suppressed.count"),
    ("suppressed_since", "suppressed.since"),
)
# A floods digest: (PARAM-NAME, field of the digest document).
_DIGEST_SD_FIELDS = (
    ("digest_group", "digest.group"),
    ("count", "count"),
    ("listed", "listed"),
    ("first", "first"),
    ("last", "last"),
    ("rule_ids", "rule_ids"),
    ("agents", "agents"),
)
DIGEST_MSGID = "digest"


def syslog_severity(level: int) -> int:
    """The syslog severity (2 critical .. 6 informational) for a rule level,
    in the same bands as PagerDuty's."""
    if level >= 13:
        return 2
    if level >= 10:
        return 3
    if level >= 7:
        return 4
    if level >= 4:
        return 5
    return 6


@dataclass(frozen=True)
class SyslogTarget:
    transport: str  # "udp", "tcp" or "tls"
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> SyslogTarget:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise OptionsError(
                "hook_url: not a URL (write udp://, tcp:// or tls://host:port)"
            ) from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise OptionsError("hook_url: must be udp://, tcp:// or tls://host:port")
        if parts.path not in ("", "/") or parts.query:
            raise OptionsError("hook_url: a syslog address has no path or query")
        return cls(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme])

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


@dataclass(frozen=True)
class SyslogOptions:
    """What ``<options>`` may set; every key optional."""

    format: str = "sd"  # "sd": fields as structured data; "json": the alert as the MSG
    facility: int = FACILITIES["local0"]
    app_name: str = "wazuh"
    hostname: str | None = None  # None: the alert's manager
    sd_id: str = DEFAULT_SD_ID

    @classmethod
    def read(cls, options: Mapping[str, Any] | None) -> SyslogOptions:
        reader = OptionsReader(options)
        facility_name = reader.choice("facility", FACILITIES, default="local0")
        read = cls(
            format=reader.choice("format", ("sd", "json"), default="sd"),
            facility=FACILITIES[facility_name],
            app_name=reader.text("app_name", default="wazuh") or "wazuh",
            hostname=reader.text("hostname"),
            sd_id=reader.text("sd_id", default=DEFAULT_SD_ID) or DEFAULT_SD_ID,
        )
        reader.reject_unknown()
        if not _is_sd_name(read.sd_id) or "@" not in read.sd_id:
            raise OptionsError('options: "sd_id" must look like name@enterprise-number')
        return read


def _is_sd_name(name: str) -> bool:
    return 0 < len(name) <= _PARAM_NAME_CHARS and all(
        33 <= ord(char) <= 126 and char not in '= ]"' for char in name
    )


def _header_field(value: Any, limit: int) -> str:
    """PRINTUSASCII only, as the header requires; NILVALUE when empty."""
    text = "".join(char if 33 <= ord(char) <= 126 else "_" for char in str(value or ""))
    return text[:limit] or _NIL


def _one_line(text: str) -> str:
    # One alert, one line: a receiver that splits on newlines must not see two.
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _param_value(value: Any) -> str:
    if isinstance(value, list):
        value = ",".join(str(item) for item in value)
    text = _one_line(str(value))
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _structured_data(
    alert: Mapping[str, Any], sd_id: str, fields: tuple[tuple[str, str], ...] = _SD_FIELDS
) -> str:
    params = [
        f'{name}="{_param_value(value)}"'
        for name, field in fields
        if (value := dig(alert, field)) is not None and value != "" and value != []
    ]
    return f"[{' '.join([sd_id, *params])}]"


def _unique(values: list[Any]) -> list[str]:
    return list(dict.fromkeys(str(value) for value in values if value is not None))


def _digest_message(document: Alert, options: SyslogOptions) -> str:
    """One message for a floods digest: the group, how many alerts, from when
    to when, and which rules and agents the listed ones came from."""
    header = digest_of(document) or {}
    alerts = digest_alerts(document)
    priority = options.facility * 8 + syslog_severity(
        max((rule_level(alert) for alert in alerts), default=0)
    )
    when = iso_datetime(document.get("last"))
    first = alerts[0] if alerts else {}
    hostname = options.hostname or dig(first, "manager.name") or agent_name(first)
    head = " ".join(
        (
            f"<{priority}>1",
            when.isoformat(timespec="milliseconds") if when else _NIL,
            _header_field(hostname, _HOSTNAME_CHARS),
            _header_field(options.app_name, _APP_NAME_CHARS),
            _NIL,
            DIGEST_MSGID,
        )
    )
    count = document.get("count", len(alerts))
    text = _one_line(f"{count} Wazuh alerts for {header.get('group', '?')}")
    if options.format == "json":
        return f"{head} {_NIL} {orjson.dumps(document).decode()}"
    summary = {
        "digest": header,
        "count": count,
        "listed": len(alerts),
        "first": document.get("first"),
        "last": document.get("last"),
        "rule_ids": _unique([dig(alert, "rule.id") for alert in alerts]),
        "agents": _unique([agent_name(alert) for alert in alerts]),
    }
    return f"{head} {_structured_data(summary, options.sd_id, _DIGEST_SD_FIELDS)} {text}"


def build_syslog_message(alert: Alert, options: SyslogOptions) -> str:
    """One RFC 5424 message for ``alert``, without transport framing.

    ``PRI`` from the facility and the level's severity; ``TIMESTAMP`` the
    alert's; ``HOSTNAME`` the manager that raised it; ``MSGID`` the rule id.
    In ``sd`` format the fields are structured data and the MSG is the rule
    description; in ``json`` format there is no structured data and the MSG
    is the whole alert as JSON. A floods digest is one message (``MSGID``
    ``digest``) summing up its alerts.
    """
    if digest_of(alert) is not None:
        return _digest_message(alert, options)
    rule: Mapping[str, Any] = alert.get("rule") or {}
    priority = options.facility * 8 + syslog_severity(rule_level(alert))
    when = alert_time(alert)
    timestamp = when.isoformat(timespec="milliseconds") if when else _NIL
    hostname = options.hostname or dig(alert, "manager.name") or agent_name(alert)
    header = " ".join(
        (
            f"<{priority}>1",
            timestamp,
            _header_field(hostname, _HOSTNAME_CHARS),
            _header_field(options.app_name, _APP_NAME_CHARS),
            _NIL,
            _header_field(rule.get("id"), _MSGID_CHARS),
        )
    )
    if options.format == "json":
        return f"{header} {_NIL} {orjson.dumps(alert).decode()}"
    message = _one_line(str(rule.get("description", "N/A")))
    return f"{header} {_structured_data(alert, options.sd_id)} {message}"


def frame(message: str, transport: str) -> bytes:
    """The bytes sent for one message: the datagram as is over UDP, octet
    counting (``LENGTH SP MESSAGE``) over TCP and TLS."""
    data = message.encode()
    if transport == "udp":
        return data
    return b"%d %s" % (len(data), data)


class _Connection:
    """One kept-open connection to the receiver, opened again when it is lost."""

    def __init__(self, target: SyslogTarget, tls: ssl.SSLContext | None, timeout_s: float) -> None:
        self._target = target
        self._tls = tls
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._datagrams: asyncio.DatagramTransport | None = None

    async def send(self, data: bytes) -> None:
        # One frame at a time: frames must not interleave on the stream, and
        # a reconnection must happen once, not once per waiting sender.
        async with self._lock:
            try:
                if self._target.transport == "udp":
                    (await self._datagram_transport()).sendto(data)
                    return
                writer = await self._stream()
                writer.write(data)
                await asyncio.wait_for(writer.drain(), self._timeout_s)
            except _CONNECTION_FAILURES as exc:
                await self.close()
                error = classify_exception(exc)
                raise type(error)(f"{self._target}: {error}") from None

    async def _datagram_transport(self) -> asyncio.DatagramTransport:
        if self._datagrams is None or self._datagrams.is_closing():
            loop = asyncio.get_running_loop()
            self._datagrams, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(self._target.host, self._target.port)
            )
        return self._datagrams

    async def _stream(self) -> asyncio.StreamWriter:
        reader, writer = self._reader, self._writer
        # A receiver that closed its end has sent EOF: a write now would be
        # lost, so open a new connection first.
        if reader is None or writer is None or writer.is_closing() or reader.at_eof():
            await self.close()
            opened_reader, opened_writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self._target.host,
                    self._target.port,
                    ssl=self._tls,
                    server_hostname=self._target.host if self._tls else None,
                ),
                self._timeout_s,
            )
            self._reader, self._writer = opened_reader, opened_writer
            return opened_writer
        return writer

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            # Already gone, or not answering: nothing more to release.
            with contextlib.suppress(*_CONNECTION_FAILURES):
                await asyncio.wait_for(writer.wait_closed(), self._timeout_s)
        if self._datagrams is not None:
            self._datagrams.close()
            self._datagrams = None


class SyslogIntegration(Integration):
    name = "syslog"
    uses_http = False
    required = ("hook_url",)

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self._options = SyslogOptions.read(block.options)
        self._target = SyslogTarget.parse(block.hook_url.reveal() if block.hook_url else "")
        self._connection: _Connection | None = None

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        try:
            SyslogOptions.read(block.options)
            SyslogTarget.parse(block.hook_url.reveal() if block.hook_url else "")
        except OptionsError as exc:
            return str(exc)
        return None

    def preview(self, alert: Alert) -> str:
        return build_syslog_message(alert, self._options)

    def _open(self) -> _Connection:
        if self._connection is None:
            tls = None
            if self._target.transport == "tls":
                settings = self.context.settings
                try:
                    tls = (
                        ssl_context(settings.ca_file, settings.client_cert, settings.client_key)
                        or ssl.create_default_context()
                    )
                except TlsError as exc:
                    raise Permanent(str(exc)) from None
            self._connection = _Connection(self._target, tls, float(self.block.timeout_s))
        return self._connection

    async def send(self, alert: Alert) -> None:
        data = frame(build_syslog_message(alert, self._options), self._target.transport)
        if self._target.transport == "udp" and len(data) > MAX_UDP_BYTES:
            raise Permanent(
                f"a message of {len(data)} bytes does not fit in a UDP datagram:"
                " use tcp:// or tls://"
            )
        await self._open().send(data)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
