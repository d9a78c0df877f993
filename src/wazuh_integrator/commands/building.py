"""Integrations built outside the daemon, for the commands that look at or try them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wazuh_integrator.commands import GlobalOptions

if TYPE_CHECKING:
    import aiohttp

    from wazuh_integrator.config.loading import ConfigurationReport
    from wazuh_integrator.config.models import IntegrationBlock
    from wazuh_integrator.integrations.base import EventSink, IntegrationContext

__all__ = ["integration_context"]


def integration_context(
    report: ConfigurationReport,
    options: GlobalOptions,
    block: IntegrationBlock,
    *,
    http: aiohttp.ClientSession | None = None,
    events: EventSink | None = None,
) -> IntegrationContext:
    """What the daemon would lend ``block``'s integration; without ``http`` and
    ``events`` a context for dry runs (``preview``, ``would_skip``)."""
    from wazuh_integrator.integrations.base import IntegrationContext

    return IntegrationContext(
        home=options.home,
        state_dir=report.settings.resolved_state_dir(options.home),
        settings=report.settings.for_block(block),
        debug=options.debug > 0,
        http=http,
        events=events,
    )
