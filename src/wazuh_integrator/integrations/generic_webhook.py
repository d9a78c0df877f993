"""``webhook``: any HTTP endpoint, with the body its ``template`` writes.

``<options>`` choose the method (``POST``, ``PUT``, ``PATCH``), extra
``headers``, the ``body`` encoding (``json``, the default, or ``form``) and the
authentication: with ``<api_key>``, a bearer token, or basic authentication
(``<api_key>`` the password) when ``"username"`` is set; ``"auth": "none"``
sends no credentials. Templates never see ``<api_key>``.

The template renders JSON text: sent as is for ``json``; for ``form`` it must
be an object, whose values are sent URL-encoded (objects and lists as JSON
text). Without a template the body is the whole alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

import orjson

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import Alert, options_problem
from wazuh_integrator.integrations.webhook import (
    JSON_CONTENT_TYPE,
    Body,
    WebhookIntegration,
    basic_auth,
)

__all__ = ["GenericWebhookIntegration", "form_encode"]

DEFAULT_TEMPLATE = "webhook.json.j2"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
METHODS = ("POST", "PUT", "PATCH")
ENCODINGS = ("json", "form")
AUTH_SCHEMES = ("bearer", "basic", "none")
# Headers the request sets itself, from other options.
_RESERVED_HEADERS = frozenset({"content-length", "host", "transfer-encoding"})


def form_encode(value: Any) -> bytes:
    """``value`` (a JSON object) as ``application/x-www-form-urlencoded``."""
    if not isinstance(value, Mapping):
        raise Permanent(f"a form body must be a JSON object, the template wrote {_kind(value)}")
    fields = []
    for key, item in value.items():
        if isinstance(item, str):
            text = item
        elif item is None:
            text = ""
        else:  # numbers, true/false, objects and lists as JSON text
            text = orjson.dumps(item).decode()
        fields.append((str(key), text))
    return urlencode(fields).encode("ascii")


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _headers_problem(headers: Any) -> str | None:
    if not isinstance(headers, Mapping):
        return '"headers" must be an object of header names and values'
    for name, value in headers.items():
        if not isinstance(value, str) or not name.strip() or any(c in name for c in " :\r\n"):
            return f'"headers": {name!r} must be a header name with a string value'
        if "\r" in value or "\n" in value:
            return f'"headers": the value of {name!r} holds a line break'
        if name.lower() in _RESERVED_HEADERS:
            return f'"headers": {name!r} is set by the request itself'
    return None


def _choice(options: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = options.get(key)
    if value is not None and (
        not isinstance(value, str) or value.lower() not in {a.lower() for a in allowed}
    ):
        return f'"{key}" must be one of {", ".join(allowed)} (not {value!r})'
    return None


def _options_problem(options: Mapping[str, Any]) -> str | None:
    problem = (
        _choice(options, "method", METHODS)
        or _choice(options, "body", ENCODINGS)
        or _choice(options, "auth", AUTH_SCHEMES)
    )
    if problem:
        return problem
    if "headers" in options and (problem := _headers_problem(options["headers"])):
        return problem
    username = options.get("username")
    if username is not None and (not isinstance(username, str) or ":" in username):
        return '"username" must be a string without ":"'
    if str(options.get("auth", "")).lower() == "basic" and username is None:
        return '"auth": "basic" needs a "username" (the password is <api_key>)'
    return None


class GenericWebhookIntegration(WebhookIntegration):
    name = "webhook"
    template_formats = {"template": "json"}
    default_templates = (DEFAULT_TEMPLATE,)
    required: ClassVar[tuple[str, ...]] = ("hook_url",)

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        return options_problem(_options_problem(block.options or {}))

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.block.options or {}

    def build_body(self, alert: Alert) -> Body:
        if str(self._options.get("body", "json")).lower() == "form":
            value = self.render_json("template", DEFAULT_TEMPLATE, alert)
            return Body(form_encode(value), FORM_CONTENT_TYPE, value)
        data = self.render_json_body("template", DEFAULT_TEMPLATE, alert)
        return Body(data, JSON_CONTENT_TYPE)

    def preview(self, alert: Alert) -> Any:
        return self.build_body(alert).shown

    def request_method(self) -> str:
        return str(self._options.get("method", "POST")).upper()

    def extra_headers(self) -> Mapping[str, str]:
        return dict(self._options.get("headers") or {})

    def auth_header(self) -> str | None:
        if self.block.api_key is None:
            return None
        username = self._options.get("username")
        scheme = str(self._options.get("auth", "basic" if username else "bearer")).lower()
        if scheme == "basic":
            return basic_auth(str(username), self.block.api_key.reveal())
        if scheme == "bearer":
            return f"Bearer {self.block.api_key.reveal()}"
        return None
