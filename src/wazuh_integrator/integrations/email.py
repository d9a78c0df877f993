"""Email: one message per alert over SMTP, with a plain-text and an HTML part.

Messages sent close together share one connection (see ``smtp_connections``).

``hook_url`` ``smtp://host:25`` upgrades with STARTTLS when the server offers
it (``"require_tls": true`` insists on it); ``smtps://host:465`` speaks TLS
from the first byte. ``api_key`` is the SMTP password: login happens only
when it is set, and only over TLS.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiosmtplib

from wazuh_integrator.compat import TIMEOUT_ERRORS
from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import DeliveryError, Permanent, Timeout, Transient
from wazuh_integrator.integrations.alert_fields import (
    alert_time,
    iso_datetime,
)
from wazuh_integrator.integrations.base import Alert, Integration, IntegrationContext
from wazuh_integrator.integrations.flood_marks import digest_of
from wazuh_integrator.integrations.options import OptionsError, OptionsReader
from wazuh_integrator.integrations.smtp_connections import SmtpConnections
from wazuh_integrator.integrations.templated import OutputTemplates
from wazuh_integrator.secret import scrub
from wazuh_integrator.templating import TemplateFormat
from wazuh_integrator.tls import TlsError, ssl_context

__all__ = [
    "EmailIntegration",
    "EmailOptions",
    "EmailParts",
    "SmtpServer",
    "build_email",
    "classify_smtp_error",
    "email_html",
    "email_subject",
    "email_text",
]

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_MESSAGE_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")
# What a conversation with the server may raise (time-outs are two classes on Python 3.10).
_SMTP_FAILURES: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPException,
    OSError,
    *TIMEOUT_ERRORS,
)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise OptionsError("hook_url: not a URL (write smtp://host:25)") from None
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise OptionsError("hook_url: must be smtp://host[:port] or smtps://host[:port]")
        if parts.username or parts.password:
            raise OptionsError(
                "hook_url: no credentials in the URL: the password is <api_key>, the user"
                ' "username" in <options>'
            )
        if parts.path not in ("", "/") or parts.query:
            raise OptionsError("hook_url: an SMTP server address has no path or query")
        return cls(parts.hostname, port or _DEFAULT_PORTS[parts.scheme], parts.scheme == "smtps")


def _address(text: str, key: str) -> str:
    """The bare address of ``Name <user@host>`` or ``user@host``."""
    found = getaddresses([text])
    if len(found) > 1:
        raise OptionsError(f'options: "{key}": {text!r} holds several addresses: list them')
    _, address = parseaddr(text)
    if "@" not in address or any(char.isspace() for char in address):
        raise OptionsError(f'options: "{key}": {text!r} is not an email address')
    return address


@dataclass(frozen=True)
class EmailOptions:
    sender: str  # the From header as written ("Wazuh <wazuh@example.com>")
    recipients: tuple[str, ...]
    username: str | None = None
    require_tls: bool = False

    @classmethod
    def read(cls, options: Mapping[str, Any] | None) -> EmailOptions:
        reader = OptionsReader(options)
        read = cls(
            sender=reader.required_text("from"),
            recipients=reader.text_list("to", required=True),
            username=reader.text("username"),
            require_tls=reader.flag("require_tls"),
        )
        reader.reject_unknown()
        _address(read.sender, "from")
        for recipient in read.recipients:
            _address(recipient, "to")
        return read

    @property
    def envelope_sender(self) -> str:
        return _address(self.sender, "from")

    @property
    def envelope_recipients(self) -> list[str]:
        return [_address(recipient, "to") for recipient in self.recipients]


# -- what is sent: pure functions of the alert ------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


# The shipped templates, which integrator.toml's subject_template, template
# and html_template replace (docs/integrations/email.md).
SUBJECT_TEMPLATE = "email-subject.txt.j2"
TEXT_TEMPLATE = "email.txt.j2"
HTML_TEMPLATE = "email.html.j2"
TEMPLATE_FORMATS: Mapping[str, TemplateFormat] = {
    "subject_template": "text",
    "template": "text",
    "html_template": "html",
}


@dataclass(frozen=True)
class EmailParts:
    """What a message says: its subject and its two parts."""

    subject: str
    text: str
    html: str

    @classmethod
    def of(cls, subject: str, text: str, html: str) -> EmailParts:
        # A header is one line, whatever a template wrote; parts end with a newline.
        return cls(
            _one_line(subject),
            text if text.endswith("\n") else text + "\n",
            html if html.endswith("\n") else html + "\n",
        )


def _render_default(name: str, alert: Alert) -> str:
    from wazuh_integrator.templating import default_template

    return default_template(name).render(alert=alert, options={}, integration="email")


def email_subject(alert: Alert) -> str:
    """``[Wazuh] Level 10, rule 5712: <description> (agent web01)``, one line;
    ``[Wazuh] Digest: 500 alerts for rule.id=5712`` for a floods digest
    (the shipped subject template)."""
    return EmailParts.of(_render_default(SUBJECT_TEMPLATE, alert), "", "").subject


def email_text(alert: Alert) -> str:
    """The plain-text part (the shipped template): the subject, the alert's
    fields, its full log; for a digest, a line per listed alert."""
    return EmailParts.of("", _render_default(TEXT_TEMPLATE, alert), "").text


def email_html(alert: Alert) -> str:
    """The HTML part (the shipped template): the same, every value escaped."""
    return EmailParts.of("", "", _render_default(HTML_TEMPLATE, alert)).html


def _message_id(alert: Alert, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "wazuh-integrator"
    header = digest_of(alert)
    if header is not None:
        # One digest of a group, the same on every retry of it.
        name = f"{header.get('integration')}\0{header.get('group')}\0{alert.get('first')}"
        return f"<wazuh.digest.{hashlib.sha256(name.encode()).hexdigest()[:32]}@{domain}>"
    alert_id = alert.get("id")
    if alert_id is None:
        return make_msgid(domain=domain)
    # The same on every retry, so that a mail client shows a repeat as one message.
    return f"<wazuh.{_MESSAGE_ID_UNSAFE.sub('-', str(alert_id))}@{domain}>"


def build_email(
    alert: Alert, options: EmailOptions, parts: EmailParts | None = None
) -> EmailMessage:
    """The whole message: headers, a text part and an HTML alternative
    (``parts``, the shipped templates' by default)."""
    if parts is None:
        parts = EmailParts(email_subject(alert), email_text(alert), email_html(alert))
    message = EmailMessage()
    message["Subject"] = parts.subject
    message["From"] = options.sender
    message["To"] = ", ".join(options.recipients)
    is_digest = digest_of(alert) is not None
    when = iso_datetime(alert.get("last")) if is_digest else alert_time(alert)
    if when is not None:
        message["Date"] = format_datetime(when)
    message["Message-ID"] = _message_id(alert, options.envelope_sender)
    message.set_content(parts.text)
    message.add_alternative(parts.html, subtype="html")
    return message


# -- how it is sent -----------------------------------------------------------


def _smtp_code_error(code: int, text: str) -> DeliveryError:
    if 400 <= code <= 499:
        return Transient(text, status=code)
    if 500 <= code <= 599:
        return Permanent(text, status=code)
    return Transient(text)  # no reply code: the conversation broke off


def classify_smtp_error(exc: BaseException) -> DeliveryError:
    """The outcome of an SMTP failure: a 4xx reply is worth retrying, a 5xx is not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        text = "every recipient refused: " + "; ".join(
            f"{r.recipient}: {r.code} {_one_line(r.message)}" for r in refused
        )
        codes = [r.code for r in refused]
        code = next((c for c in codes if 400 <= c <= 499), codes[0] if codes else 0)
        return _smtp_code_error(code, text)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _smtp_code_error(exc.code, f"SMTP {exc.code}: {_one_line(exc.message)}")
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, *TIMEOUT_ERRORS)):
        return Timeout(f"timed out: {_one_line(str(exc))}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected | OSError):
        return Transient(f"connection failed: {type(exc).__name__}: {_one_line(str(exc))}")
    # Whatever else aiosmtplib refuses (no STARTTLS, no AUTH, an address it
    # cannot encode) fails the same way next time.
    return Permanent(f"{type(exc).__name__}: {_one_line(str(exc))}")


class EmailIntegration(Integration):
    name = "email"
    uses_http = False
    required = ("hook_url",)
    default_concurrency = 4

    template_formats: ClassVar[Mapping[str, TemplateFormat]] = TEMPLATE_FORMATS

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self._templates = OutputTemplates(
            TEMPLATE_FORMATS,
            context.settings.templates,
            context.home,
            defaults=(SUBJECT_TEMPLATE, TEXT_TEMPLATE, HTML_TEMPLATE),
        )
        self._options = EmailOptions.read(block.options)
        self._server = SmtpServer.parse(block.hook_url.reveal() if block.hook_url else "")
        self._tls: ssl.SSLContext | None = None
        self._connections = SmtpConnections(self._new_client)

    def templates_changed(self) -> list[str]:
        return self._templates.changed_on_disk()

    def _tls_context(self) -> ssl.SSLContext | None:
        """The ``ca_file``, ``client_cert`` and ``client_key`` of integrator.toml
        (checked at start), or None for the system's CAs. Made once per block."""
        if self._tls is None:
            settings = self.context.settings
            try:
                self._tls = (
                    ssl_context(settings.ca_file, settings.client_cert, settings.client_key)
                    or ssl.create_default_context()
                )
            except TlsError as exc:
                raise Permanent(str(exc)) from None
        return self._tls

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        try:
            EmailOptions.read(block.options)
            SmtpServer.parse(block.hook_url.reveal() if block.hook_url else "")
        except OptionsError as exc:
            return str(exc)
        return None

    def _parts(self, alert: Alert) -> EmailParts:
        """The subject and parts through the block's templates; a template
        that fails on ``alert`` is Permanent (a dead letter naming its line)."""

        def render(role: str, default: str) -> str:
            return self._templates.render(
                role, default, alert=alert, options=self.block.options, integration=self.name
            )

        return EmailParts.of(
            render("subject_template", SUBJECT_TEMPLATE),
            render("template", TEXT_TEMPLATE),
            render("html_template", HTML_TEMPLATE),
        )

    def preview(self, alert: Alert) -> dict[str, Any]:
        parts = self._parts(alert)
        return {
            "from": self._options.sender,
            "to": list(self._options.recipients),
            "subject": parts.subject,
            "text": parts.text,
            "html": parts.html,
        }

    def _new_client(self) -> aiosmtplib.SMTP:
        options, server = self._options, self._server
        password = self.block.api_key.reveal() if self.block.api_key else None
        return aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.implicit_tls,
            # None: upgrade when offered. A password is only ever sent encrypted.
            start_tls=(
                None if server.implicit_tls else (True if options.require_tls or password else None)
            ),
            tls_context=self._tls_context(),
            username=(options.username or options.envelope_sender) if password else None,
            password=password,
            timeout=float(self.block.timeout_s),
        )

    async def send(self, alert: Alert) -> None:
        options, server = self._options, self._server
        message = build_email(alert, options, self._parts(alert))
        try:
            await self._connections.send(
                message, options.envelope_sender, options.envelope_recipients
            )
        except _SMTP_FAILURES as exc:
            error = classify_smtp_error(exc)
            if "STARTTLS extension not supported" in str(exc):
                why = "require_tls is set" if options.require_tls else "a password is set"
                error = Permanent(f"the server offers no STARTTLS, and {why}: not sending")
            text = scrub(f"{server.host}:{server.port}: {error}", self.block.secrets)
            raise (type(error)(text, status=error.status)) from None

    async def close(self) -> None:
        await self._connections.close()
