"""What the pipeline delivers through: the configuration as loaded, and one
route per enabled ``<integration>`` block built from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wazuh_integrator.config.loading import ConfigurationReport, inspect_configuration
from wazuh_integrator.config.models import IntegrationBlock, Settings, WazuhPaths
from wazuh_integrator.delivery import Deliverer
from wazuh_integrator.errors import ConfigError
from wazuh_integrator.filters import AlertFilter
from wazuh_integrator.floods import Shaper
from wazuh_integrator.integrations.base import Integration
from wazuh_integrator.integrations.registry import Registry
from wazuh_integrator.metrics import CounterChild

__all__ = ["LoadedConfiguration", "Route", "load_configuration"]

log = logging.getLogger(__name__)


@dataclass
class Route:
    """One enabled ``<integration>`` block, ready to take alerts."""

    block: IntegrationBlock
    alert_filter: AlertFilter
    integration: Integration
    deliverer: Deliverer
    matched_total: CounterChild  # this block's series of alerts_matched_total, looked up once
    shaper: Shaper | None = None  # the floods stage, when the block has one


@dataclass(frozen=True)
class LoadedConfiguration:
    """ossec.conf and integrator.toml, read and checked together."""

    enabled: tuple[IntegrationBlock, ...]
    settings: Settings
    registry: Registry


def load_configuration(
    paths: WazuhPaths, report: ConfigurationReport | None = None
) -> LoadedConfiguration:
    """Read both files, unless ``report`` holds them as read already (``run``'s
    start-up checks read them first); raise ConfigError carrying every problem found.

    Blocks that are only disabled are logged and left out, as stock does.
    """
    if report is None:
        report = inspect_configuration(paths)
    if report.errors:
        raise ConfigError(report.errors)
    for warning in report.warnings:
        log.warning("%s", warning)
    for off in report.disabled:
        log.error(
            "Integration '%s' (block %d) disabled: %s", off.block.name, off.block.index, off.reason
        )
    return LoadedConfiguration(tuple(report.enabled), report.settings, report.registry)
