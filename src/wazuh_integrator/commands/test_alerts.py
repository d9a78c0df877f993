"""``wazuh-integrator test``: which integrations an alert would reach, and why not.

A dry run: nothing is sent. For each alert read (one JSON object per line as
in alerts.json, or pretty-printed objects one after another), every enabled
integration is shown with its verdict: sent (its filters pass and the
integration would send it, with the body), or not sent and why (a filter, or
the integration's own skip rule). Totals close the output.

Exit status: 0 when every alert was read and every body built, 3 when some
body could not be built (a template that fails on an alert: what ``run``
would dead-letter it with), else 2 when some input was not an alert, 1 when
the configuration is invalid (nothing is read then).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from wazuh_integrator.commands import Command, GlobalOptions
from wazuh_integrator.commands.alert_inputs import AlertInput, read_sources

if TYPE_CHECKING:
    from wazuh_integrator.config.loading import ConfigurationReport
    from wazuh_integrator.config.models import IntegrationBlock, WazuhPaths
    from wazuh_integrator.filters import AlertFilter
    from wazuh_integrator.floods import Shaper
    from wazuh_integrator.integrations.base import Integration

__all__ = ["COMMAND", "DryRun", "Totals"]

log = logging.getLogger(__name__)

EXIT_NOTHING_TESTED = 1  # as a configuration with no enabled block: nothing was tested
EXIT_BAD_INPUT = 2
EXIT_NO_BODY = 3
_SECRET_SHOWN = "<secret>"


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret of the block replaced, however deep."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, _SECRET_SHOWN)
        return value
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, secrets) for item in value]
    return value


@dataclass(frozen=True)
class _Route:
    block: IntegrationBlock
    alert_filter: AlertFilter
    integration: Integration | None  # None: its class cannot be loaded, so no preview
    shaper: Shaper | None = None  # the block's floods stage, run over the alerts in order


class _AlertClock:
    """The floods stage's time in a dry run: each alert's own ``timestamp``,
    so that throttle windows and digest intervals play out as they did; an
    alert without one is taken as arriving with the one before."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, alert: dict[str, Any]) -> float:
        from datetime import datetime

        stamp = alert.get("timestamp")
        if isinstance(stamp, str):
            for parse in (
                lambda text: datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z"),
                datetime.fromisoformat,
            ):
                try:
                    self.now = parse(stamp).timestamp()
                    break
                except ValueError:
                    continue
        return self.now


