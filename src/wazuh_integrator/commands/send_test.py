"""``wazuh-integrator test --send``: one real alert through the real integrations.

The alert (a file's first alert, or :data:`SAMPLE_ALERT`) goes to every
enabled integration, or to those named with ``--integration``, through the
same ``send`` the daemon uses, to the configured receiver; the HTTP status
and the start of each answer are printed, secrets redacted. No retry, no rate
limit, no state: one attempt, and an honest exit status (0 only when every
chosen integration delivered).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from wazuh_integrator.commands import GlobalOptions

if TYPE_CHECKING:
    from wazuh_integrator.config.loading import ConfigurationReport
    from wazuh_integrator.config.models import IntegrationBlock
    from wazuh_integrator.integrations.base import Integration
    from wazuh_integrator.integrations.http import RecordedAnswer

__all__ = ["SAMPLE_ALERT", "SendResult", "send_one_alert"]

log = logging.getLogger(__name__)

ANSWER_SHOWN_BYTES = 1024
# Enough for every built-in integration to have something to send: a rule
# level of 10, an sshd source address (Maltiverse), a file's MD5 (VirusTotal).
SAMPLE_ALERT: dict[str, Any] = {
    "timestamp": "2026-01-01T00:00:00.000+0000",
    "rule": {
        "level": 10,
        "description": "wazuh-integrator test --send: a sample alert, not a real event",
        "id": "100001",
        "groups": ["wazuh_integrator_test"],
        "firedtimes": 1,
    },
    "agent": {"id": "000", "name": "wazuh-manager"},
    "manager": {"name": "wazuh-manager"},
    "id": "0000000000.0",
    "full_log": "wazuh-integrator test --send: checking the way to the receiver",
    "location": "wazuh-integrator",
    "data": {"srcip": "198.51.100.7"},
    "syscheck": {
        "path": "/tmp/wazuh-integrator-test",
        "md5_after": "d41d8cd98f00b204e9800998ecf8427e",
        "sha1_after": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "event": "modified",
    },
}


@dataclass
class SendResult:
    block: IntegrationBlock
    delivered: bool
    verdict: str
    answers: list[RecordedAnswer]


def _chosen(report: ConfigurationReport, names: Collection[str]) -> list[IntegrationBlock]:
    blocks = sorted(report.enabled, key=lambda block: block.index)
    if not names:
        return blocks
    return [block for block in blocks if block.name in names or block.key in names]


def _redacted(text: str, secrets: list[str]) -> str:
    from wazuh_integrator.secret import redact_urls_in, scrub

    return redact_urls_in(scrub(text, sorted(secrets, key=len, reverse=True)))


async def _send(integration: Integration, alert: dict[str, Any]) -> SendResult:
    from wazuh_integrator.errors import DeliveryError
    from wazuh_integrator.integrations.http import recording_answers

    block = integration.block
    skip = integration.would_skip(alert)
    if skip is not None:
        return SendResult(block, False, f"NOT SENT: skipped by the integration: {skip}", [])
    started = time.monotonic()
    with recording_answers() as answers:
        try:
            await asyncio.wait_for(integration.send(alert), integration.attempt_timeout_s + 5)
        except DeliveryError as error:
            kind = type(error).__name__
            text = _redacted(str(error), block.secrets)
            return SendResult(block, False, f"FAILED ({kind}): {text}", answers)
        except asyncio.TimeoutError:
            limit = integration.attempt_timeout_s + 5
            return SendResult(block, False, f"FAILED: no answer within {limit:g} s", answers)
        except Exception as exc:  # a plugin's bug: say what, not a traceback
            text = _redacted(str(exc), block.secrets)
            return SendResult(block, False, f"FAILED: {type(exc).__name__}: {text}", answers)
    elapsed_ms = (time.monotonic() - started) * 1000
    return SendResult(block, True, f"DELIVERED in {elapsed_ms:.0f} ms", answers)


async def _send_all(
    report: ConfigurationReport,
    options: GlobalOptions,
    blocks: list[IntegrationBlock],
    alert: dict[str, Any],
) -> list[SendResult]:
    import aiohttp

    from wazuh_integrator.analysisd import AnalysisdSocket
    from wazuh_integrator.commands.building import integration_context

    events = AnalysisdSocket(options.paths.analysisd_socket)
    results = []
    try:
        async with aiohttp.ClientSession() as http:
            for block in blocks:
                integration_class = report.registry.resolve(block.name)
                if integration_class is None:
                    continue
                context = integration_context(report, options, block, http=http, events=events)
                integration = integration_class(block, context)
                try:
                    results.append(await _send(integration, alert))
                finally:
                    await integration.close()
    finally:
        events.close()
    return results


def _write(result: SendResult, filter_reason: str | None, out: TextIO) -> None:
    from wazuh_integrator.integrations.http import url_secrets
    from wazuh_integrator.secret import redact_url

    block = result.block
    out.write(f"#{block.index:<3} {block.name}  {result.verdict}\n")
    if filter_reason is not None:
        out.write(f"      (sent although its filters would stop this alert: {filter_reason})\n")
    for answer in result.answers:
        out.write(f"      {answer.method} {redact_url(answer.url)} -> HTTP {answer.status}\n")
        body = answer.body[:ANSWER_SHOWN_BYTES].decode("utf-8", errors="replace")
        # An answer may quote the URL, or only its path or query: those are secrets too.
        hidden = [*block.secrets, *url_secrets(answer.url)]
        for line in _redacted(body, hidden).splitlines() or [""]:
            out.write(f"        {line}\n")
        if answer.truncated or len(answer.body) > ANSWER_SHOWN_BYTES:
            out.write("        (answer cut)\n")
    if result.delivered and not result.answers:
        out.write("      (no HTTP answer to show: this integration does not call a web service)\n")


def send_one_alert(
    report: ConfigurationReport,
    options: GlobalOptions,
    alert: dict[str, Any],
    names: Collection[str],
    out: TextIO = sys.stdout,
) -> int:
    """Send ``alert`` through the chosen integrations; the exit status."""
    from wazuh_integrator.filters import FilterFields, compile_filter

    blocks = _chosen(report, names)
    if not blocks:
        wanted = ", ".join(sorted(names)) if names else "any"
        print(f"error: no enabled integration matches {wanted}: nothing sent", file=sys.stderr)
        return 1
    results = asyncio.run(_send_all(report, options, blocks, alert))
    fields = FilterFields.from_alert(alert)
    for result in results:
        _write(result, compile_filter(result.block).reason(fields), out)
    delivered = sum(result.delivered for result in results)
    out.write(f"\n{delivered} of {len(results)} integration(s) delivered the alert.\n")
    return 0 if delivered == len(results) else 1
