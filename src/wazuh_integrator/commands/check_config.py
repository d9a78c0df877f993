"""``wazuh-integrator check-config``: is the configuration usable, and if not, why.

Reads ossec.conf and integrator.toml, decides which blocks would run, and
prints all of it for a person: every integration with its state, every error,
every warning. Exit status 0 when everything would run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TextIO

from wazuh_integrator.commands import Command, GlobalOptions
from wazuh_integrator.config.enable import resolve_integrations
from wazuh_integrator.config.models import (
    DisabledIntegration,
    IntegrationBlock,
    OssecConfig,
    Settings,
)
from wazuh_integrator.config.ossec import read_ossec_conf
from wazuh_integrator.config.settings import load_settings
from wazuh_integrator.errors import ConfigError, ConfigIssue
from wazuh_integrator.integrations.registry import PluginError, Registry

__all__ = ["COMMAND", "ConfigurationReport", "inspect_configuration"]


@dataclass
class ConfigurationReport:
    """Both configuration files, read, resolved and judged together."""

    config: OssecConfig
    settings: Settings
    settings_shown: str
    settings_status: str
    registry: Registry
    enabled: list[IntegrationBlock]
    disabled: list[DisabledIntegration]
    other_errors: list[ConfigIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        """Problems that make the configuration unusable (disabled blocks aside)."""
        return [*self.config.errors, *self.other_errors]


def inspect_configuration(options: GlobalOptions) -> ConfigurationReport:
    """Read everything, collecting problems instead of stopping at the first one."""
    paths = options.paths
    config = read_ossec_conf(paths.config, display_path=options.shown(paths.config))
    settings_shown = options.shown(paths.settings)
    other_errors: list[ConfigIssue] = []
    try:
        # A file named on the command line must exist; the default one may not.
        settings = load_settings(
            paths.settings, must_exist=options.settings is not None, display_path=settings_shown
        )
    except ConfigError as exc:
        settings, status = Settings(), "INVALID (see errors); defaults used to check the rest"
        other_errors.extend(exc.issues)
    else:
        status = _settings_status(settings)
    registry = _registry(settings, settings_shown, other_errors)
    enabled, disabled = resolve_integrations(config, paths, registry)
    return ConfigurationReport(
        config, settings, settings_shown, status, registry, enabled, disabled, other_errors
    )


def _settings_status(settings: Settings) -> str:
    if settings.path is None:
        return "not found: every setting at its default"
    sections = len(settings.integrations)
    plural = "" if sections == 1 else "s"
    return f"read ({sections} [integrations.*] section{plural})"


def _registry(settings: Settings, settings_shown: str, errors: list[ConfigIssue]) -> Registry:
    try:
        return Registry(settings.plugins)
    except PluginError as exc:
        errors.append(ConfigIssue(settings_shown, None, None, f"plugins: {exc}"))
    try:
        return Registry()
    except PluginError as exc:
        errors.append(ConfigIssue("entry points", None, None, str(exc)))
    return Registry(entry_point_plugins=False)


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
    for title, issues in (("Errors", errors), ("Warnings", list(report.config.warnings))):
        out.write(f"\n{title} ({len(issues)})\n")
        for issue in issues:
            out.write(f"  {issue}\n")
        if not issues:
            out.write("  none\n")

    running = f"{len(report.enabled)} of {len(rows)} integrations will run"
    warnings = _plural(len(report.config.warnings), "warning")
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
    report = inspect_configuration(options)
    print_report(report, options, sys.stdout)
    return 1 if report.errors or report.disabled else 0


COMMAND = Command(
    name="check-config",
    help="check ossec.conf and integrator.toml; list every integration, error and warning",
    add_arguments=_add_arguments,
    run=_run,
)