class DryRun:
    """The enabled integrations of a configuration, ready to judge alerts."""

    def __init__(self, routes: list[_Route]) -> None:
        self._routes = routes
        self._clock = _AlertClock()

    @classmethod
    def build(cls, report: ConfigurationReport, options: GlobalOptions) -> DryRun:
        from wazuh_integrator.commands.building import integration_context
        from wazuh_integrator.filters import compile_filter
        from wazuh_integrator.floods import Shaper

        routes = []
        for block in sorted(report.enabled, key=lambda block: block.index):
            integration = None
            try:
                integration_class = report.registry.resolve(block.name)
                if integration_class is not None:
                    context = integration_context(report, options, block)
                    integration = integration_class(block, context)
            except Exception as exc:  # a broken plugin must not hide the filter results
                log.warning(
                    "No payload preview for %s: %s", block.key, _scrubbed(str(exc), block.secrets)
                )
            settings = report.settings.for_block(block)
            shaper = Shaper(block.key, settings) if settings.shapes_alerts else None
            routes.append(_Route(block, compile_filter(block), integration, shaper))
        return cls(routes)

    def results(self, alert: dict[str, Any], *, payloads: bool = True) -> list[dict[str, Any]]:
        from wazuh_integrator.filters import FilterFields

        fields = FilterFields.from_alert(alert)
        now = self._clock.advance(alert)
        results = []
        for route in self._routes:
            reason = route.alert_filter.reason(fields)
            matched = reason is None
            sent: dict[str, Any] | None = alert
            digest = None
            if matched and route.shaper is not None:
                shaped = route.shaper.shape(alert, b"", now=now)
                sent, reason, digest = shaped.alert, shaped.reason, shaped.digest
                matched = not (reason or "").startswith("excluded:")
            if sent is None and reason is None:  # only the digest will carry it
                reason = "held for a digest"
            if reason is None and sent is not None and route.integration is not None:
                skip = self._would_skip(route, sent)
                if skip is not None:
                    reason = f"{SKIPPED_BY_INTEGRATION}: {skip}"
            payload, error = None, None
            if reason is None and sent is not None and route.integration is not None:
                # Built even when not shown: a template that fails must be seen.
                payload, error = self._preview(route, sent)
                if not payloads:
                    payload = None
                if error is not None:  # run would dead-letter the alert: not sent
                    reason = f"no body: {error}"
            result = {
                "integration": route.block.name,
                "index": route.block.index,
                "matched": matched,
                "sent": reason is None,
                "reason": reason,
                "payload": payload,
            }
            if digest is not None:
                result["digest"] = digest
            if error is not None:
                result["error"] = error
            results.append(result)
        return results

    def digests(self, *, final: bool) -> list[dict[str, Any]]:
        """The digests due by the last alert's time (every pending one when
        ``final``), each as the message that would be sent."""
        found = []
        for route in self._routes:
            collector = route.shaper.digests if route.shaper is not None else None
            if collector is None:
                continue
            now = self._clock.now
            ready = collector.take_all(now) if final else collector.take_due(now)
            for digest in ready:
                payload, error = None, None
                if route.integration is not None:
                    payload, error = self._preview(route, digest.document)
                shown: dict[str, Any] = {
                    "digest": digest.group_key,
                    "integration": route.block.name,
                    "index": route.block.index,
                    "count": digest.document["count"],
                    "payload": payload,
                }
                if error is not None:
                    shown["error"] = error
                found.append(shown)
        return found

    @staticmethod
    def _would_skip(route: _Route, alert: dict[str, Any]) -> str | None:
        assert route.integration is not None
        try:
            return route.integration.would_skip(alert)
        except Exception as exc:  # a broken plugin: say so, and judge the rest
            log.warning(
                "%s could not judge alert %s: %s",
                route.block.key,
                _alert_id(alert),
                _scrubbed(str(exc), route.block.secrets),
            )
            return None

    @staticmethod
    def _preview(route: _Route, alert: dict[str, Any]) -> tuple[Any, str | None]:
        """The body, or None and why it could not be built (a template that
        fails on this alert: what ``run`` would dead-letter it with)."""
        assert route.integration is not None
        try:
            payload = route.integration.preview(alert)
        except Exception as exc:  # show the others; say what broke this one
            error = _scrubbed(str(exc), route.block.secrets)
            log.warning(
                "%s could not build its payload for alert %s: %s",
                route.block.key,
                _alert_id(alert),
                error,
            )
            return None, error
        return _scrubbed(payload, route.block.secrets), None


SKIPPED_BY_INTEGRATION = "skipped by the integration"
NO_BODY = "no body"
# How the reasons of AlertFilter.reason() are counted in the totals: by the
# filter that said no, not by its text, which holds the alert's own values.
_FILTER_KINDS = (
    ("alert has no rule", "no rule"),
    ("location", "location filter"),
    ("alert has no location", "location filter"),
    ("level", "level filter"),
    ("alert has no rule.level", "level filter"),
    ("none of groups", "group filter"),
    ("alert has no rule.groups", "group filter"),
    ("rule.id", "rule_id filter"),
    ("alert has no rule.id", "rule_id filter"),
    ("excluded", "excluded (floods filter)"),
    ("throttled", "throttled"),
    ("digest", "held for a digest"),
    ("held for a digest", "held for a digest"),
)


def reason_kind(reason: str) -> str:
    """The total a not-sent ``reason`` is counted under."""
    if reason.startswith(SKIPPED_BY_INTEGRATION):
        return SKIPPED_BY_INTEGRATION
    # The longest prefix wins: "alert has no rule.id" over "alert has no rule".
    found = [(len(prefix), kind) for prefix, kind in _FILTER_KINDS if reason.startswith(prefix)]
    return max(found)[1] if found else "other"


@dataclass
class _IntegrationTotals:
    name: str
    index: int
    sent: int = 0
    not_sent: Counter[str] = field(default_factory=Counter)


