"""``wazuh-integrator check-config``: is the configuration usable, and if not, why.

Reads ossec.conf and integrator.toml, decides which blocks would run, and
prints all of it for a person: every integration with its state, every error,
every warning. With ``--environment`` it also checks the machine (see
:mod:`wazuh_integrator.environment`). Exit status 0 when everything would
run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from wazuh_integrator.commands import Command, GlobalOptions

if TYPE_CHECKING:
    from wazuh_integrator.config.loading import ConfigurationReport
    from wazuh_integrator.environment import Verdict
    from wazuh_integrator.integrations.base import Integration

__all__ = ["COMMAND", "environment_verdicts"]

log = logging.getLogger(__name__)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def print_report(report: ConfigurationReport, options: GlobalOptions, out: TextIO) -> None:
    paths = options.paths
    out.write(f"Configuration  {paths.config}\n")
    out.write(f"Settings       {paths.settings}: {report.settings_status}\n")

    errors = report.errors
    # With any error nothing runs: a block that would be enabled is only valid.
    good = "valid" if errors else "enabled"
    reasons = {off.block.index: f"DISABLED  {off.reason}" for off in report.disabled}
    rows: list[tuple[int, str, int, str]] = []
    for block in report.config.blocks:
        rows.append((block.index, block.name, block.line, reasons.get(block.index, good)))
    for invalid in report.config.invalid_blocks:
        name = invalid.name or "(no name)"
        rows.append((invalid.index, name, invalid.line, "INVALID   see the errors below"))
    rows.sort()
    out.write(f"\nIntegrations ({len(rows)})\n")
    if rows:
        width = max(len(name) for _, name, _, _ in rows)
        for index, name, line, state in rows:
            out.write(f"  #{index:<3} {name:<{width}}  line {line:<5} {state}\n")
    else:
        out.write("  none\n")

    for title, issues in (("Errors", errors), ("Warnings", list(report.warnings))):
        out.write(f"\n{title} ({len(issues)})\n")
        for issue in issues:
            out.write(f"  {issue}\n")
        if not issues:
            out.write("  none\n")

    running = (
        "nothing will run until the errors are fixed"
        if errors
        else f"{len(report.enabled)} of {len(rows)} integrations will run"
    )
    warnings = _plural(len(report.warnings), "warning")
    if errors or report.disabled:
        problems = [_plural(len(errors), "error")] if errors else []
        if report.disabled:
            problems.append(_plural(len(report.disabled), "disabled integration"))
        out.write(f"\nResult: NOT OK: {', '.join(problems)}, {warnings}; {running}.\n")
    else:
        out.write(f"\nResult: OK: {running}; {warnings}.\n")


def _integrations(report: ConfigurationReport, options: GlobalOptions) -> list[Integration]:
    """The enabled blocks' integrations, built for a dry run (no session, no socket)."""
    from wazuh_integrator.commands.building import integration_context

    built = []
    for block in sorted(report.enabled, key=lambda block: block.index):
        integration_class = report.registry.resolve(block.name)
        if integration_class is None:
            continue
        try:
            built.append(integration_class(block, integration_context(report, options, block)))
        except Exception as exc:  # a broken plugin: its own checks cannot run
            log.warning("%s cannot be built to check it: %s", block.key, type(exc).__name__)
    return built


def local_verdicts(
    report: ConfigurationReport,
    options: GlobalOptions,
    integrations: list[Integration],
    alerts: Path | None = None,
    *,
    reads_alerts: bool = True,
) -> list[Verdict]:
    """The checks of this machine alone: state directory, alerts.json (unless
    ``reads_alerts`` is False: a cluster worker), analysisd."""
    from wazuh_integrator.environment import (
        check_alerts_file,
        check_analysisd_socket,
        check_state_dir,
    )

    paths = options.paths
    verdicts = [check_state_dir(report.settings.resolved_state_dir(options.home))]
    if reads_alerts:
        verdicts.append(check_alerts_file(alerts or paths.alerts))
    socket_verdict = check_analysisd_socket(
        paths.analysisd_socket,
        (integration.block.key for integration in integrations if integration.sends_to_analysisd),
    )
    if socket_verdict is not None:
        verdicts.append(socket_verdict)
    return verdicts


