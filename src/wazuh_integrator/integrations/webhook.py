"""What every output that sends one HTTP request per alert shares.

An output says what it sends (:meth:`WebhookIntegration.preview`, or
:meth:`WebhookIntegration.build_body` for a body that is not JSON) and, when
it needs to, where (:meth:`~WebhookIntegration.target_url`) and with which
credentials (:meth:`~WebhookIntegration.auth_header`). This base renders its
templates, adds the headers, sends, and turns a template that fails on an
alert into a :class:`~wazuh_integrator.errors.Permanent` error naming the
template's file and line, so that the alert is dead-lettered with the reason.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

import orjson

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import (
    WEBHOOK_CONCURRENCY,
    Alert,
    Integration,
    IntegrationContext,
)
from wazuh_integrator.integrations.http import USER_AGENT, send_body
from wazuh_integrator.integrations.templated import OutputTemplates
from wazuh_integrator.templating import TemplateFormat

if TYPE_CHECKING:
    from wazuh_integrator.templating import Template

__all__ = ["Body", "WebhookIntegration", "basic_auth", "json_body"]

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"


_READ_FROM_DATA: Final = object()


@dataclass(frozen=True)
class Body:
    """One request's body: the bytes sent, their type, and the value they
    hold, when it was at hand (else :attr:`shown` reads it from the JSON)."""

    data: bytes
    content_type: str
    value: Any = _READ_FROM_DATA

    @property
    def shown(self) -> Any:
        """What ``test`` shows: the value sent."""
        if self.value is _READ_FROM_DATA:
            return orjson.loads(self.data)
        return self.value


def json_body(value: Any) -> Body:
    """``value`` (a JSON-able object) as a JSON request body."""
    try:
        data = orjson.dumps(value, default=_mapping_as_dict)
    except TypeError as exc:
        raise Permanent(f"payload is not JSON: {exc}") from None
    return Body(data, JSON_CONTENT_TYPE, value)


def _mapping_as_dict(value: object) -> object:
    # Options come from the config reader as read-only mappings.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value for HTTP basic authentication."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class WebhookIntegration(Integration):
    """Sends :meth:`build_body` to :meth:`target_url`; an alert whose body is
    None (skipped by the output) sends nothing.

    ``template_formats`` names the templates an output accepts in
    integrator.toml (``template``, ``summary_template``...) and the format each
    is rendered in; a configured one replaces the output's default.
    """

    required: ClassVar[tuple[str, ...]] = ("hook_url",)
    default_concurrency: ClassVar[int] = WEBHOOK_CONCURRENCY
    template_formats: ClassVar[Mapping[str, TemplateFormat]] = {}
    # The shipped templates the output renders when none is configured,
    # compiled at start-up (Slack builds its payload in code: none).
    default_templates: ClassVar[tuple[str, ...]] = ()

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self._templates = OutputTemplates(
            self.template_formats,
            context.settings.templates,
            context.home,
            defaults=self.default_templates,
        )
        self._headers_cache: dict[str, str] | None = None
        # The block does not change while this output lives; worked out per
        # alert, its URL's parts cost a few µs of each request.
        self._secrets = block.secrets

    # -- what an output says -----------------------------------------------

    def preview(self, alert: Alert) -> Any | None:
        """The JSON body for ``alert`` (None: skip it). Outputs whose body is
        not JSON override :meth:`build_body` instead."""
        return None

    def build_body(self, alert: Alert) -> Body | None:
        body = self.preview(alert)
        return None if body is None else json_body(body)

    def target_url(self) -> str:
        """Where the request goes: ``<hook_url>`` unless the output says otherwise."""
        if self.block.hook_url is None:
            raise Permanent(f"{self.block.name}: no <hook_url> configured")
        return self.block.hook_url.reveal()

    def auth_header(self) -> str | None:
        """The ``Authorization`` value, or None for services whose URL is the credential."""
        return None

    def extra_headers(self) -> Mapping[str, str]:
        return {}

    def request_method(self) -> str:
        return "POST"

    def retry_after_in_body(self, body: bytes) -> float | None:
        """The delay a rate-limit answer without ``Retry-After`` names in its
        body (the start of it), for services that say it there; None: none."""
        return None

    # -- templates -----------------------------------------------------------

    def template(self, role: str, default: str) -> Template:
        """The template configured for ``role``, else the shipped ``default``."""
        return self._templates.template(role, default)

    def has_template(self, role: str) -> bool:
        return self._templates.configured(role)

    def templates_changed(self) -> list[str]:
        return self._templates.changed_on_disk()

    def render(self, role: str, default: str, alert: Alert) -> str:
        """``alert`` through the ``role`` template; a failure is Permanent."""
        return self._templates.render(
            role, default, alert=alert, options=self.block.options, integration=self.block.name
        )

    def render_json(self, role: str, default: str, alert: Alert) -> Any:
        """``alert`` through a template that writes JSON: the value it wrote."""
        return self.render_json_text(role, default, alert)[1]

    def render_json_body(self, role: str, default: str, alert: Alert) -> bytes:
        """The JSON a template wrote, as a request body; not JSON is Permanent."""
        return self._templates.render_json_body(
            role, default, alert=alert, options=self.block.options, integration=self.block.name
        ).encode()

    def render_json_text(self, role: str, default: str, alert: Alert) -> tuple[str, Any]:
        """The JSON text a template wrote, and its value; not JSON is Permanent."""
        return self._templates.render_json_text(
            role, default, alert=alert, options=self.block.options, integration=self.block.name
        )

    # -- sending ---------------------------------------------------------------

    def _headers(self, content_type: str) -> dict[str, str]:
        if self._headers_cache is None:
            headers = {"User-Agent": USER_AGENT, **self.extra_headers()}
            auth = self.auth_header()
            if auth is not None:
                headers["Authorization"] = auth
            self._headers_cache = headers
        if "Content-Type" in self._headers_cache:
            return self._headers_cache
        return {"Content-Type": content_type, **self._headers_cache}

    async def send(self, alert: Alert) -> None:
        body = self.build_body(alert)
        if body is None:
            return
        await send_body(
            self.context.session(),
            self.target_url(),
            body.data,
            timeout_s=self.block.timeout_s,
            headers=self._headers(body.content_type),
            method=self.request_method(),
            secrets=self._secrets,
            retry_after_in_body=self.retry_after_in_body,
        )
