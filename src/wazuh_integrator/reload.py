"""SIGHUP: ossec.conf and integrator.toml as they are now, applied to a
running pipeline without losing an alert.

Blocks that did not change keep their route; changed ones get a new route
that takes over the old one's parked work; removed ones are stopped (what
they still hold is parked). A configuration that cannot be applied is
refused whole, and the running one stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from wazuh_integrator.config.changes import keys_needing_restart, running_settings, same_block
from wazuh_integrator.config.models import IntegrationBlock, WazuhPaths
from wazuh_integrator.errors import ConfigError
from wazuh_integrator.metrics import Metrics
from wazuh_integrator.routes import LoadedConfiguration, Route, load_configuration
from wazuh_integrator.sdnotify import notify
from wazuh_integrator.secret import redact_urls_in

__all__ = ["BuildRoute", "Reloader", "RunningRoutes", "StartRoute"]

log = logging.getLogger(__name__)

BuildRoute = Callable[[IntegrationBlock, LoadedConfiguration], "Route | None"]
StartRoute = Callable[[Route], Awaitable[None]]


class RunningRoutes(Protocol):
    """What a reload swaps: the routes alerts go to, and the configuration
    they were built from."""

    configuration: LoadedConfiguration
    routes: list[Route]


class Reloader:
    """Applies the configuration files to a :class:`RunningRoutes`, building
    and starting routes the way its pipeline does."""

    def __init__(
        self,
        paths: WazuhPaths,
        metrics: Metrics,
        *,
        build_route: BuildRoute,
        start_route: StartRoute,
    ) -> None:
        self.paths = paths
        self.metrics = metrics
        self._build_route = build_route
        self._start_route = start_route

    async def reload(self, running: RunningRoutes) -> None:
        """Apply ossec.conf and integrator.toml as they are now to ``running``,
        or keep its configuration whole when they cannot be applied."""
        log.info("Reloading configuration.")
        notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            await self._reload_now(running)
        finally:
            notify("READY=1")

    async def _reload_now(self, running: RunningRoutes) -> None:
        try:
            loaded = load_configuration(self.paths)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("%s", issue)
            log.error("New configuration refused; the running one stays in force.")
            self.metrics.config_reloads_total.labels(result="refused").inc()
            return
        try:
            summary = await self._apply(running, loaded)
        except Exception as exc:
            # Caught here so that a failed reload neither ends later reloads
            # nor the checkpoint saves that share this task.
            log.debug("Reload failed", exc_info=True)
            log.error(
                "New configuration refused (%s: %s); the running one stays in force.",
                type(exc).__name__,
                redact_urls_in(str(exc)),
            )
            self.metrics.config_reloads_total.labels(result="refused").inc()
            return
        self.metrics.config_reloads_total.labels(result="applied").inc()
        log.info("Configuration reloaded: %s.", summary)

    async def _apply(self, running: RunningRoutes, loaded: LoadedConfiguration) -> str:
        """Swap ``loaded`` into ``running``; returns what changed, for the log line."""
        current = running.configuration
        restart_keys = keys_needing_restart(current.settings, loaded.settings)
        for key in restart_keys:
            log.warning(
                "integrator.toml: '%s' changed: it applies at the next restart;"
                " the running value stays until then.",
                key,
            )
        settings = running_settings(current.settings, loaded.settings)
        registry = current.registry if "plugins" in restart_keys else loaded.registry
        configuration = LoadedConfiguration(loaded.enabled, settings, registry)

        unmatched = list(running.routes)
        new_routes: list[Route] = []
        built: list[Route] = []
        restarting: list[Route] = []
        for block in configuration.enabled:
            old = next((r for r in unmatched if same_block(r.block, block)), None)
            if old is not None:
                unmatched.remove(old)
                same_settings = current.settings.for_block(block) == settings.for_block(block)
                edited = old.integration.templates_changed()
                for shown in edited:
                    log.info("Template %s changed: '%s' starts again with it.", shown, block.name)
                if same_settings and not edited:
                    new_routes.append(old)
                    continue
                unmatched.append(old)  # retired below; its parked work passes to the new one
                restarting.append(old)
            route = self._build_route(block, configuration)  # may raise: nothing swapped yet
            if route is not None:
                new_routes.append(route)
                built.append(route)

        # From here on the reader hands alerts to the new routes; the retired
        # ones park what they still hold, under keys the new ones retry.
        running.routes = new_routes
        running.configuration = configuration
        retired_keys = {route.block.key for route in unmatched}
        for route in built:
            if route.block.key not in retired_keys:
                await self._start_route(route)
        live_keys = {route.block.key for route in new_routes}
        for route in unmatched:
            if not any(route is old for old in restarting):
                log.info(
                    "Disabling integration '%s' (block %d).", route.block.name, route.block.index
                )
            if route.shaper is not None:
                await route.shaper.stop()
            await route.deliverer.stop(settings.grace_period_s)
            await route.integration.close()
            if route.block.key not in live_keys:
                self.metrics.forget_integration(route.block.key)
        for route in built:
            if route.block.key in retired_keys:
                await self._start_route(route)
        unchanged = len(new_routes) - len(built)
        restarted = len(restarting)
        return (
            f"{unchanged} integration(s) unchanged, {len(built) - restarted} started, "
            f"{restarted} restarted with new settings, {len(unmatched) - restarted} stopped"
        )
