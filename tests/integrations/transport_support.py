"""Waiting for the HTTP transport processes of a set of sessions to take requests."""

from __future__ import annotations

import aiohttp
from tests.integrations.standins import wait_until

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.integrations.sessions import HttpSessions


async def ready_session(
    sessions: HttpSessions, settings: IntegrationSettings | None = None
) -> aiohttp.ClientSession:
    """The session for ``settings``, once every transport process is ready:
    until then requests are sent in process, and a test of the transport
    would not test it."""
    session = sessions.for_settings(settings or IntegrationSettings())
    processes = sessions.processes
    if processes is not None:
        await wait_until(lambda: processes.ready() == processes.count, "the transports", 60)
    return session
