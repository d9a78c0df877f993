"""``wazuh-integrator check-config``: is the configuration usable, and if not, why.

Reads ossec.conf and integrator.toml, decides which blocks would run, and
prints all of it for a person: every integration with its state, every error,
every warning. Exit status 0 when everything would run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from wazuh_integrator.commands import Command, GlobalOptions
from wazuh_integrator.config.loading import ConfigurationReport, inspect_configuration

__all__ = ["COMMAND"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def print_report(report: ConfigurationReport, options: GlobalOptions, out: TextIO) -> None:
    paths = options.paths
    out.write(f"Configuration  {paths.config}\n")
    out.write(f"Settings       {paths.settings}: {report.settings_status}\n")

    reasons = {off.block.index: f"DISABLED  {off.reason}" for off in report.disabled}
    rows: list[tuple[int, str, int, str]] = []
    for block in report.config.blocks:
        rows.append((block.index, block.name, block.line, reasons.get(block.index, "enabled")))
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

    errors = report.errors
    for title, issues in (("Errors", errors), ("Warnings", list(report.warnings))):
        out.write(f"\n{title} ({len(issues)})\n")
        for issue in issues:
            out.write(f"  {issue}\n")
        if not issues:
            out.write("  none\n")

    running = f"{len(report.enabled)} of {len(rows)} integrations will run"
    warnings = _plural(len(report.warnings), "warning")
    if errors or report.disabled:
        problems = [_plural(len(errors), "error")] if errors else []
        if report.disabled:
            problems.append(_plural(len(report.disabled), "disabled integration"))
        out.write(f"\nResult: NOT OK: {', '.join(problems)}, {warnings}; {running}.\n")
    else:
        out.write(f"\nResult: OK: {running}; {warnings}.\n")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options of its own


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    del args
    report = inspect_configuration(options.paths)
    print_report(report, options, sys.stdout)
    return 1 if report.errors or report.disabled else 0


COMMAND = Command(
    name="check-config",
    help="check ossec.conf and integrator.toml; list every integration, error and warning",
    add_arguments=_add_arguments,
    run=_run,
)