def check_before_run(
    options: GlobalOptions, alerts: Path | None = None, *, reads_alerts: bool = True
) -> ConfigurationReport:
    """``run``'s start-up checks of this machine: a failure raises ConfigError
    (one line each, nothing started), a warning is logged. A configuration
    with errors is left to the loader, which reports them itself.

    Returns the configuration as read, so that ``run`` does not read it twice."""
    from wazuh_integrator.config.loading import inspect_configuration
    from wazuh_integrator.environment import Outcome
    from wazuh_integrator.errors import ConfigError, ConfigIssue

    report = inspect_configuration(options.paths)
    if report.errors:
        return report
    integrations = _integrations(report, options)
    verdicts = local_verdicts(report, options, integrations, alerts, reads_alerts=reads_alerts)
    for verdict in verdicts:
        if verdict.outcome is Outcome.WARNING:
            log.warning("%s: %s", verdict.subject, verdict.detail)
    failed = [verdict for verdict in verdicts if verdict.outcome is Outcome.FAILED]
    if failed:
        raise ConfigError(
            [ConfigIssue(verdict.subject, None, None, verdict.detail) for verdict in failed]
        )
    return report


def environment_verdicts(report: ConfigurationReport, options: GlobalOptions) -> list[Verdict]:
    """Every environment check, receivers included."""
    from wazuh_integrator.environment import check_receivers
    from wazuh_integrator.tls import ssl_context

    integrations = _integrations(report, options)
    receivers = [
        (integration.block.key, url)
        for integration in integrations
        if (url := integration.receiver_url()) is not None
    ]
    tls = {}
    for integration in integrations:
        settings = integration.context.settings
        # integrator.toml was checked already: these files load.
        context = ssl_context(settings.ca_file, settings.client_cert, settings.client_key)
        if context is not None:
            tls[integration.block.key] = context
    import asyncio

    verdicts = asyncio.run(check_receivers(receivers, tls=tls))
    return local_verdicts(report, options, integrations) + verdicts


def print_environment(verdicts: list[Verdict], out: TextIO) -> bool:
    """Print the verdicts; True when none failed."""
    from wazuh_integrator.environment import Outcome

    out.write(f"\nEnvironment ({len(verdicts)} checks)\n")
    for verdict in verdicts:
        out.write(f"  {verdict}\n")
    failed = sum(verdict.outcome is Outcome.FAILED for verdict in verdicts)
    if failed:
        out.write(f"\nEnvironment: NOT OK: {_plural(failed, 'check')} failed.\n")
    else:
        out.write("\nEnvironment: OK.\n")
    return not failed


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environment",
        action="store_true",
        help="also check the machine: state directory, alerts.json, analysisd socket,"
        " and that every receiver resolves and accepts a connection (no alert is sent)",
    )


def print_cluster(report: ConfigurationReport, out: TextIO) -> bool:
    """With a [cluster] table: Redis answers, and the stream's group; True when usable."""
    cluster = report.settings.cluster
    if cluster is None or report.errors:
        return True
    try:
        from wazuh_integrator.cluster.checks import check_cluster
    except ImportError as error:
        out.write(f"\nCluster\n  FAIL  redis-py is not installed ({error.name}):")
        out.write(" pip install 'wazuh-integrator[cluster]'\n")
        return False
    import asyncio

    lines, ok = asyncio.run(check_cluster(cluster))
    out.write("\nCluster\n")
    for line in lines:
        out.write(f"  {line}\n")
    out.write(f"\nCluster: {'OK' if ok else 'NOT OK'}.\n")
    return ok


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.config.loading import inspect_configuration

    report = inspect_configuration(options.paths)
    print_report(report, options, sys.stdout)
    ok = not (report.errors or report.disabled)
    ok = print_cluster(report, sys.stdout) and ok
    if args.environment:
        # Verdicts show receivers as scheme://host:port, never their path.
        ok = print_environment(environment_verdicts(report, options), sys.stdout) and ok
    return 0 if ok else 1


COMMAND = Command(
    name="check-config",
    help="check ossec.conf and integrator.toml; list every integration, error and warning",
    add_arguments=_add_arguments,
    run=_run,
)