@dataclass
class Totals:
    """What ``test`` counted: alerts read, input errors, and per block the
    alerts it would send and those it would not, by reason."""

    alerts: int = 0
    invalid: int = 0
    no_body: int = 0  # deliveries whose body could not be built (a template failed)
    per_block: dict[int, _IntegrationTotals] = field(default_factory=dict)

    def add(self, results: list[dict[str, Any]]) -> None:
        self.alerts += 1
        for result in results:
            totals = self.per_block.get(result["index"])
            if totals is None:
                totals = _IntegrationTotals(result["integration"], result["index"])
                self.per_block[result["index"]] = totals
            if "error" in result:  # run would dead-letter it: not sent
                self.no_body += 1
                totals.not_sent[NO_BODY] += 1
            elif result["sent"]:
                totals.sent += 1
            else:
                totals.not_sent[reason_kind(result["reason"])] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts,
            "invalid": self.invalid,
            "no_body": self.no_body,
            "integrations": [
                {
                    "integration": totals.name,
                    "index": totals.index,
                    "sent": totals.sent,
                    "not_sent": dict(sorted(totals.not_sent.items())),
                }
                for _, totals in sorted(self.per_block.items())
            ],
        }

    def write(self, out: TextIO) -> None:
        line = f"Totals: {_plural(self.alerts, 'alert')} read, {self.invalid} not an alert"
        if self.no_body:
            line += f", {self.no_body} with no body"
        out.write(line + "\n")
        blocks = [totals for _, totals in sorted(self.per_block.items())]
        width = max((len(totals.name) for totals in blocks), default=0)
        for totals in blocks:
            not_sent = sum(totals.not_sent.values())
            line = f"  #{totals.index:<3} {totals.name:<{width}}  sent {totals.sent}"
            line += f", not sent {not_sent}"
            if not_sent:
                kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(totals.not_sent.items()))
                line += f" ({kinds})"
            out.write(line + "\n")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="alert files: JSON lines as in alerts.json, or pretty-printed JSON ('-': stdin)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per alert on stdout, for scripts",
    )
    parser.add_argument(
        "--send",
        action="store_true",
        help="really send one alert (the first of FILE, else a built-in sample) through the"
        " enabled integrations to their receivers, and print each answer",
    )
    parser.add_argument(
        "--integration",
        action="append",
        default=[],
        metavar="NAME",
        help="with --send: only this integration (a name like slack, or slack#0; repeatable)",
    )
    parser.add_argument(
        "--no-payload",
        dest="payload",
        action="store_false",
        help="do not print the bodies that would be sent (readable output only)",
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.config.loading import inspect_configuration
    from wazuh_integrator.errors import ConfigError, IntegratorError

    report = inspect_configuration(options.paths)
    if report.errors:
        raise ConfigError(report.errors)
    for off in report.disabled:
        print(
            f"note: {off.block.name} #{off.block.index} (line {off.block.line}) is disabled: "
            f"{off.reason}",
            file=sys.stderr,
        )
    if args.send:
        return _send(report, options, args)
    if not report.enabled:
        # A dry run over no block tests nothing: say so, rather than a clean exit 0.
        raise IntegratorError(_nothing_to_test(options.paths))
    if args.integration:
        raise IntegratorError("--integration goes with --send")
    dry_run = DryRun.build(report, options)
    out: TextIO = sys.stdout
    totals = Totals()
    for item in read_sources(args.files):
        if item.alert is None:
            totals.invalid += 1
            if args.json:
                _write_json(out, {"error": item.error})
            else:
                out.flush()  # keep the order of stdout and stderr on one terminal
                print(item.error, file=sys.stderr)
            continue
        results = dry_run.results(item.alert, payloads=args.json or args.payload)
        totals.add(results)
        if args.json:
            _write_json(out, {"alert_id": _alert_id(item.alert), "results": results})
        else:
            _write_readable(out, item, results, show_payload=args.payload)
        totals.no_body += _write_digests(out, dry_run.digests(final=False), args)
    totals.no_body += _write_digests(out, dry_run.digests(final=True), args)
    if args.json:
        out.flush()
        totals.write(sys.stderr)
    else:
        totals.write(out)
    out.flush()
    if totals.no_body:
        return EXIT_NO_BODY
    if totals.invalid:
        return EXIT_BAD_INPUT
    if not totals.alerts:
        # `grep ... | wazuh-integrator test` whose grep found nothing tested
        # nothing: a script must not read that as every alert passing.
        print("nothing tested: the input held no alert", file=sys.stderr)
        return EXIT_NOTHING_TESTED
    return 0


def _nothing_to_test(paths: WazuhPaths) -> str:
    from wazuh_integrator.config.ossec import moved_blocks_hint

    hint = moved_blocks_hint(paths.config)
    message = f"no enabled integration in {paths.config}: nothing to test"
    return message if hint is None else f"{message}; {hint}"


def _send(report: ConfigurationReport, options: GlobalOptions, args: argparse.Namespace) -> int:
    from wazuh_integrator.commands.send_test import SAMPLE_ALERT, send_one_alert

    if not args.files:
        print("Sending the built-in sample alert.", file=sys.stderr)
        return send_one_alert(report, options, SAMPLE_ALERT, args.integration)
    for item in read_sources(args.files):
        if item.alert is not None:
            print(f"Sending the alert of {item.where}.", file=sys.stderr)
            return send_one_alert(report, options, item.alert, args.integration)
        print(item.error, file=sys.stderr)
    print("error: no alert in the input: nothing sent", file=sys.stderr)
    return EXIT_BAD_INPUT


def _write_digests(out: TextIO, digests: list[dict[str, Any]], args: argparse.Namespace) -> int:
    """A digest is shown when it would be sent: its group's interval has
    passed by the alerts' own timestamps, or the input has ended. Returns how
    many had no body (a template failed on them)."""
    for digest in digests:
        if args.json:
            _write_json(out, digest)
            continue
        note = f" but no body: {digest['error']}" if "error" in digest else ""
        out.write(
            f"digest for #{digest['index']} {digest['integration']}, group {digest['digest']}:"
            f" {digest['count']} alert(s){note}\n"
        )
        if args.payload and digest["payload"] is not None:
            body = json.dumps(digest["payload"], indent=2, ensure_ascii=False, default=str)
            out.write("".join(f"        {line}\n" for line in body.splitlines()))
        out.write("\n")
    return sum("error" in digest for digest in digests)


def _alert_id(alert: dict[str, Any]) -> str | None:
    alert_id = alert.get("id")
    return None if alert_id is None else str(alert_id)


def _write_json(out: TextIO, value: dict[str, Any]) -> None:
    out.write(json.dumps(value, ensure_ascii=False, default=str))
    out.write("\n")


def _summary(alert: dict[str, Any]) -> str:
    rule = alert.get("rule")
    parts = [f"alert {_alert_id(alert) or '(no id)'}"]
    if isinstance(rule, dict):
        parts.append(f"rule {rule.get('id', '?')} level {rule.get('level', '?')}")
    else:
        parts.append("no rule")
    if "location" in alert:
        parts.append(f"location {json.dumps(alert['location'], ensure_ascii=False)}")
    return ", ".join(parts)


def _write_readable(
    out: TextIO, item: AlertInput, results: list[dict[str, Any]], *, show_payload: bool
) -> None:
    assert item.alert is not None
    out.write(f"{item.where}: {_summary(item.alert)}\n")
    if not results:
        out.write("  no enabled integration\n\n")
        return
    width = max(len(result["integration"]) for result in results)
    for result in results:
        label = f"  #{result['index']:<3} {result['integration']:<{width}}"
        if not result["matched"]:
            out.write(f"{label}  no match: {result['reason']}\n")
            continue
        if "error" in result:
            out.write(f"{label}  MATCH but no body: {result['error']}\n")
            continue
        if not result["sent"]:  # a throttle, a digest, or the integration's own skip
            out.write(f"{label}  MATCH, NOT SENT: {result['reason']}\n")
            continue
        payload = result["payload"]
        note = "" if payload is not None or not show_payload else " (no body to show)"
        out.write(f"{label}  MATCH{note}\n")
        if show_payload and payload is not None:
            body = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
            out.write("".join(f"        {line}\n" for line in body.splitlines()))
    out.write("\n")


COMMAND = Command(
    name="test",
    help="dry-run alerts: which integrations match, why not, and what would be sent",
    add_arguments=_add_arguments,
    run=_run,
)
