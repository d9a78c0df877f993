"""Reading ossec.conf and integrator.toml together, as ``run``, ``check-config``
and ``test`` all do: every problem collected, none stopping the others."""

from __future__ import annotations

from dataclasses import dataclass, field

from wazuh_integrator.config.enable import resolve_integrations
from wazuh_integrator.config.models import (
    DisabledIntegration,
    IntegrationBlock,
    OssecConfig,
    Settings,
    WazuhPaths,
)
from wazuh_integrator.config.ossec import count_integration_blocks, read_ossec_conf
from wazuh_integrator.config.settings import load_settings, settings_key_line
from wazuh_integrator.errors import ConfigError, ConfigIssue
from wazuh_integrator.integrations.registry import PluginError, Registry
from wazuh_integrator.templating import TemplateError

__all__ = ["ConfigurationReport", "inspect_configuration"]


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
    other_warnings: list[ConfigIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        """Problems that make the configuration unusable (disabled blocks aside)."""
        return [*self.config.errors, *self.other_errors]

    @property
    def warnings(self) -> list[ConfigIssue]:
        return [*self.config.warnings, *self.other_warnings]


def inspect_configuration(paths: WazuhPaths) -> ConfigurationReport:
    """Read everything, collecting problems instead of stopping at the first one."""
    config = read_ossec_conf(paths.config, display_path=paths.shown(paths.config))
    settings_shown = paths.shown(paths.settings)
    other_errors: list[ConfigIssue] = []
    try:
        # A file named on the command line must exist; the default one may not.
        settings = load_settings(
            paths.settings, must_exist=paths.settings_given, display_path=settings_shown
        )
    except ConfigError as exc:
        settings, status = Settings(), "INVALID (see errors); defaults used to check the rest"
        other_errors.extend(exc.issues)
    else:
        status = _settings_status(settings)
    registry = _registry(settings, settings_shown, other_errors)
    other_errors.extend(_unknown_block_tables(config, settings, settings_shown))
    other_errors.extend(template_issues(settings, paths, registry, settings_shown))
    enabled, disabled = resolve_integrations(config, paths, registry)
    return ConfigurationReport(
        config,
        settings,
        settings_shown,
        status,
        registry,
        enabled,
        disabled,
        other_errors,
        _stock_config_warnings(paths),
    )


def template_issues(
    settings: Settings, paths: WazuhPaths, registry: Registry, settings_shown: str
) -> list[ConfigIssue]:
    """Every configured template compiled: one it cannot take, or that does not
    compile, is an error located in the template file (or in integrator.toml)."""
    issues: list[ConfigIssue] = []
    tables = [(name, name, table) for name, table in settings.integrations.items()]
    tables += [(key, key.rpartition("#")[0], table) for key, table in settings.blocks.items()]
    for table_name, name, integration in tables:
        dotted = f'integrations."{table_name}"' if "#" in table_name else f"integrations.{name}"
        if not integration.templates:
            continue
        try:
            cls = registry.resolve(name)
        except PluginError:
            continue  # reported where the plugin is loaded
        formats = getattr(cls, "template_formats", {})
        for role, path in integration.templates.items():
            template_format = formats.get(role)
            if template_format is None:
                takes = ", ".join(formats) or "no template"
                line = settings_key_line(settings, ("integrations", table_name), role)
                issues.append(
                    ConfigIssue(
                        settings_shown,
                        line,
                        None,
                        f"{dotted}.{role}: {name} does not take it (it takes {takes})",
                    )
                )
                continue
            # Jinja2 is imported here, when a template is configured: never otherwise.
            from wazuh_integrator.templating import load_template

            try:
                load_template(
                    paths.home / path,
                    shown=paths.shown(paths.home / path),
                    template_format=template_format,
                )
            except TemplateError as error:
                issues.append(
                    ConfigIssue(
                        error.path,
                        error.line,
                        None,
                        f"{error.message} (the {role} of {dotted} in {settings_shown})",
                    )
                )
    return issues


def _stock_config_warnings(paths: WazuhPaths) -> list[ConfigIssue]:
    """With ``--config`` naming another file, Wazuh still reads etc/ossec.conf:
    blocks left there start its own wazuh-integratord, and both daemons send
    every alert."""
    stock = paths.home / "etc" / "ossec.conf"
    try:
        if paths.config.resolve() == stock.resolve() or not stock.exists():
            return []
    except OSError:
        return []
    count = count_integration_blocks(stock)
    if not count:
        return []
    plural = "block" if count == 1 else "blocks"
    return [
        ConfigIssue(
            paths.shown(stock),
            None,
            None,
            f"also holds {count} <integration> {plural}: Wazuh runs its own wazuh-integratord"
            f" for them, so both daemons would send every alert; remove them from"
            f" {paths.shown(stock)} and restart the manager (docs/migrating.md)",
        )
    ]


def _unknown_block_tables(
    config: OssecConfig, settings: Settings, settings_shown: str
) -> list[ConfigIssue]:
    """``[integrations."slack#3"]`` must name a block of ossec.conf: a typo
    there would silently apply the name's settings instead."""
    keys = {block.key for block in config.blocks}
    return [
        ConfigIssue(
            settings_shown,
            settings.block_lines.get(key),
            None,
            f'integrations."{key}": ossec.conf has no <integration> block {key}'
            " (blocks are numbered from 0 in file order; check-config lists them)",
        )
        for key in settings.blocks
        if key not in keys
    ]


def _settings_status(settings: Settings) -> str:
    if settings.path is None:
        return "not found: every setting at its default"
    sections = len(settings.integrations) + len(settings.blocks)
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
