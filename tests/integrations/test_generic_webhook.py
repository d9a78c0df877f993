"""The generic webhook: method, headers, bearer or basic auth, and a body from
a template sent as JSON (as written) or as a form."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from outputs_support import ALERT, OUTPUTS, WEBHOOK_KEY

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.generic_webhook import GenericWebhookIntegration, form_encode

CASE = OUTPUTS["webhook"]
TEMPLATE = """{
  "summary": "{{ alert.rule.description }}",
  "level": {{ alert.rule.level }},
  "severity": "{{ alert | level_name }}",
  "agent": {{ alert.agent | tojson }}
}"""


def with_template(context: IntegrationContext, tmp_path: Path, text: str) -> None:
    (tmp_path / "body.json.j2").write_text(text)
    context.settings = IntegrationSettings(templates={"template": Path("body.json.j2")})


async def send(receiver: Any, context: IntegrationContext, **values: Any) -> Any:
    await GenericWebhookIntegration(CASE.block(receiver.base_url, **values), context).send(ALERT)
    [request] = receiver.requests
    return request


async def test_default_body_is_the_alert_with_a_bearer_token(
    receiver: Any, context: IntegrationContext
) -> None:
    request = await send(receiver, context)
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {WEBHOOK_KEY}"
    assert orjson.loads(request.body) == ALERT


async def test_the_template_text_is_the_body_as_written(
    receiver: Any, context: IntegrationContext, tmp_path: Path
) -> None:
    with_template(context, tmp_path, TEMPLATE)
    request = await send(receiver, context)
    assert request.body.decode() == (
        "{\n"
        '  "summary": "sshd: brute force trying \\"admin\\" (x.y)",\n'
        '  "level": 10,\n'
        '  "severity": "medium",\n'
        '  "agent": {"id":"002","name":"web-01","ip":"10.0.0.12"}\n'
        "}"
    )


@pytest.mark.parametrize("method", ["PUT", "patch"])
async def test_method_and_headers(receiver: Any, context: IntegrationContext, method: str) -> None:
    options = {"method": method, "headers": {"X-Source": "wazuh", "Content-Type": "text/json"}}
    request = await send(receiver, context, options=options)
    assert request.method == method.upper()
    assert request.headers["X-Source"] == "wazuh"
    assert request.headers["Content-Type"] == "text/json"


async def test_basic_auth_with_a_username(receiver: Any, context: IntegrationContext) -> None:
    request = await send(receiver, context, options={"username": "wazuh"})
    scheme, _, credentials = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"wazuh:{WEBHOOK_KEY}"


async def test_auth_none_and_no_key_send_no_credentials(
    receiver: Any, context: IntegrationContext
) -> None:
    request = await send(receiver, context, options={"auth": "none"})
    assert "Authorization" not in request.headers


async def test_form_body(receiver: Any, context: IntegrationContext, tmp_path: Path) -> None:
    with_template(context, tmp_path, TEMPLATE)
    request = await send(receiver, context, options={"body": "form"})
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.body.decode())) == {
        "summary": 'sshd: brute force trying "admin" (x.y)',
        "level": "10",
        "severity": "medium",
        "agent": '{"id":"002","name":"web-01","ip":"10.0.0.12"}',
    }


def test_a_form_needs_an_object() -> None:
    with pytest.raises(
        Permanent, match="a form body must be a JSON object, the template wrote an array"
    ):
        form_encode([1, 2])


def test_a_template_that_does_not_write_json_is_refused(
    dry_context: IntegrationContext, tmp_path: Path
) -> None:
    with_template(dry_context, tmp_path, "level={{ alert.rule.level }}")
    integration = GenericWebhookIntegration(CASE.block("https://x.invalid"), dry_context)
    with pytest.raises(Permanent) as info:
        integration.preview(ALERT)
    assert str(info.value).startswith("template body.json.j2: rendered text is not JSON")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"method": "GET"}, "\"method\" must be one of POST, PUT, PATCH (not 'GET')"),
        ({"body": "xml"}, "\"body\" must be one of json, form (not 'xml')"),
        ({"auth": "digest"}, "\"auth\" must be one of bearer, basic, none (not 'digest')"),
        ({"headers": ["X: y"]}, '"headers" must be an object of header names and values'),
        ({"headers": {"X-A": 1}}, "\"headers\": 'X-A' must be a header name with a string value"),
        ({"headers": {"X-A": "a\r\nB: c"}}, "\"headers\": the value of 'X-A' holds a line break"),
        ({"headers": {"Host": "x"}}, "\"headers\": 'Host' is set by the request itself"),
        ({"auth": "basic"}, '"auth": "basic" needs a "username" (the password is <api_key>)'),
        ({"username": "a:b"}, '"username" must be a string without ":"'),
        ({"method": "put", "body": "form", "headers": {"X-A": "b"}}, None),
        (None, None),
    ],
)
def test_options_problems(
    options: dict[str, Any] | None, problem: str | None, make_block: Any
) -> None:
    found = GenericWebhookIntegration.block_problem(make_block("webhook", options=options))
    assert found == (None if problem is None else f"<options>: {problem}")
