"""What every HTTP output must do, run against each one (those on the webhook
base, and PagerDuty): one request to its path, the retry table, no secret in
any failure, a dry run that needs no session; for those that take a template,
a template that fails on an alert is a Permanent error naming its file and
line; for those that say so, the floods stage's digests and suppressed counts.
Each output's own module tests only what is its own."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from outputs_support import ALERT, OUTPUTS, OutputCase

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited
from wazuh_integrator.integrations.base import IntegrationContext


@pytest.fixture(params=list(OUTPUTS))
def output(request: pytest.FixtureRequest) -> OutputCase:
    return OUTPUTS[request.param]


@pytest.fixture(params=[name for name, case in OUTPUTS.items() if case.templated])
def templated_output(request: pytest.FixtureRequest) -> OutputCase:
    return OUTPUTS[request.param]


@pytest.fixture(params=[name for name, case in OUTPUTS.items() if case.says_digests])
def digest_output(request: pytest.FixtureRequest) -> OutputCase:
    return OUTPUTS[request.param]


@pytest.fixture(params=[name for name, case in OUTPUTS.items() if case.says_suppressed])
def suppressed_output(request: pytest.FixtureRequest) -> OutputCase:
    return OUTPUTS[request.param]


async def test_sends_one_request_to_its_path(
    output: OutputCase, receiver: Any, context: IntegrationContext
) -> None:
    await output.cls(output.block(receiver.base_url), context).send(ALERT)
    [request] = receiver.requests
    assert request.method in ("POST", "PUT", "PATCH")
    assert request.path_qs == output.path
    assert request.body


async def test_retry_table(
    output: OutputCase,
    status_outcome: tuple[int, type[DeliveryError] | None],
    receiver: Any,
    context: IntegrationContext,
) -> None:
    status, expected = status_outcome
    receiver.answer(status, b"no_service", {"Retry-After": "7"})
    integration = output.cls(output.block(receiver.base_url), context)
    if expected is None:
        await integration.send(ALERT)
        return
    with pytest.raises(DeliveryError) as info:
        await integration.send(ALERT)
    assert type(info.value) is expected
    assert info.value.status == status
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after_s == 7.0


async def test_no_secret_leaks(
    output: OutputCase,
    failure_mode: str,
    failing_base_url: str,
    expected_failure: type[DeliveryError],
    context: IntegrationContext,
    caplog: pytest.LogCaptureFixture,
    assert_no_leak: Any,
) -> None:
    caplog.set_level(logging.DEBUG, logger="wazuh_integrator")
    caplog.set_level(logging.DEBUG)
    block = output.block(failing_base_url, timeout_s=1)
    with pytest.raises(DeliveryError) as info:
        await output.cls(block, context).send(ALERT)
    assert type(info.value) is expected_failure
    assert_no_leak(info.value, output.secrets)


async def test_a_template_failing_on_an_alert_is_permanent_and_sends_nothing(
    templated_output: OutputCase, receiver: Any, tmp_path: Path, context: IntegrationContext
) -> None:
    role = "template"
    template = tmp_path / "etc" / "templates" / f"{templated_output.name}.j2"
    template.parent.mkdir(parents=True)
    template.write_text('{"a": 1,\n "b": "{{ alert.rule.no_such_field }}"}\n')
    settings = IntegrationSettings(templates={role: Path("etc/templates") / template.name})
    context.settings = settings
    integration = templated_output.cls(templated_output.block(receiver.base_url), context)
    with pytest.raises(Permanent) as info:
        await integration.send(ALERT)
    assert str(info.value) == (
        f"template etc/templates/{templated_output.name}.j2:2: alert.rule.no_such_field is missing"
    )
    assert receiver.requests == []


def test_dry_run_preview_needs_no_session(output: OutputCase, dry_context: Any) -> None:
    preview = output.cls(output.block("https://example.invalid"), dry_context).preview(ALERT)
    assert preview


DIGEST = {
    "digest": {"group": "rule.id=5712", "fields": {"rule.id": "5712"}, "integration": "x"},
    "count": 5,
    "alerts": [ALERT, ALERT],
    "first": "2026-11-27T17:00:00.000Z",
    "last": "2026-11-27T17:05:00.000Z",
}
SUPPRESSED = {**ALERT, "suppressed": {"count": 3, "since": "2026-11-27T16:00:00.000Z"}}


def test_a_digest_of_the_floods_stage_is_one_message_saying_so(
    digest_output: OutputCase, dry_context: Any
) -> None:
    preview = digest_output.cls(
        digest_output.block("https://example.invalid"), dry_context
    ).preview(DIGEST)
    if digest_output.name == "webhook":  # its body is the document itself, as JSON
        assert preview == DIGEST
        return
    text = orjson.dumps(preview).decode()
    assert "5 alerts for rule.id=5712" in text.replace("\\\\", "").replace("\\", "")
    assert "and 3 more" in text


def test_a_note_of_suppressed_alerts_is_shown(
    suppressed_output: OutputCase, dry_context: Any
) -> None:
    preview = suppressed_output.cls(
        suppressed_output.block("https://example.invalid"), dry_context
    ).preview(SUPPRESSED)
    if suppressed_output.name == "webhook":
        assert preview == SUPPRESSED
        return
    text = orjson.dumps(preview).decode()
    assert "3 similar alerts since 2026" in text
