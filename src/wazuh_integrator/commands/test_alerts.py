"""``wazuh-integrator test``: which integrations an alert would reach, and why not.

A dry run: nothing is sent. For each alert read (one JSON object per line as
in alerts.json, or pretty-printed objects one after another), every enabled
integration is shown with whether its filters pass, the reason when they do
not, and the body it would send.

Exit status: 0 when every alert was read, 2 when some input was not an alert,
1 when the configuration is invalid (nothing is read then).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from wazuh_integrator.commands import Command, GlobalOptions

if TYPE_CHECKING:
    from wazuh_integrator.config.loading import ConfigurationReport
    from wazuh_integrator.config.models import IntegrationBlock
    from wazuh_integrator.filters import AlertFilter
    from wazuh_integrator.floods import Shaper
    from wazuh_integrator.integrations.base import Integration

__all__ = ["COMMAND", "AlertInput", "read_alert_inputs"]

log = logging.getLogger(__name__)

STDIN_NAME = "<stdin>"
EXIT_BAD_INPUT = 2
_SECRET_SHOWN = "<secret>"


@dataclass(frozen=True)
class AlertInput:
    """One alert read from ``where`` (``file:line``), or why it could not be."""

    where: str
    alert: dict[str, Any] | None = None
    error: str | None = None


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _not_an_object(where: str, value: object) -> AlertInput:
    kind = _JSON_KINDS.get(type(value), "a number")
    return AlertInput(where, error=f"{where}: not a JSON object but {kind}")


def read_alert_inputs(name: str, text: str) -> Iterator[AlertInput]:
    """The alerts in ``text``: JSON lines, or pretty-printed objects one after another."""
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("{") and not _is_json(first):
        yield from _read_documents(name, text)
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield AlertInput(
                where, error=f"{where}: not valid JSON: {exc.msg} (column {exc.colno})"
            )
            continue
        if isinstance(value, dict):
            yield AlertInput(where, alert=value)
        else:
            yield _not_an_object(where, value)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _read_documents(name: str, text: str) -> Iterator[AlertInput]:
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        where = f"{name}:{text.count(chr(10), 0, position) + 1}"
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            # Nothing after a broken document can be trusted to start cleanly.
            yield AlertInput(
                where, error=f"{name}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
            )
            return
        yield (
            AlertInput(where, alert=value)
            if isinstance(value, dict)
            else _not_an_object(where, value)
        )


def _read_sources(files: list[str]) -> Iterator[AlertInput]:
    for name in files or ["-"]:
        if name == "-":
            data = sys.stdin.buffer.read()
            shown = STDIN_NAME
        else:
            shown = name
            try:
                with open(name, "rb") as source:
                    data = source.read()
            except OSError as exc:
                yield AlertInput(name, error=f"{name}: cannot read: {exc.strerror or exc}")
                continue
        yield from read_alert_inputs(shown, data.decode("utf-8", errors="replace"))


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
        from wazuh_integrator.filters import compile_filter
        from wazuh_integrator.floods import Shaper
        from wazuh_integrator.integrations.base import IntegrationContext

        state_dir = report.settings.resolved_state_dir(options.home)
        routes = []
        for block in sorted(report.enabled, key=lambda block: block.index):
            integration = None
            try:
                integration_class = report.registry.resolve(block.name)
                if integration_class is not None:
                    context = IntegrationContext(
                        home=options.home,
                        state_dir=state_dir,
                        settings=report.settings.for_block(block),
                        debug=options.debug > 0,
                    )
                    integration = integration_class(block, context)
            except Exception as exc:  # a broken plugin must not hide the filter results
                log.warning(
                    "No payload preview for %s: %s", block.key, _scrubbed(str(exc), block.secrets)
                )
            settings = report.settings.for_block(block)
            shaper = Shaper(block.key, settings) if settings.shapes_alerts else None
            routes.append(_Route(block, compile_filter(block), integration, shaper))
        return cls(routes)

    def results(self, alert: dict[str, Any]) -> list[dict[str, Any]]:
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
            payload = None
            if sent is not None and reason is None and route.integration is not None:
                payload = self._preview(route, sent)
            result = {
                "integration": route.block.name,
                "index": route.block.index,
                "matched": matched,
                "reason": reason,
                "payload": payload,
            }
            if digest is not None:
                result["digest"] = digest
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
                payload = None
                if route.integration is not None:
                    payload = self._preview(route, digest.document)
                found.append(
                    {
                        "digest": digest.group_key,
                        "integration": route.block.name,
                        "index": route.block.index,
                        "count": digest.document["count"],
                        "payload": payload,
                    }
                )
        return found

    @staticmethod
    def _preview(route: _Route, alert: dict[str, Any]) -> Any:
        assert route.integration is not None
        try:
            payload = route.integration.preview(alert)
        except Exception as exc:  # show the others; say what broke this one
            log.warning(
                "%s could not build its payload for alert %s: %s",
                route.block.key,
                _alert_id(alert),
                _scrubbed(str(exc), route.block.secrets),
            )
            return None
        return _scrubbed(payload, route.block.secrets)


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
        "--no-payload",
        dest="payload",
        action="store_false",
        help="do not print the bodies that would be sent (readable output only)",
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.config.loading import inspect_configuration
    from wazuh_integrator.errors import ConfigError

    report = inspect_configuration(options.paths)
    if report.errors:
        raise ConfigError(report.errors)
    for off in report.disabled:
        print(
            f"note: {off.block.name} #{off.block.index} (line {off.block.line}) is disabled: "
            f"{off.reason}",
            file=sys.stderr,
        )
    dry_run = DryRun.build(report, options)
    out: TextIO = sys.stdout
    bad_input = False
    for item in _read_sources(args.files):
        if item.alert is None:
            bad_input = True
            if args.json:
                _write_json(out, {"error": item.error})
            else:
                out.write(f"{item.error}\n\n")
            continue
        results = dry_run.results(item.alert)
        if args.json:
            _write_json(out, {"alert_id": _alert_id(item.alert), "results": results})
        else:
            _write_readable(out, item, results, show_payload=args.payload)
        _write_digests(out, dry_run.digests(final=False), args)
    _write_digests(out, dry_run.digests(final=True), args)
    out.flush()
    return EXIT_BAD_INPUT if bad_input else 0


def _write_digests(out: TextIO, digests: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """A digest is shown when it would be sent: its group's interval has
    passed by the alerts' own timestamps, or the input has ended."""
    for digest in digests:
        if args.json:
            _write_json(out, digest)
            continue
        out.write(
            f"digest for #{digest['index']} {digest['integration']}, group {digest['digest']}:"
            f" {digest['count']} alert(s)\n"
        )
        if args.payload and digest["payload"] is not None:
            body = json.dumps(digest["payload"], indent=2, ensure_ascii=False, default=str)
            out.write("".join(f"        {line}\n" for line in body.splitlines()))
        out.write("\n")


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
        if result["reason"] is not None:  # matched, then throttled or held for a digest
            out.write(f"{label}  {result['reason']}\n")
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
